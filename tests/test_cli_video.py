"""`transpose-live video` end to end through the real CLI (cli.app:main, and a real process where the
process matters) with a tiny random model on synthetic videos: the output keeps the input's frames,
timestamps and audio; JSON has one line per frame, goes to stdout, FIFOs, files and symlinks as it should
(stdout carries only JSON, the summary goes to stderr); a reader that goes away (`| head -3`) ends the run
cleanly; bad input is one stderr line, exit 2 and no file left behind.

The tiny model's person scores are ~0.0002, far below the default --min-person-score: tests that
want persons pass --min-person-score 0."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import av
import pytest

from transpose_live.live.spec import DEFAULT_MIN_PERSON_SCORE
from transpose_live.media.sources import FileSource
from transpose_live.model import hub

from helpers import main_runner, make_video, synthetic_clip


@pytest.fixture
def tiny_args(tiny_options):
    """The tiny model on the CPU, the whole frame as the person (--detector none)."""
    return [arg for name, value in tiny_options.items() for arg in (f"--{name.replace('_', '-')}", value)]


@pytest.fixture
def run_main(monkeypatch, capfd):
    """`transpose-live video ARGS` through cli.app:main: (exit code, stdout, stderr)."""
    return main_runner(monkeypatch, capfd, "video")


def console_script() -> list[str]:
    """The installed `transpose-live` command (beside this Python), else `python -m transpose_live`."""
    found = shutil.which("transpose-live", path=str(Path(sys.executable).parent)) or shutil.which("transpose-live")
    return [found] if found else [sys.executable, "-m", "transpose_live"]


def frame_times(path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


def first_frame(path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def all_keypoint_scores(records) -> list[float]:
    return [k[2] for r in records for p in r["persons"] for k in p["keypoints"]]


def leftovers(folder) -> list[str]:
    """Hidden temporary files (.NAME.XXXX.part.SUFFIX) left in a folder."""
    return sorted(p.name for p in Path(folder).iterdir() if ".part" in p.name)


def test_video_out_keeps_frames_timestamps_and_audio_and_json_has_a_line_per_frame(tmp_path, tiny_args, run_main):
    clip = make_video(tmp_path / "clip.mp4", n=20, fps=10, audio="aac")
    out, lines = tmp_path / "poses.mp4", tmp_path / "poses.jsonl"
    code, stdout, err = run_main([clip, "--out", out, "--json", lines, "--boxes", "--min-person-score", "0",
                                  *tiny_args])
    assert code == 0, err
    assert stdout == ""                                   # messages and the summary go to stderr
    assert frame_times(out) == pytest.approx(frame_times(clip), abs=1e-3)
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert (video.width, video.height) == (160, 120) and len(c.streams.audio) == 1
    records = read_lines(lines)
    assert [r["frame"] for r in records] == list(range(20))
    for r in records:
        (person,) = r["persons"]
        assert person["id"] == 1 and len(person["keypoints"]) == 17
        assert person["box"] == [0.0, 0.0, 160.0, 120.0]         # --detector none: the whole frame
        assert all(len(k) == 3 for k in person["keypoints"])
        assert 0.0 <= person["score"] <= 1.0
    assert all(0.0 <= s <= 1.0 for s in all_keypoint_scores(records))
    assert "clip.mp4: 20 frames" in err and str(out) in err and "1 person;" in err
    assert "20/20 frames (100%)" in err                   # the progress bar's closing line
    assert leftovers(tmp_path) == []


def test_boxes_draws_the_person_box_and_no_progress_is_quiet(tmp_path, tiny_args, run_main):
    clip = make_video(tmp_path / "clip.mp4", n=3, fps=10)
    frames = {}
    for name, extra in (("plain", []), ("boxed", ["--boxes"])):
        out = tmp_path / f"{name}.mp4"
        code, _, err = run_main([clip, "--out", out, "--min-person-score", "0", "--min-joint-score", "1",
                                 "--no-ids", "--no-progress", "--max-frames", "1", *extra, *tiny_args])
        assert code == 0, err
        assert "frames (" not in err and "1 frames in" in err       # no progress line, the summary
        frames[name] = first_frame(out).astype(int)
    # the box is the whole frame: its outline runs along the border
    diff = abs(frames["plain"] - frames["boxed"]).max(-1)
    assert diff[:3].mean() > 20 and diff[:, :3].mean() > 20 and diff[40:80, 40:120].mean() < 5


def test_json_only_with_trim_and_max_frames(tmp_path, tiny_args, loud_weights, run_main):
    clip = make_video(tmp_path / "clip.mkv", n=30, fps=10)
    lines, coco = tmp_path / "p.jsonl", tmp_path / "p.json"
    loud = [*tiny_args, "--weights", loud_weights]        # confident joints: the smoothing acts on them
    code, _, err = run_main([clip, "--json", lines, "--coco-json", coco, "--start", "1", "--end", "2.5",
                             "--max-frames", "12", "--no-smooth", *loud])
    assert code == 0, err
    records = read_lines(lines)
    assert [r["timestamp"] for r in records] == pytest.approx([1.0 + i / 10 for i in range(12)])
    results = json.loads(coco.read_text())
    assert len(results) == 12 and [r["image_id"] for r in results] == [r["frame"] for r in records]
    assert all(0.0 <= s <= 1.0 for r in results for s in r["keypoints"][2::3])

    # smoothing (on by default) changes the joints over time; --no-smooth gave the raw ones
    smoothed = tmp_path / "smoothed.jsonl"
    code, _, err = run_main([clip, "--json", smoothed, "--start", "1", "--end", "2.5", "--max-frames", "12",
                             *loud])
    assert code == 0, err
    raw = [r["persons"][0]["keypoints"] for r in records]
    smooth = [r["persons"][0]["keypoints"] for r in read_lines(smoothed)]
    assert len(smooth) == 12 and smooth != raw


def test_min_person_score_leaves_weak_persons_out_of_every_output(tmp_path, tiny_args, loud_weights, run_main):
    """Tiny model (person score ~0.0002): 0 keeps the person, 1.0 and the default leave it out.
    Loud model (person score ~0.53): kept by the default, left out by 0.6."""
    assert 0.001 < DEFAULT_MIN_PERSON_SCORE < 0.5
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=4)
    runs = {}
    for name, extra in (("tiny_0", ["--min-person-score", "0"]), ("tiny_1", ["--min-person-score", "1.0"]),
                        ("tiny_default", []), ("loud_default", ["--weights", loud_weights]),
                        ("loud_0.6", ["--weights", loud_weights, "--min-person-score", "0.6"])):
        lines, coco = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
        code, _, err = run_main([clip, "--json", lines, "--coco-json", coco, *tiny_args, *extra])
        assert code == 0, err
        runs[name] = (read_lines(lines), json.loads(coco.read_text()), err)
    for name in ("tiny_0", "loud_default"):
        records, results, err = runs[name]
        assert [len(r["persons"]) for r in records] == [1, 1, 1, 1] and len(results) == 4
        assert "1 person;" in err
        scores = all_keypoint_scores(records) + [s for r in results for s in r["keypoints"][2::3]]
        assert len(scores) == 2 * 4 * 17 and all(0.0 <= s <= 1.0 for s in scores)
        assert all(0.0 <= p["score"] <= 1.0 for r in records for p in r["persons"])
        assert all(0.0 <= r["score"] <= 1.0 for r in results)
    assert all(p["score"] < 0.001 for r in runs["tiny_0"][0] for p in r["persons"])
    loud = runs["loud_default"][0]
    assert all(0.5 < p["score"] < 0.6 for r in loud for p in r["persons"])
    # heatmap peaks above 1 and below 0 come out as 1 and 0
    assert {p["keypoints"][j][2] for r in loud for p in r["persons"] for j in range(6)} == {1.0}
    assert {p["keypoints"][j][2] for r in loud for p in r["persons"] for j in range(12, 17)} == {0.0}
    for name in ("tiny_1", "tiny_default", "loud_0.6"):
        records, results, err = runs[name]
        assert len(records) == 4 and all(r["persons"] == [] for r in records) and results == []
        assert "0 persons;" in err


def test_json_to_stdout_is_only_json_lines(tmp_path, tiny_args, run_main):
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=6)
    coco = tmp_path / "p.json"
    code, stdout, err = run_main([clip, "--json", "-", "--coco-json", coco, "--min-person-score", "0",
                                  *tiny_args])
    assert code == 0, err
    lines = stdout.splitlines()
    assert stdout.endswith("\n") and len(lines) == 6
    records = [json.loads(line) for line in lines]        # every stdout line is one JSON object
    assert [r["frame"] for r in records] == list(range(6))
    assert all(0.0 <= s <= 1.0 for s in all_keypoint_scores(records))
    assert "clip.mp4: 6 frames" in err and "wrote stdout" in err and str(coco) in err
    assert len(json.loads(coco.read_text())) == 6


@pytest.mark.timeout(120)
def test_json_to_stdout_piped_into_head_ends_cleanly(tmp_path, tiny_weights):
    """`transpose-live video CLIP --json - | head -3` in a real process: three JSON lines, exit 0, no
    traceback. The clip gives more output than a pipe holds, so the reader really goes away mid-run."""
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=200, size=(64, 48), fps=25)
    command = [*console_script(), "video", str(clip), "--json", "-", "--model", "tp_m_a4", "--weights",
               str(tiny_weights), "--device", "cpu", "--detector", "none", "--min-person-score", "0"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        try:
            lines = [proc.stdout.readline() for _ in range(3)]
            proc.stdout.close()                            # what `head -3` does after its third line
            err = proc.stderr.read().decode()
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert all(len(r["persons"]) == 1 for r in records)
    assert code == 0, err
    assert "Traceback" not in err and "error:" not in err, err
    assert "output closed" in err                          # stopped by the reader, not at the clip's end


def run_into_fifo(tmp_path, run_main, args, frames):
    """`video CLIP --json FIFO ARGS` with a reader thread on the FIFO: (code, stdout, stderr, lines read)."""
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=frames)
    fifo = tmp_path / "poses.fifo"
    os.mkfifo(fifo)
    received: list[str] = []

    def reader():
        with open(fifo, encoding="utf-8") as f:
            received.extend(f)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        code, stdout, err = run_main([clip, "--json", fifo, *args])
    finally:
        if thread.is_alive():     # the command never opened the FIFO: let the reader see an end
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(timeout=30)
    assert not thread.is_alive()
    return code, stdout, err, received


@pytest.mark.timeout(60)          # a FIFO misused (opened twice, never opened) hangs: fail instead
def test_json_to_a_fifo_is_streamed_and_the_fifo_stays(tmp_path, tiny_args, run_main):
    code, stdout, err, received = run_into_fifo(tmp_path, run_main, ["--min-person-score", "0", *tiny_args], 8)
    assert code == 0, err
    assert [json.loads(line)["frame"] for line in received] == list(range(8))
    assert all(line.endswith("\n") for line in received)
    assert stat.S_ISFIFO(os.stat(tmp_path / "poses.fifo").st_mode)      # still a FIFO, not replaced by a file
    assert stdout == "" and "8 frames" in err
    assert leftovers(tmp_path) == []


@pytest.mark.timeout(60)
def test_summary_names_the_fifo_it_wrote_to(tmp_path, tiny_args, run_main):
    code, _, err, received = run_into_fifo(tmp_path, run_main, tiny_args, 3)
    assert code == 0 and len(received) == 3, err
    assert f"wrote {tmp_path / 'poses.fifo'}" in err and "nothing written" not in err


def test_json_to_a_regular_file_is_atomic_and_leaves_no_temp_file(tmp_path, tiny_args, run_main):
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=7)
    lines = tmp_path / "out" / "poses.jsonl"
    lines.parent.mkdir()
    lines.write_text("old content\n")
    code, _, err = run_main([clip, "--json", lines, "--min-person-score", "0", *tiny_args])
    assert code == 0, err
    assert [r["frame"] for r in read_lines(lines)] == list(range(7))       # one line per frame, replaced
    assert leftovers(lines.parent) == [] and leftovers(tmp_path) == []
    assert sorted(p.name for p in lines.parent.iterdir()) == ["poses.jsonl"]


def test_json_to_a_symlink_keeps_the_link_and_fills_its_target(tmp_path, tiny_args, run_main):
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=5)
    target = tmp_path / "store" / "real.jsonl"
    target.parent.mkdir()
    target.write_text("old content\n")
    link = tmp_path / "links" / "poses.jsonl"
    link.parent.mkdir()
    link.symlink_to(target)
    code, _, err = run_main([clip, "--json", link, "--min-person-score", "0", *tiny_args])
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.is_file() and not target.is_symlink()
    assert [r["frame"] for r in read_lines(target)] == list(range(5))
    assert leftovers(target.parent) == [] and leftovers(link.parent) == []
    assert sorted(p.name for p in link.parent.iterdir()) == ["poses.jsonl"]


def test_truncated_video_is_processed_to_its_real_end_with_a_warning(tmp_path, tiny_args, run_main):
    full = make_video(tmp_path / "full.mp4", n=40, codec="mpeg4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with FileSource(cut) as source:       # what can be read (a cut-off last packet is skipped as damaged)
        readable = len(list(source))
    out = tmp_path / "out.mp4"
    code, stdout, err = run_main([cut, "--out", out, *tiny_args])
    assert code == 0, err
    assert "warning:" in err and "ends early" in err and stdout == ""
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
        "out_to_stdout": [clip, "--out", "-"],
        "json_unwritable": [clip, "--out", out, "--json", tmp_path / "missing_dir" / "p.jsonl"],
        "same_output_twice": [clip, "--json", tmp_path / "p.json", "--coco-json", tmp_path / "p.json"],
        "no_output": [clip],
        "overwrite_input": [clip, "--out", clip],
        "json_over_input": [clip, "--json", clip],
        "not_a_video_suffix": [clip, "--out", tmp_path / "out.txt"],
        "bad_detect_every": [clip, "--out", out, "--detect-every", "0"],
        "bad_strength": [clip, "--out", out, "--smooth-strength", "1.5"],
        "bad_min_person_score": [clip, "--out", out, "--min-person-score", "-0.5"],
        "bad_device": [clip, "--out", out, "--device", "gpu"],
        "absent_gpu": [clip, "--out", out, "--device", "cuda:7"],
        "bad_detector": [clip, "--out", out, "--detector", "yolo9000"],
        "bad_trim": [clip, "--out", out, "--start", "3", "--end", "1"],
        "no_default_weights": [clip, "--out", out, "--json", tmp_path / "p.jsonl", "--detector", "none"],
    }[case]


@pytest.mark.parametrize("case, message", [
    ("missing", "video file not found"),
    ("text_file", "as a video"),
    ("unwritable", "does not exist"),
    ("out_is_folder", "--out must be a video file"),
    ("out_to_stdout", "--out - is not possible"),
    ("json_unwritable", "does not exist"),
    ("same_output_twice", "must name different outputs"),
    ("no_output", "--out"),
    ("overwrite_input", "refusing to overwrite"),
    ("json_over_input", "refusing to overwrite"),
    ("not_a_video_suffix", "--out must be a video file"),
    ("bad_detect_every", "detect_every"),
    ("bad_strength", "strength"),
    ("bad_min_person_score", "min_person_score must be between 0 and 1"),
    ("bad_device", "unknown device 'gpu'"),
    ("absent_gpu", "device 'cuda:7' asked for, but this machine has"),
    ("bad_detector", "unknown detector"),
    ("bad_trim", "end"),
    ("no_default_weights", "default checkpoint is not installed"),
])
def test_bad_input_is_one_line_exit_2_and_no_file_left(tmp_path, tiny_weights, monkeypatch, run_main, case, message):
    args = make_case(tmp_path, monkeypatch, case)
    if case != "no_default_weights":     # the tiny model (a case's own --device comes later and wins)
        args = [*args[:1], "--model", "tp_m_a4", "--weights", tiny_weights, "--device", "cpu", *args[1:]]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_main(args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # no output, no hidden temp file
