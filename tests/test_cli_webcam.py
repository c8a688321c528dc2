"""`transpose-live webcam` and `transpose-live gui`: one-line errors with exit 2 (missing camera, no display,
--no-show without outputs), and the headless run writing its outputs (a synthetic video stands in for the
camera; a tiny random model stands in for the default weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO
from transpose_live.errors import TransposeLiveError

W, H = 96, 80


def cli(*args: str, env_update: dict | None = None, drop=("DISPLAY", "WAYLAND_DISPLAY")) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update or {})
    return subprocess.run([sys.executable, "-m", "transpose_live", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_missing_camera_is_one_line_exit_2(tmp_path):
    proc = cli("webcam", "--camera", "99", "--no-show", "--json", str(tmp_path / "p.jsonl"),
               env_update={"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2
    assert one_error_line(proc) == "error: cannot open camera 99 (not connected, or in use by another program)"
    assert not (tmp_path / "p.jsonl").exists() and not list(tmp_path.iterdir())   # no temp files left


def test_missing_camera_with_window_is_one_line_exit_2():
    proc = cli("webcam", "--camera", "99", env_update={"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2
    assert "cannot open camera 99" in one_error_line(proc)


def test_no_show_needs_an_output():
    proc = cli("webcam", "--no-show", env_update={"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2
    assert "--no-show needs --out" in one_error_line(proc)


def test_no_display_is_one_line_exit_2():
    proc = cli("webcam", env_update={"QT_QPA_PLATFORM": "xcb"})
    assert proc.returncode == 2
    assert one_error_line(proc) == ("error: no display for the preview window: set DISPLAY, "
                                    "or use --no-show / --out")
    proc = cli("gui", env_update={"QT_QPA_PLATFORM": "xcb"})
    assert proc.returncode == 2
    assert "no display for the preview window" in one_error_line(proc)


@pytest.mark.parametrize("args, message", [
    (["webcam", "--camera", "1", "--rtsp", "rtsp://cam/s"], "either --camera or --rtsp"),
    (["webcam", "--rtsp", "cam.local/stream", "--no-show", "--json", "x.jsonl"], "--rtsp needs a URL"),
    (["webcam", "--device", "gpu7"], "--device must be"),
    (["webcam", "--detector", "yolo"], "unknown detector"),
    (["webcam", "--no-show", "--out", "rec.txt"], "--out must be a video file"),
    (["gui", "no_such_clip.mp4"], "video file not found: no_such_clip.mp4"),
])
def test_bad_options_exit_2(args, message):
    proc = cli(*args, env_update={"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 2
    assert message in one_error_line(proc)


# --------------------------------------------------------------------------------------- in-process runs

def synthetic_video(path, frames=8):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(frames):
            image = np.full((H, W, 3), 90, np.uint8)
            image[10:70, 30 + i:60 + i] = 230
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture
def fake_camera(tmp_path, monkeypatch):
    """`open_quietly` gives a synthetic video instead of a camera (it records what it was asked for)."""
    from transpose_live.cli import cmd_webcam
    from transpose_live.sources import FileSource

    video = synthetic_video(tmp_path / "camera.mp4")
    asked = []

    def fake_open(spec, **options):
        asked.append((spec, options))
        return FileSource(video)

    monkeypatch.setattr(cmd_webcam, "open_quietly", fake_open)
    return asked


@pytest.fixture
def tiny_pipeline(monkeypatch):
    import torch

    from transpose_live.cli import cmd_webcam
    from transpose_live.estimator import PoseEstimator
    from transpose_live.models import create_model
    from transpose_live.pipeline import Pipeline

    torch.manual_seed(0)
    estimator = PoseEstimator(create_model("tp_m_a4", image_size=(64, 48)), device="cpu")
    built = []

    def build(source, config, sinks):
        built.append(config)
        return Pipeline(source, config, sinks=sinks, estimator=estimator)

    monkeypatch.setattr(cmd_webcam, "build_pipeline", build)
    return built


def run_cli(*args):
    from transpose_live.cli.app import app

    return CliRunner().invoke(app, list(args), catch_exceptions=True)


def test_headless_writes_video_and_json(tmp_path, fake_camera, tiny_pipeline):
    out, js = tmp_path / "rec.mp4", tmp_path / "poses.jsonl"
    result = run_cli("webcam", "--camera", "2", "--width", "640", "--height", "480", "--no-show",
                     "--out", str(out), "--json", str(js), "--detector", "none", "--no-smooth", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert fake_camera == [(2, {"width": 640, "height": 480, "fps": None})]
    assert tiny_pipeline[0].smooth is False and tiny_pipeline[0].detector == "none"
    assert tiny_pipeline[0].model is None                # the shipped default unless --model
    assert "source ended: 8 frames" in result.output and f"wrote {out}" in result.output
    lines = [json.loads(line) for line in js.read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(8))
    assert all(len(r["persons"]) == 1 and len(r["persons"][0]["keypoints"]) == 17 for r in lines)
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 8 and (frames[0].width, frames[0].height) == (W, H)


def test_headless_ctrl_c_is_a_normal_end(tmp_path, fake_camera, monkeypatch):
    from transpose_live.cli import cmd_webcam
    from transpose_live.pipeline import PipelineStats

    closed = []

    class Interrupted:
        stats = PipelineStats(frames_processed=5, wall_s=1.0, frames_dropped=2)

        def run(self):
            raise KeyboardInterrupt

    def build(source, config, sinks):
        closed.extend(sinks)
        return Interrupted()

    monkeypatch.setattr(cmd_webcam, "build_pipeline", build)
    result = run_cli("webcam", "--no-show", "--json", str(tmp_path / "p.jsonl"))
    assert result.exit_code == 0, result.output
    assert "stopped: 5 frames, 5.0 fps, 2 dropped" in result.output


def test_rtsp_option_opens_the_url(tmp_path, fake_camera, tiny_pipeline):
    result = run_cli("webcam", "--rtsp", "rtsp://user:pw@cam.local/live", "--rtsp-transport", "udp", "--no-show",
                     "--json", str(tmp_path / "p.jsonl"), "--detector", "none")
    assert result.exit_code == 0, result.output
    assert fake_camera == [("rtsp://user:pw@cam.local/live", {"transport": "udp"})]


def test_window_mode_hands_source_config_and_sinks_to_the_app(tmp_path, fake_camera, monkeypatch):
    from transpose_live.cli import cmd_webcam

    got = {}

    def fake_window(source, config, sinks):
        got.update(source=source, config=config, sinks=list(sinks))
        return 0

    monkeypatch.setattr(cmd_webcam, "run_window", fake_window)
    out = tmp_path / "rec.mp4"
    result = run_cli("webcam", "--attention", "--out", str(out), "--detector", "none")
    assert result.exit_code == 0, result.output
    assert got["config"].attention is True
    assert got["source"].path.endswith("camera.mp4")
    assert len(got["sinks"]) == 1 and type(got["sinks"][0]).__name__ == "VideoWriter"
    assert got["source"]._closed                      # closed after the window
    assert not out.exists()                          # nothing was written: no empty file left behind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rec")]


def test_gui_opens_files_here_and_leaves_streams_to_the_window(tmp_path, monkeypatch):
    from transpose_live.cli import cmd_gui

    video = synthetic_video(tmp_path / "clip.mp4", frames=2)
    got = []
    monkeypatch.setattr(cmd_gui, "run_window", lambda source, config: got.append((source, config)) or 0)
    assert run_cli("gui", str(video), "--detector", "none", "--attention").exit_code == 0
    source, config = got[-1]
    assert source.path == str(video) and config.attention is True and config.detector == "none"
    assert run_cli("gui", "rtsp://cam.local/live").exit_code == 0
    assert got[-1][0] == "rtsp://cam.local/live"
    assert run_cli("gui").exit_code == 0
    assert got[-1][0] is None


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
