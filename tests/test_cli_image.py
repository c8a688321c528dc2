"""`transpose-live image` end to end with a tiny model on synthetic photos (and on ../shared photos when present)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from transpose_live.detect import Detections
from transpose_live.errors import TransposeLiveError
from transpose_live.skeleton import KEYPOINT_NAMES

try:  # installed: the cli/ folder is the package transpose_live.cli
    from transpose_live.cli import app as app_module
except ImportError:  # run from the checkout
    from cli import app as app_module

cmd_image = importlib.import_module(f"{app_module.__package__}.cmd_image")


def tiny_estimator(model, weights, device, flip):
    import torch

    from transpose_live.estimator import PoseEstimator
    from transpose_live.models import create_model

    torch.manual_seed(0)
    return PoseEstimator(create_model("tp_m_a4", image_size=(64, 48)), device="cpu", flip=flip)


class FixedDetector:
    """Returns the same detections for every photo (none at all when boxes is empty)."""

    def __init__(self, boxes):
        self.found = Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return self.found


@pytest.fixture
def tiny(monkeypatch):
    """The tiny model instead of the shipped one; records what the command asked for."""
    asked = {}

    def build(model, weights, device, flip):
        asked.update(model=model, weights=weights, device=device, flip=flip)
        return tiny_estimator(model, weights, device, flip)

    monkeypatch.setattr(cmd_image, "build_estimator", build)
    return asked


def synthetic_photo(path, size=(120, 160), gray=False):
    """A light background with a dark stick figure; written in the format of path's suffix."""
    h, w = size
    img = np.full((h, w, 3), 210, np.uint8)
    cv2.circle(img, (w // 2, h // 5), h // 12, (40, 40, 40), -1)
    cv2.line(img, (w // 2, h // 4), (w // 2, 2 * h // 3), (40, 40, 40), 4)
    cv2.line(img, (w // 2, 2 * h // 3), (w // 2 - 15, h - 5), (40, 40, 40), 4)
    cv2.line(img, (w // 2, 2 * h // 3), (w // 2 + 15, h - 5), (40, 40, 40), 4)
    if gray:
        img = img[..., 0]
    assert cv2.imwrite(str(path), img)
    return path


def run(args):
    return CliRunner().invoke(app_module.app, ["image", *map(str, args)])


def run_main(monkeypatch, capsys, args):
    """Through cli.app:main, as the console script runs: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["transpose-live", "image", *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        app_module.main()
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


def minimal_coco_gt(path, image_id, width, height):
    """A one-image, one-person ground truth file pycocotools can load."""
    kps = []
    for j in range(17):
        kps += [width / 2 + j, height / 2, 2]
    gt = {
        "images": [{"id": image_id, "width": width, "height": height, "file_name": f"{image_id:012d}.jpg"}],
        "annotations": [{"id": 1, "image_id": image_id, "category_id": 1, "keypoints": kps, "num_keypoints": 17,
                         "bbox": [10, 10, 100, 100], "area": 10000.0, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(KEYPOINT_NAMES), "skeleton": []}],
    }
    path.write_text(json.dumps(gt))
    return path


def test_annotated_jpeg_and_coco_results_json(tmp_path, tiny):
    photo = synthetic_photo(tmp_path / "000000000042.jpg")
    out, poses = tmp_path / "annotated.jpg", tmp_path / "poses.json"
    result = run([photo, "--out", out, "--json", poses, "--box", "40,5,80,110", "--box", "0,0,30,30",
                  "--device", "cpu", "--no-flip"])
    assert result.exit_code == 0, result.output
    assert tiny == {"model": "default", "weights": None, "device": "cpu", "flip": False}

    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape == (120, 160, 3)
    assert "person 1: box 40,5,80,110" in result.stdout and "person 2: box 0,0,30,30" in result.stdout

    results = json.loads(poses.read_text())
    assert len(results) == 2
    for r in results:
        assert r["image_id"] == 42 and r["category_id"] == 1 and len(r["keypoints"]) == 51
        assert 0.0 <= r["score"] <= 1.0

    from pycocotools.coco import COCO

    gt = COCO(str(minimal_coco_gt(tmp_path / "gt.json", 42, 160, 120)))
    dt = gt.loadRes(str(poses))
    assert sorted(a["image_id"] for a in dt.anns.values()) == [42, 42]


def test_several_photos_go_to_out_dir_with_index_ids(tmp_path, tiny, monkeypatch):
    a = synthetic_photo(tmp_path / "a.png")
    b = synthetic_photo(tmp_path / "b.png", size=(90, 70), gray=True)    # 1-channel PNG
    detector = FixedDetector([[20, 10, 40, 60]])
    monkeypatch.setattr(cmd_image, "build_detector", lambda spec: detector)
    out_dir = tmp_path / "drawn"
    result = run([a, b, "--out-dir", out_dir, "--json", tmp_path / "p.json", "--attention"])
    assert result.exit_code == 0, result.output
    assert detector.calls == 2
    assert cv2.imread(str(out_dir / "a_pose.jpg")).shape == (120, 160, 3)
    assert cv2.imread(str(out_dir / "b_pose.jpg")).shape == (90, 70, 3)
    assert [r["image_id"] for r in json.loads((tmp_path / "p.json").read_text())] == [0, 1]


def test_joint_implies_attention_overlay(tmp_path, tiny):
    photo = synthetic_photo(tmp_path / "p.png")
    args = [photo, "--box", "40,5,80,110", "--min-score", "0", "--no-flip"]
    assert run([*args, "--out", tmp_path / "plain.png"]).exit_code == 0
    result = run([*args, "--out", tmp_path / "nose.png", "--joint", "nose"])
    assert result.exit_code == 0, result.output
    plain, nose = cv2.imread(str(tmp_path / "plain.png")), cv2.imread(str(tmp_path / "nose.png"))
    changed = (plain != nose).any(-1)
    assert changed.sum() > 500            # the colour-mapped area over the person's crop


def test_nobody_detected_falls_back_to_the_whole_image(tmp_path, tiny, monkeypatch):
    photo = synthetic_photo(tmp_path / "empty.jpg")
    monkeypatch.setattr(cmd_image, "build_detector", lambda spec: FixedDetector([]))
    result = run([photo, "--json", tmp_path / "p.json"])
    assert result.exit_code == 0, result.output
    assert "found nobody" in result.stderr and "whole image" in result.stderr
    assert "person 1: box 0,0,160,120" in result.stdout
    assert len(json.loads((tmp_path / "p.json").read_text())) == 1


@pytest.mark.parametrize("box", ["1,2,3", "a,b,c,d", "1,2,0,5", "1,2,3,-4", "1,2,3,nan", "1;2;3;4"])
def test_malformed_box_is_one_line_exit_2(tmp_path, tiny, monkeypatch, capsys, box):
    photo = synthetic_photo(tmp_path / "p.jpg")
    code, out, err = run_main(monkeypatch, capsys, [photo, "--box", box])
    assert code == 2 and out == ""
    assert err.startswith("error: --box") and err.count("\n") == 1


def test_cli_box_parsing():
    assert cmd_image.parse_box(" 1.5, 2,3 ,4") == (1.5, 2.0, 3.0, 4.0)
    with pytest.raises(TransposeLiveError, match="x,y,w,h"):
        cmd_image.parse_box("1,2,3,4,5")


@pytest.mark.parametrize("case, message", [
    ("missing", "photo not found"),
    ("unreadable", "cannot read"),
    ("box_outside", "lies outside"),
    ("no_folder", "does not exist"),
    ("bad_suffix", "unknown image format"),
    ("two_photos_one_out", "--out names one file"),
    ("overwrite_input", "refusing to overwrite"),
    ("bad_joint", "--joint must be one of"),
    ("bad_detector", "unknown detector"),
    ("bad_device", "--device must be"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tiny, monkeypatch, capsys, case, message):
    photo = synthetic_photo(tmp_path / "p.jpg")
    args = {
        "missing": [tmp_path / "nope.jpg"],
        "unreadable": [tmp_path / "text.jpg", "--box", "1,1,5,5"],
        "box_outside": [photo, "--box", "500,10,20,20"],
        "no_folder": [photo, "--out", tmp_path / "no" / "such" / "dir.jpg"],
        "bad_suffix": [photo, "--out", tmp_path / "out.notanimage"],
        "two_photos_one_out": [photo, photo, "--out", tmp_path / "o.jpg"],
        "overwrite_input": [photo, "--out", photo],
        "bad_joint": [photo, "--joint", "tail"],
        "bad_detector": [photo, "--detector", "magic"],
        "bad_device": [photo, "--device", "tpu"],
    }[case]
    (tmp_path / "text.jpg").write_text("not a picture")
    code, out, err = run_main(monkeypatch, capsys, args)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_photo_from_the_console(tmp_path):
    """The real entry point in a fresh process: one line, exit 2, no model loaded."""
    done = subprocess.run([sys.executable, "-m", "transpose_live", "image", str(tmp_path / "gone.jpg")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: photo not found: {tmp_path / 'gone.jpg'}"]


# ------------------------------------------------------------------------------------ real photos

@pytest.mark.shared
def test_real_photos_color_and_grayscale(tmp_path, tiny):
    """messi5.jpg (colour) and basketball1.png (1-channel grayscale) through the real SSD detector."""
    from transpose_live.detect.ssd import find_model_files

    try:
        find_model_files()
    except TransposeLiveError as exc:
        pytest.skip(str(exc))
    messi = shared_path("data", "images", "messi5.jpg")
    court = shared_path("data", "images", "basketball1.png")
    assert cv2.imread(str(court), cv2.IMREAD_UNCHANGED).ndim == 2
    result = run([messi, court, "--out-dir", tmp_path, "--json", tmp_path / "p.json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "messi5_pose.jpg")).shape == (342, 548, 3)
    assert cv2.imread(str(tmp_path / "basketball1_pose.jpg")).shape == (480, 640, 3)
    assert "messi5.jpg: " in result.stdout and "basketball1.png: 2 persons" in result.stdout
    results = json.loads((tmp_path / "p.json").read_text())
    assert {r["image_id"] for r in results} == {0, 1}
    assert "found nobody" not in result.stderr


@pytest.mark.shared
def test_shipped_model_puts_the_skeleton_on_messi(tmp_path):
    """With the shipped checkpoint (skips when absent) and a hand box: a plausible upright kick."""
    from transpose_live.hub import entries

    if "default" not in entries():
        pytest.skip("the shipped default checkpoint is not installed")
    messi = shared_path("data", "images", "messi5.jpg")
    result = run([messi, "--box", "60,55,410,285", "--json", tmp_path / "p.json", "--device", "cpu", "--no-flip"])
    assert result.exit_code == 0, result.output
    (pose,) = json.loads((tmp_path / "p.json").read_text())
    kp = np.array(pose["keypoints"]).reshape(17, 3)
    assert kp[:, 2].mean() > 0.3
    assert (kp[:, 0] >= 60).all() and (kp[:, 0] <= 470).all()
    nose, ankles = kp[0], kp[15:17]
    assert nose[1] < ankles[:, 1].min() - 100          # the head well above the feet
    assert abs(nose[0] - 240) < 40 and abs(nose[1] - 100) < 40   # the head is near (240, 100)
