"""The public API (transpose_live.process_video / annotate_image / open_run) and RunSpec, through the real
code paths with a tiny real model; the README's example is run as written."""

from __future__ import annotations

import json
import re
import shutil
import threading

import numpy as np
import pytest

import transpose_live as tl
from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec

from helpers import REPO, synthetic_clip


@pytest.fixture
def clip(tmp_path):
    return synthetic_clip(tmp_path / "clip.mp4", frames=12)


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Python block, on the shipped sample and the shipped default model."""
    block = re.search(r"## Python API.*?```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    (tmp_path / "samples").mkdir()
    shutil.copy(REPO / "samples" / "pedestrians.mp4", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert summary.frames == 20 and summary.stopped is None
    assert summary.persons >= 1 and sorted(summary.outputs) == ["out.mp4", "poses.jsonl"]
    lines = (tmp_path / "poses.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(20))
    assert namespace["frame"].index == 9 and namespace["frame"].image is not None


def test_process_video_writes_outputs_and_summarises(tmp_path, clip, tiny_options):
    out, js, coco = tmp_path / "out.mp4", tmp_path / "p.jsonl", tmp_path / "coco.json"
    summary = tl.process_video(clip, out=out, json=js, coco_json=coco, min_person_score=0.0, **tiny_options)
    assert (summary.frames, summary.dropped, summary.persons) == (12, 0, 1)
    assert summary.outputs == [str(out), str(js), str(coco)]
    records = [json.loads(line) for line in js.read_text().splitlines()]
    assert len(records) == 12 and all(len(r["persons"]) == 1 for r in records)
    assert len(json.loads(coco.read_text())) == 12
    assert "clip.mp4: 12 frames" in summary.line() and "1 person;" in summary.line()


def test_min_person_score_leaves_out_low_scoring_persons(clip, tiny_options):
    """One threshold for every entry point: the tiny random model scores far below 1."""
    with tl.open_run(clip, render=False, min_person_score=1.0, **tiny_options) as run:
        assert [len(f.poses) for f in run] == [0] * 12
    with tl.open_run(clip, render=False, min_person_score=0.0, **tiny_options) as run:
        frames = list(run)
    assert [len(f.poses) for f in frames] == [1] * 12
    scores = np.concatenate([p.scores for f in frames for p in f.poses])
    assert scores.min() >= 0.0 and scores.max() <= 1.0


def test_open_run_iterates_drawn_frames_and_stops_when_left(clip, tiny_options):
    before = threading.active_count()
    with tl.open_run(clip, min_person_score=0.0, **tiny_options) as run:
        first = next(run)
        assert first.index == 0 and first.image.shape == (64, 96, 3) and first.image.dtype == np.uint8
        second = next(run)
    assert second.index == 1
    assert run.stats.stopped and run.stats.frames_processed < 12      # left early: the pipeline stopped
    assert threading.active_count() == before


def test_open_run_reports_a_pipeline_error_to_the_reader(tmp_path, tiny_options):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(TransposeLiveError):
        with tl.open_run(broken, **tiny_options) as run:
            list(run)


def test_annotate_image_finds_nobody_on_an_empty_picture(tmp_path, tiny_weights):
    import cv2

    image = np.full((240, 320, 3), 200, np.uint8)
    cv2.circle(image, (100, 120), 50, (0, 0, 255), -1)
    out = tmp_path / "drawn.png"
    poses = tl.annotate_image(image, out=out, model="tp_m_a4", weights=str(tiny_weights), device="cpu")
    assert poses == []                                         # the real SSD detector found nobody
    assert np.array_equal(cv2.imread(str(out)), image)        # nothing drawn


def test_annotate_image_with_boxes_uses_them(tiny_options):
    image = np.zeros((120, 160, 3), np.uint8)
    poses = tl.annotate_image(image, boxes=[[10, 10, 50, 100], [90, 5, 40, 90]], min_person_score=0.0,
                              **tiny_options)
    assert [p.box for p in poses] == [(10.0, 10.0, 50.0, 100.0), (90.0, 5.0, 40.0, 90.0)]


def test_a_runner_is_reused_but_refuses_to_change_what_it_loaded(clip, tiny_options):
    runner = tl.load_runner(**tiny_options)
    summary = tl.process_video(clip, coco_json=None, json=None, out=None, runner=runner, max_frames=3)
    assert summary.frames == 3 and summary.outputs == []
    with pytest.raises(TransposeLiveError, match="device differ"):
        runner.with_options(device="auto" if tiny_options["device"] != "auto" else "cpu")


@pytest.mark.parametrize("options, message", [
    ({"modle": "x"}, "unknown option modle"),
    ({"detect_every": 0}, "detect_every must be a whole number >= 1"),
    ({"min_person_score": 1.5}, "min_person_score must be between 0 and 1"),
    ({"device": "gpu"}, "unknown device 'gpu'"),
    ({"device": "cuda:7"}, "device 'cuda:7' asked for"),
    ({"detector": "yolo"}, "unknown detector 'yolo'"),
    ({"detector": "onnx:missing.onnx"}, "detector file not found: missing.onnx"),
    ({"weights": "missing.pth"}, "weights file not found: missing.pth"),
    ({"joint": "left_elbow_x"}, "joint must be one of"),
    ({"start": 5.0, "end": 2.0}, "end (2 s) must come after start (5 s)"),
])
def test_runspec_refuses_bad_options_with_one_clear_error(options, message):
    with pytest.raises(TransposeLiveError) as err:
        RunSpec.from_options(**options)
    assert message in str(err.value)


def test_runspec_joint_implies_attention():
    assert RunSpec.from_options(joint="left_wrist").attention is True
