"""`transpose-live webcam` and `transpose-live gui` through the real CLI entry point (`main()`, in process:
exit codes, stdout and stderr as a terminal sees them).

There is no camera here: `transpose_live.media.sources.open_source` (what the commands call to open a camera or a
stream, the hardware boundary) is replaced by a synthetic clip played like a camera (live, one frame every
few milliseconds). Everything behind it is the real code: RunSpec, process_video, the pipeline, the writers
and the window (offscreen), with a tiny random model (conftest's tiny_weights).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import av
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources import FileSource

from helpers import REPO, synthetic_clip

W, H = 96, 80
CLIP_FRAMES = 8
# RunSummary.line(): "camera.mp4: 8 frames in 0.9 s (8.6 fps), 0 dropped, 1 person; wrote a, b"
SUMMARY = re.compile(r"^(?P<source>\S+): (?P<frames>\d+) frames(?: \((?P<stopped>[^)]+)\))? in \d+\.\d s "
                     r"\(\d+\.\d fps\), (?P<dropped>\d+) dropped, (?P<persons>\d+) persons?; (?P<written>.+)$")


# ------------------------------------------------------------------------------------------------ helpers

def run_main(monkeypatch, capfd, *args) -> tuple[int, str, str]:
    """`transpose-live ARGS` in this process: (exit code, stdout, stderr), file descriptors included (so
    OpenCV's or FFmpeg's own chatter would show)."""
    from transpose_live.cli.app import main

    monkeypatch.setattr(sys, "argv", ["transpose-live", *map(str, args)])
    capfd.readouterr()
    try:
        main()
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capfd.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def summary_of(err: str) -> re.Match:
    """The run's summary: the last line on stderr."""
    last = err.strip().splitlines()[-1]
    match = SUMMARY.match(last)
    assert match, f"not a summary line: {last!r}\n{err}"
    return match


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def video_frames(path: Path) -> list:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary outputs (.NAME.xxxx.part.EXT) left in a folder."""
    return [p.name for p in folder.iterdir() if ".part" in p.name or p.name.startswith(".")]


@pytest.fixture
def tiny_args(tiny_options) -> list[str]:
    """The tiny model, the whole frame as the person, and every person kept (its random joint scores are low)."""
    return ["--model", tiny_options["model"], "--weights", tiny_options["weights"], "--device", "cpu",
            "--detector", "none", "--min-person-score", "0"]


class ClipCamera(FileSource):
    """A synthetic clip played like a camera: live (the pipeline keeps the newest frame, JSON Lines are
    written in place), one frame every `delay` seconds. `on_read(i)` runs in the reading (capture) thread
    before frame i is read."""

    is_live = True

    def __init__(self, path, delay: float = 0.02, on_read=None):
        self.delay, self.on_read = delay, on_read
        super().__init__(path)

    def _next_frame(self):
        if self.on_read is not None:
            self.on_read(self._index)
        time.sleep(self.delay)
        return super()._next_frame()


@pytest.fixture
def camera(tmp_path, monkeypatch):
    """`open_source` (what the commands call) gives a ClipCamera over an 8-frame clip "camera.mp4".
    camera.asked: the calls (spec, options); camera.opened: the sources; delay/on_read: how the next plays."""
    import transpose_live.media.sources as sources

    state = SimpleNamespace(clip=synthetic_clip(tmp_path / "camera.mp4", CLIP_FRAMES, (W, H), fps=10),
                            asked=[], opened=[], delay=0.02, on_read=None)

    def fake_open(spec, **options):
        state.asked.append((spec, options))
        source = ClipCamera(state.clip, state.delay, state.on_read)
        state.opened.append(source)
        return source

    monkeypatch.setattr(sources, "open_source", fake_open)
    return state


# ------------------------------------------------------------------------------------ one-line errors, exit 2

@pytest.mark.parametrize("args, message", [
    (["webcam", "--camera", "99", "--no-show", "--json", "p.jsonl"],
     "error: cannot open camera 99 (not connected, or in use by another program)"),
    (["webcam", "--camera", "99"], "error: cannot open camera 99 (not connected, or in use by another program)"),
    (["webcam", "--no-show"], "error: --no-show needs --out OUT.mp4 or --json OUT.jsonl (- for stdout), "
                              "else nothing would be seen"),
    (["webcam", "--camera", "1", "--rtsp", "rtsp://cam/s"], "error: use either --camera or --rtsp, not both"),
    (["webcam", "--camera", "-1", "--no-show", "--json", "p.jsonl"], "error: --camera must be 0 or more, got -1"),
    (["webcam", "--rtsp", "cam.local/stream", "--no-show", "--json", "p.jsonl"],
     "error: --rtsp needs a URL such as rtsp://host/stream, got 'cam.local/stream'"),
    (["webcam", "--width", "0", "--no-show", "--json", "p.jsonl"], "error: --width must be > 0, got 0"),
    (["webcam", "--device", "gpu7"], "error: unknown device 'gpu7'; use auto, cpu, cuda or cuda:N"),
    (["webcam", "--detector", "yolo"], "error: unknown detector 'yolo'; choose one of: "),
    (["webcam", "--no-show", "--out", "rec.txt"], "error: --out must be a video file"),
    (["webcam", "--no-show", "--out", "-"], "error: --out - is not possible"),
    (["webcam", "--no-show", "--out", "same.mp4", "--json", "same.mp4"], "error: --out, --json and --coco-json "
                                                                         "must name different outputs"),
    (["webcam", "--no-show", "--json", "no_such_folder/p.jsonl"], "error: cannot write results"),
    (["gui", "no_such_clip.mp4"], "error: video file not found: no_such_clip.mp4"),
])
def test_bad_options_are_one_line_exit_2(args, message, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(monkeypatch, capfd, *args)
    assert rc == 2, err
    assert one_error_line(err).startswith(message)
    assert out == ""
    assert not list(tmp_path.iterdir())          # nothing written, no temporary file left behind


def test_cuda_device_that_is_not_there(tmp_path, monkeypatch, capfd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, _, err = run_main(monkeypatch, capfd, "webcam", "--device", "cuda:7", "--no-show", "--json",
                          tmp_path / "p.jsonl")
    assert rc == 2
    assert one_error_line(err) == "error: device 'cuda:7' asked for, but this machine has no usable CUDA device"


def test_old_draw_boxes_option_is_gone(monkeypatch, capfd):
    rc, _, err = run_main(monkeypatch, capfd, "webcam", "--draw-boxes", "--no-show", "--json", "-")
    assert rc == 2
    assert "No such option: --draw-boxes" in err


def test_no_display_is_one_line_exit_2_in_a_fresh_process():
    """In a fresh process Qt would abort on a missing X display: the command says so first (exit 2)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    proc = subprocess.run([sys.executable, "-m", "transpose_live", "webcam"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == ("error: no display for the preview window: set DISPLAY, "
                                           "or use --no-show / --out")
    assert proc.stdout == ""


def test_gui_without_display_is_one_line_exit_2(monkeypatch, capfd):
    from transpose_live.ui import app as ui_app

    monkeypatch.setattr(ui_app, "_qt_running", lambda: False)      # as in a fresh process
    monkeypatch.setattr(ui_app.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    rc, _, err = run_main(monkeypatch, capfd, "gui")
    assert rc == 2
    assert "no display for the preview window" in one_error_line(err)


def test_check_display_rules(monkeypatch):
    from transpose_live.ui import app as ui_app

    monkeypatch.setattr(ui_app, "_qt_running", lambda: False)
    monkeypatch.setattr(ui_app.sys, "platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(TransposeLiveError, match="no display"):
        ui_app.check_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    ui_app.check_display()                           # Wayland session: fine
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    with pytest.raises(TransposeLiveError, match="no display"):
        ui_app.check_display()                       # xcb asked for, but no X display
    monkeypatch.setenv("DISPLAY", "remotehost:0")
    ui_app.check_display()                           # remote X: left to Qt
    monkeypatch.setenv("QT_QPA_PLATFORM", "minimal")
    monkeypatch.delenv("DISPLAY")
    ui_app.check_display()


# ------------------------------------------------------------------------------------------- headless runs

def test_headless_writes_video_and_json(tmp_path, camera, tiny_args, monkeypatch, capfd):
    out, js = tmp_path / "rec.mp4", tmp_path / "poses.jsonl"
    rc, stdout, err = run_main(monkeypatch, capfd, "webcam", "--camera", "2", "--width", "640", "--height", "480",
                               "--no-show", "--out", out, "--json", js, "--no-smooth", "--boxes", *tiny_args)
    assert rc == 0, err
    assert stdout == ""                                  # messages go to stderr
    assert camera.asked == [(2, {"width": 640, "height": 480, "fps": None})]
    assert err.splitlines()[0] == "running; press Ctrl-C to stop"
    summary = summary_of(err)
    frames, dropped = int(summary["frames"]), int(summary["dropped"])
    assert summary["source"] == "camera.mp4" and summary["stopped"] is None       # the source ran out
    assert frames >= 1 and frames + dropped == CLIP_FRAMES     # live: a frame is shown or dropped as stale
    assert summary["persons"] == "1"
    assert summary["written"] == f"wrote {out}, {js}"
    records = read_jsonl(js)
    assert len(records) == frames
    indices = [r["frame"] for r in records]
    assert indices == sorted(set(indices)) and set(indices) <= set(range(CLIP_FRAMES))
    assert all(len(r["persons"]) == 1 and len(r["persons"][0]["keypoints"]) == 17 for r in records)
    images = video_frames(out)
    assert len(images) == frames and images[0].shape == (H, W, 3)
    assert camera.opened[0].wait_closed(5)
    assert not leftovers(tmp_path)


def test_rtsp_option_opens_the_url_and_max_frames_stops(tmp_path, camera, tiny_args, monkeypatch, capfd):
    js = tmp_path / "p.jsonl"
    rc, _, err = run_main(monkeypatch, capfd, "webcam", "--rtsp", "rtsp://user:pw@cam.local/live",
                          "--rtsp-transport", "udp", "--no-show", "--json", js, "--max-frames", "3", *tiny_args)
    assert rc == 0, err
    assert camera.asked == [("rtsp://user:pw@cam.local/live", {"transport": "udp"})]
    summary = summary_of(err)
    assert int(summary["frames"]) + int(summary["dropped"]) == 3
    assert len(read_jsonl(js)) == int(summary["frames"])
    assert "pw" not in err


def test_json_to_stdout_holds_one_line_per_frame_and_nothing_else(camera, tiny_args, monkeypatch, capfd):
    rc, stdout, err = run_main(monkeypatch, capfd, "webcam", "--no-show", "--json", "-", "--attention",
                               *tiny_args)
    assert rc == 0, err
    summary = summary_of(err)
    assert summary["written"] == "wrote stdout"
    lines = stdout.splitlines()
    assert stdout.endswith("\n") and len(lines) == int(summary["frames"]) >= 1
    records = [json.loads(line) for line in lines]     # every line is a frame's JSON, nothing else
    assert all(set(r) == {"frame", "timestamp", "persons"} for r in records)
    assert [r["frame"] for r in records] == sorted({r["frame"] for r in records})
    assert "running; press Ctrl-C to stop" in err


def test_live_json_file_is_written_in_place_while_running(tmp_path, camera, tiny_args, monkeypatch, capfd):
    """A live run's JSON Lines go straight into the named file (tail -f follows it): lines are there
    before the run ends, and no hidden .part file is used."""
    js = tmp_path / "poses.jsonl"
    during = []                        # (frame about to be read, lines in the file, files in the folder)

    def look(index):
        lines = js.read_text().count("\n") if js.exists() else None
        during.append((index, lines, sorted(p.name for p in tmp_path.iterdir())))

    camera.delay, camera.on_read = 0.06, look
    rc, _, err = run_main(monkeypatch, capfd, "webcam", "--no-show", "--json", js, *tiny_args)
    assert rc == 0, err
    assert all(names == ["camera.mp4", "poses.jsonl"] for _, _, names in during), during   # no temp file
    assert during[-1][1] >= 1, during          # lines were readable while frames were still coming
    counts = [lines for _, lines, _ in during]
    assert counts == sorted(counts)            # appended, never rewritten
    assert len(read_jsonl(js)) == int(summary_of(err)["frames"])


@pytest.fixture
def sigint_is_python_default():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by something else in this test process")


def test_headless_ctrl_c_finishes_outputs_and_exits_0(tmp_path, camera, tiny_args, monkeypatch, capfd,
                                                       sigint_is_python_default):
    """Ctrl-C (a real SIGINT, sent while the camera is giving frame 5) is how a camera run ends: the video and
    the JSON are finished with the frames so far, the summary says (interrupted), exit 0."""
    out, js = tmp_path / "rec.mp4", tmp_path / "poses.jsonl"

    def ctrl_c(index):
        if index == 5:
            os.kill(os.getpid(), signal.SIGINT)

    camera.delay, camera.on_read = 0.03, ctrl_c
    rc, stdout, err = run_main(monkeypatch, capfd, "webcam", "--no-show", "--out", out, "--json", js, *tiny_args)
    assert rc == 0, err
    assert stdout == "" and "Traceback" not in err
    summary = summary_of(err)
    assert summary["stopped"] == "interrupted"
    frames = int(summary["frames"])
    assert 1 <= frames and frames + int(summary["dropped"]) <= 6
    assert summary["written"] == f"wrote {out}, {js}"
    records = read_jsonl(js)                         # the lines so far, each one whole
    assert len(records) == frames
    assert len(video_frames(out)) == frames          # the video was finished: playable, every frame in it
    assert camera.opened[0].wait_closed(5)
    assert not leftovers(tmp_path)


# ------------------------------------------------------------------------------------------- window runs

@pytest.fixture
def windows():
    """run_app runs Qt's event loop until its window closes: a timer closes each MainWindow once its run has
    ended (the source ran out or failed) and keeps it for the test to look at. After 30 s it closes them
    anyway (the test then fails on `timed_out`)."""
    from PyQt6.QtCore import QTimer

    from transpose_live.ui.app import application
    from transpose_live.ui.main_window import MainWindow

    app = application()
    state = SimpleNamespace(seen=[], timed_out=False)
    deadline = time.monotonic() + 30

    def look():
        for widget in app.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                if widget not in state.seen:
                    state.seen.append(widget)
                late = time.monotonic() > deadline
                state.timed_out |= late
                if not widget.running or late:
                    widget.close()

    timer = QTimer()
    timer.timeout.connect(look)
    timer.start(20)
    yield state
    timer.stop()


def test_window_mode_plays_the_camera_and_finishes_the_outputs(tmp_path, camera, tiny_args, windows,
                                                               monkeypatch, capfd):
    out, js = tmp_path / "rec.mp4", tmp_path / "poses.jsonl"
    rc, stdout, err = run_main(monkeypatch, capfd, "webcam", "--camera", "1", "--attention", "--out", out,
                               "--json", js, *tiny_args)
    assert rc == 0, err
    assert not windows.timed_out
    assert camera.asked == [(1, {"width": None, "height": None, "fps": None})]
    (window,) = windows.seen
    assert window.last_error is None and window.frames_shown >= 1
    assert window.attention_action.isChecked()                 # --attention reached the window
    assert window.model_label.text() == "model tp_m_a4 · cpu"
    assert "camera.mp4" in window.windowTitle()
    assert stdout == ""
    assert f"wrote {out}" in err.splitlines() and f"wrote {js}" in err.splitlines()
    records = read_jsonl(js)                                    # the window's run finished both outputs
    assert len(records) >= window.frames_shown and len(video_frames(out)) == len(records)
    assert camera.opened[0].wait_closed(5)
    assert not leftovers(tmp_path)


def test_window_mode_ctrl_c_closes_the_window_and_finishes_the_outputs(tmp_path, camera, tiny_args, windows,
                                                                       monkeypatch, capfd,
                                                                       sigint_is_python_default):
    """Ctrl-C in the terminal while the window plays: the window closes, the outputs are finished, exit 0."""
    out, js = tmp_path / "rec.mp4", tmp_path / "poses.jsonl"

    def ctrl_c(index):
        if index == 3:
            os.kill(os.getpid(), signal.SIGINT)

    camera.delay, camera.on_read = 0.1, ctrl_c
    rc, stdout, err = run_main(monkeypatch, capfd, "webcam", "--out", out, "--json", js, *tiny_args)
    assert rc == 0, err
    assert not windows.timed_out
    (window,) = windows.seen
    assert window.worker is None and window.last_error is None
    records = read_jsonl(js)
    assert 1 <= len(records) < CLIP_FRAMES                   # stopped early, by the Ctrl-C
    assert len(video_frames(out)) == len(records)
    assert f"wrote {out}" in err.splitlines()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # the window's handler is gone
    assert camera.opened[0].wait_closed(5)
    assert not leftovers(tmp_path)


def test_window_mode_camera_failing_at_once_leaves_no_video(tmp_path, camera, tiny_args, windows, monkeypatch,
                                                            capfd):
    """The camera stops before its first frame: the window shows why; no empty video file is left behind."""
    out = tmp_path / "rec.mp4"

    def fail(index):
        raise TransposeLiveError("camera 0 stopped giving frames")

    camera.on_read = fail
    rc, stdout, err = run_main(monkeypatch, capfd, "webcam", "--out", out, *tiny_args)
    (window,) = windows.seen
    assert window.last_error == "camera 0 stopped giving frames"
    assert not out.exists() and not leftovers(tmp_path)
    assert "wrote" not in err
    assert camera.opened[0].wait_closed(5)


@pytest.fixture
def opened_by_gui(monkeypatch):
    """The sources opened through open_source (the real one), to see that they are closed after."""
    import transpose_live.media.sources as sources

    real, opened = sources.open_source, []

    def spy(spec, **options):
        source = real(spec, **options)
        opened.append(source)
        return source

    monkeypatch.setattr(sources, "open_source", spy)
    return opened


def test_gui_plays_a_file_with_the_options(tmp_path, tiny_args, windows, opened_by_gui, monkeypatch, capfd):
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=4, size=(W, H), fps=20)
    rc, stdout, err = run_main(monkeypatch, capfd, "gui", clip, "--attention", "--no-smooth", *tiny_args)
    assert rc == 0, err
    assert not windows.timed_out
    (window,) = windows.seen
    assert window.last_error is None and window.frames_shown >= 1
    assert "clip.mp4" in window.windowTitle()
    assert window.attention_action.isChecked() and not window.smooth_action.isChecked()
    assert opened_by_gui and opened_by_gui[0].path == str(clip)      # the file was opened by the command
    assert all(source.wait_closed(5) for source in opened_by_gui)
    assert stdout == ""


def test_gui_leaves_streams_to_the_window(tiny_args, windows, monkeypatch, capfd):
    """A stream may take seconds to connect: the window opens at once and shows the error itself."""
    rc, _, err = run_main(monkeypatch, capfd, "gui", "rtsp://user:secret@127.0.0.1:1/live", *tiny_args)
    assert rc == 0, err
    (window,) = windows.seen
    assert window.last_error.startswith("cannot connect to rtsp://user:***@127.0.0.1:1/live")
    assert "secret" not in window.last_error and "secret" not in window.windowTitle()


def test_gui_without_source_opens_an_empty_window(windows, monkeypatch, capfd):
    rc, _, err = run_main(monkeypatch, capfd, "gui")
    assert rc == 0, err
    (window,) = windows.seen
    assert window.source is None and window.frames_shown == 0 and window.last_error is None
