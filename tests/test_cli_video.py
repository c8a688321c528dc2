"""`transpose-live video` end to end with a tiny model on synthetic videos: the output keeps the input's
frames, timestamps and audio, JSON has one line per frame, and bad input is one stderr line, exit 2 and
no file left behind."""

from __future__ import annotations

import importlib
import json
import sys

import av
import pytest
from typer.testing import CliRunner

from test_sources import make_video
from transpose_live import hub
from transpose_live.sources import FileSource

try:  # installed: the cli/ folder is the package transpose_live.cli
    from transpose_live.cli import app as app_module
except ImportError:  # run from the checkout
    from cli import app as app_module

cmd_video = importlib.import_module(f"{app_module.__package__}.cmd_video")


@pytest.fixture
def tiny(monkeypatch):
    """A tiny random model instead of the shipped one; records the config the command built."""
    asked = {}

    def build(config):
        import torch

        from transpose_live.estimator import PoseEstimator
        from transpose_live.models import create_model

        asked["config"] = config
        torch.manual_seed(0)
        return PoseEstimator(create_model("tp_m_a4", image_size=(64, 48)), device="cpu")

    monkeypatch.setattr(cmd_video, "build_estimator", build)
    return asked


def run(args):
    return CliRunner().invoke(app_module.app, ["video", *map(str, args)])


def run_main(monkeypatch, capsys, args):
    """Through cli.app:main, as the console script runs: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["transpose-live", "video", *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        app_module.main()
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


def frame_times(path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


def test_video_out_keeps_frames_timestamps_and_audio_and_json_has_a_line_per_frame(tmp_path, tiny):
    clip = make_video(tmp_path / "clip.mp4", n=20, fps=10, audio="aac")
    out, lines = tmp_path / "poses.mp4", tmp_path / "poses.jsonl"
    result = run([clip, "--out", out, "--json", lines, "--detector", "none", "--device", "cpu", "--boxes"])
    assert result.exit_code == 0, result.output
    assert tiny["config"].detector == "none" and tiny["config"].draw_boxes and tiny["config"].model is None
    assert frame_times(out) == pytest.approx(frame_times(clip), abs=1e-3)
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert (video.width, video.height) == (160, 120) and len(c.streams.audio) == 1
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(20))
    for r in records:
        (person,) = r["persons"]
        assert person["id"] == 1 and len(person["keypoints"]) == 17
        assert all(len(k) == 3 for k in person["keypoints"])
    assert "20 frames" in result.stdout and str(out) in result.stdout


def test_json_only_with_trim_and_max_frames(tmp_path, tiny):
    clip = make_video(tmp_path / "clip.mkv", n=30, fps=10)
    lines, coco = tmp_path / "p.jsonl", tmp_path / "p.json"
    result = run([clip, "--json", lines, "--coco-json", coco, "--detector", "none", "--start", "1", "--end", "2.5",
                  "--max-frames", "12", "--no-smooth"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["timestamp"] for r in records] == pytest.approx([1.0 + i / 10 for i in range(12)])
    assert len(json.loads(coco.read_text())) == 12
    assert not tiny["config"].smooth


def test_truncated_video_is_processed_to_its_real_end_with_a_warning(tmp_path, tiny):
    full = make_video(tmp_path / "full.mp4", n=40, codec="mpeg4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with FileSource(cut) as source:       # what can be read (a cut-off last packet is skipped as damaged)
        readable = len(list(source))
    out = tmp_path / "out.mp4"
    result = run([cut, "--out", out, "--detector", "none"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "ends early" in result.stderr
    assert 5 <= readable < 40 and len(frame_times(out)) == readable


def make_case(tmp_path, monkeypatch, case):
    clip = make_video(tmp_path / "clip.mp4", n=5)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    out = tmp_path / "out.mp4"
    if case == "no_default_weights":     # a package installed without its checkpoint
        monkeypatch.setattr(hub, "ASSETS_DIR", tmp_path / "no_assets")
    return {
        "missing": [tmp_path / "nope.mp4", "--out", out],
        "text_file": [text, "--out", out],
        "unwritable": [clip, "--out", tmp_path / "no" / "such" / "dir" / "out.mp4"],
        "out_is_folder": [clip, "--out", tmp_path],
        "json_unwritable": [clip, "--out", out, "--json", tmp_path / "missing_dir" / "p.jsonl"],
        "no_output": [clip],
        "overwrite_input": [clip, "--out", clip],
        "not_a_video_suffix": [clip, "--out", tmp_path / "out.txt"],
        "bad_detect_every": [clip, "--out", out, "--detect-every", "0"],
        "bad_strength": [clip, "--out", out, "--smooth-strength", "1.5"],
        "bad_device": [clip, "--out", out, "--device", "gpu"],
        "bad_detector": [clip, "--out", out, "--detector", "yolo9000"],
        "bad_trim": [clip, "--out", out, "--start", "3", "--end", "1"],
        "no_default_weights": [clip, "--out", out, "--json", tmp_path / "p.jsonl", "--detector", "none"],
    }[case]


@pytest.mark.parametrize("case, message", [
    ("missing", "video file not found"),
    ("text_file", "as a video"),
    ("unwritable", "does not exist"),
    ("out_is_folder", "--out must be a video file"),
    ("json_unwritable", "does not exist"),
    ("no_output", "--out"),
    ("overwrite_input", "refusing to overwrite"),
    ("not_a_video_suffix", "--out must be a video file"),
    ("bad_detect_every", "detect_every"),
    ("bad_strength", "strength"),
    ("bad_device", "--device"),
    ("bad_detector", "unknown detector"),
    ("bad_trim", "end"),
    ("no_default_weights", "default checkpoint is not installed"),
])
def test_bad_input_is_one_line_exit_2_and_no_file_left(tmp_path, monkeypatch, capsys, case, message):
    args = make_case(tmp_path, monkeypatch, case)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_main(monkeypatch, capsys, args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # no output, no hidden temp file


def test_progress_line_shows_frames_fps_and_eta():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = cmd_video.Progress(total=40, stream=stream)
    progress.interval = 0.0
    for _ in range(10):
        progress.update()
    progress.close()
    text = stream.getvalue()
    assert "\r10/40 frames ( 25%)" in text and " fps  ETA " in text and text.endswith("\n")
    assert cmd_video._clock(3725) == "1:02:05" and cmd_video._clock(65) == "1:05"
