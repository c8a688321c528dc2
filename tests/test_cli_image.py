"""`transpose-live image` end to end through the real CLI (cli.app:main) with a tiny random model on
synthetic photos (and on ../shared photos when present): annotated pictures, COCO results JSON, the
summary on stderr (stdout carries only results), nobody found -> [] and nothing drawn, bad input ->
one stderr line and exit 2.

The tiny model's person scores are ~0.0002, far below the default --min-person-score: tests that
want persons pass --min-person-score 0."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import DEFAULT_MIN_PERSON_SCORE
from transpose_live.skeleton import KEYPOINT_NAMES

from helpers import main_runner, shared_path

try:  # installed: the cli/ folder is the package transpose_live.cli
    from transpose_live.cli import app as app_module
except ImportError:  # run from the checkout
    from cli import app as app_module

cmd_image = importlib.import_module(f"{app_module.__package__}.cmd_image")


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


def discs_photo(path, size=(120, 160)):
    """Nobody in it: three coloured discs on a flat background."""
    h, w = size
    img = np.full((h, w, 3), (90, 160, 210), np.uint8)
    cv2.circle(img, (w // 4, h // 2), h // 6, (0, 0, 255), -1)
    cv2.circle(img, (2 * w // 3, 2 * h // 5), h // 5, (0, 200, 0), -1)
    cv2.circle(img, (w // 2, 4 * h // 5), h // 8, (255, 0, 0), -1)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def tiny_args(tiny_weights):
    """The tiny model on the CPU (the detector stays the command's default unless a test names one)."""
    return ["--model", "tp_m_a4", "--weights", str(tiny_weights), "--device", "cpu"]


@pytest.fixture
def run_main(monkeypatch, capsys):
    """`transpose-live image ARGS` through cli.app:main: (exit code, stdout, stderr)."""
    return main_runner(monkeypatch, capsys, "image")


def keypoint_scores(results):
    return [s for r in results for s in r["keypoints"][2::3]]


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


def test_annotated_jpeg_and_coco_results_json(tmp_path, tiny_args, run_main):
    photo = synthetic_photo(tmp_path / "000000000042.jpg")
    out, poses = tmp_path / "annotated.jpg", tmp_path / "poses.json"
    code, stdout, err = run_main([photo, "--out", out, "--json", poses, "--box", "40,5,80,110",
                                  "--box", "0,0,30,30", "--min-person-score", "0", "--no-flip", *tiny_args])
    assert code == 0, err
    assert stdout == ""                                  # messages go to stderr; results to the files

    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape == (120, 160, 3)
    assert "000000000042.jpg: 2 persons (160x120)" in err
    assert "person 1: box 40,5,80,110" in err and "person 2: box 0,0,30,30" in err
    assert f"wrote {out}" in err and f"wrote {poses} (2 poses)" in err

    results = json.loads(poses.read_text())
    assert len(results) == 2
    for r in results:
        assert r["image_id"] == 42 and r["category_id"] == 1 and len(r["keypoints"]) == 51
        assert 0.0 <= r["score"] <= 1.0
    assert all(0.0 <= s <= 1.0 for s in keypoint_scores(results))

    from pycocotools.coco import COCO

    gt = COCO(str(minimal_coco_gt(tmp_path / "gt.json", 42, 160, 120)))
    dt = gt.loadRes(str(poses))
    assert sorted(a["image_id"] for a in dt.anns.values()) == [42, 42]


def test_json_to_stdout_carries_only_the_results(tmp_path, tiny_args, run_main):
    photo = synthetic_photo(tmp_path / "p.png")
    code, stdout, err = run_main([photo, "--json", "-", "--box", "40,5,80,110", "--min-person-score", "0",
                                  *tiny_args])
    assert code == 0, err
    (result,) = json.loads(stdout)                       # stdout is exactly one JSON document
    assert result["image_id"] == 0 and len(result["keypoints"]) == 51
    assert "p.png: 1 person (160x120)" in err and "person 1: box 40,5,80,110" in err


def test_several_photos_go_to_out_dir_with_index_ids(tmp_path, tiny_args, run_main):
    a = synthetic_photo(tmp_path / "a.png")
    b = synthetic_photo(tmp_path / "b.png", size=(90, 70), gray=True)    # 1-channel PNG
    out_dir = tmp_path / "drawn"
    code, _, err = run_main([a, b, "--out-dir", out_dir, "--json", tmp_path / "p.json", "--attention",
                             "--detector", "none", "--min-person-score", "0", *tiny_args])
    assert code == 0, err
    assert cv2.imread(str(out_dir / "a_pose.jpg")).shape == (120, 160, 3)
    assert cv2.imread(str(out_dir / "b_pose.jpg")).shape == (90, 70, 3)
    assert [r["image_id"] for r in json.loads((tmp_path / "p.json").read_text())] == [0, 1]
    # --detector none: the whole photo is the person
    assert "person 1: box 0,0,160,120" in err and "person 1: box 0,0,70,90" in err


def test_joint_implies_attention_overlay(tmp_path, tiny_args, run_main):
    photo = synthetic_photo(tmp_path / "p.png")
    args = [photo, "--box", "40,5,80,110", "--min-joint-score", "0", "--min-person-score", "0", "--no-flip",
            *tiny_args]
    assert run_main([*args, "--out", tmp_path / "plain.png"])[0] == 0
    code, _, err = run_main([*args, "--out", tmp_path / "nose.png", "--joint", "nose"])
    assert code == 0, err
    plain, nose = cv2.imread(str(tmp_path / "plain.png")), cv2.imread(str(tmp_path / "nose.png"))
    changed = (plain != nose).any(-1)
    assert changed.sum() > 500            # the colour-mapped area over the person's crop


def test_flip_test_is_off_by_default(tmp_path, tiny_args, run_main):
    photo = synthetic_photo(tmp_path / "p.png")
    keypoints = {}
    for name, extra in (("default", []), ("no_flip", ["--no-flip"]), ("flip", ["--flip"])):
        path = tmp_path / f"{name}.json"
        code, _, err = run_main([photo, "--json", path, "--box", "40,5,80,110", "--min-person-score", "0",
                                 *extra, *tiny_args])
        assert code == 0, err
        (result,) = json.loads(path.read_text())
        keypoints[name] = result["keypoints"]
    assert keypoints["default"] == keypoints["no_flip"]
    assert keypoints["flip"] != keypoints["no_flip"]


def test_min_person_score_leaves_out_weak_persons(tmp_path, tiny_args, loud_weights, run_main):
    """Tiny model (person score ~0.0002): 0 keeps the person, 1.0 and the default leave it out.
    Loud model (person score ~0.53): kept by the default, left out by 0.6. What is left out is neither
    drawn nor in the JSON; joint scores are within [0, 1] whatever the heatmaps say."""
    assert 0.001 < DEFAULT_MIN_PERSON_SCORE < 0.5
    photo = synthetic_photo(tmp_path / "p.png")
    found = {}
    for name, extra in (("tiny_0", ["--min-person-score", "0"]), ("tiny_1", ["--min-person-score", "1.0"]),
                        ("tiny_default", []), ("loud_default", ["--weights", loud_weights]),
                        ("loud_0.6", ["--weights", loud_weights, "--min-person-score", "0.6"])):
        path, out = tmp_path / f"{name}.json", tmp_path / f"{name}.png"
        code, _, err = run_main([photo, "--json", path, "--out", out, "--detector", "none", "--min-joint-score", "0",
                                 *tiny_args, *extra])
        assert code == 0, err
        found[name] = json.loads(path.read_text())
        drawn_nothing = np.array_equal(cv2.imread(str(out)), cv2.imread(str(photo)))
        assert drawn_nothing == (not found[name])
        assert ("no person found" in err) == (not found[name])
    for name in ("tiny_0", "loud_default"):
        (result,) = found[name]
        assert 0.0 <= result["score"] <= 1.0
        assert all(0.0 <= s <= 1.0 for s in keypoint_scores(found[name]))
    assert found["tiny_0"][0]["score"] < 0.001 and 0.5 < found["loud_default"][0]["score"] < 0.6
    loud_scores = keypoint_scores(found["loud_default"])
    assert set(loud_scores[:6]) == {1.0} and set(loud_scores[12:]) == {0.0}      # clipped peaks
    assert found["tiny_1"] == [] and found["tiny_default"] == [] and found["loud_0.6"] == []


def test_photo_with_nobody_in_it_gives_no_pose_and_draws_nothing(tmp_path, tiny_args, run_main):
    """The real SSD detector on coloured discs: nobody, even with --min-person-score 0."""
    photo = discs_photo(tmp_path / "discs.png")
    out, poses = tmp_path / "discs_out.png", tmp_path / "poses.json"
    code, stdout, err = run_main([photo, "--out", out, "--json", poses, "--min-person-score", "0", *tiny_args])
    assert code == 0, err
    assert stdout == ""
    assert poses.read_text().strip() == "[]"
    assert "discs.png: no person found (160x120)" in err and "wrote" in err and "(0 poses)" in err
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.imread(str(photo), cv2.IMREAD_UNCHANGED))


@pytest.mark.shared
def test_fruits_photo_has_nobody_in_it(tmp_path, tiny_args, run_main):
    fruits = shared_path("data", "images", "fruits.jpg")
    out, poses = tmp_path / "fruits.png", tmp_path / "poses.json"
    code, _, err = run_main([fruits, "--out", out, "--json", poses, "--min-person-score", "0", *tiny_args])
    assert code == 0, err
    assert json.loads(poses.read_text()) == [] and poses.read_text().strip() == "[]"
    assert "fruits.jpg: no person found" in err
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(fruits)))


@pytest.mark.parametrize("box", ["1,2,3", "a,b,c,d", "1,2,0,5", "1,2,3,-4", "1,2,3,nan", "1;2;3;4"])
def test_malformed_box_is_one_line_exit_2(tmp_path, tiny_args, run_main, box):
    photo = synthetic_photo(tmp_path / "p.jpg")
    code, out, err = run_main([photo, "--box", box, *tiny_args])
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
    ("json_over_input", "refusing to overwrite the input photo"),
    ("bad_joint", "joint must be one of"),
    ("bad_detector", "unknown detector"),
    ("bad_device", "unknown device 'tpu'"),
    ("absent_gpu", "device 'cuda:7' asked for, but this machine has"),
    ("bad_min_person_score", "min_person_score must be between 0 and 1"),
    ("weights_missing", "weights file not found"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tiny_args, run_main, case, message):
    photo = synthetic_photo(tmp_path / "p.jpg")
    args = {
        "missing": [tmp_path / "nope.jpg"],
        "unreadable": [tmp_path / "text.jpg", "--box", "1,1,5,5"],
        "box_outside": [photo, "--box", "500,10,20,20"],
        "no_folder": [photo, "--out", tmp_path / "no" / "such" / "dir.jpg"],
        "bad_suffix": [photo, "--out", tmp_path / "out.notanimage"],
        "two_photos_one_out": [photo, photo, "--out", tmp_path / "o.jpg"],
        "overwrite_input": [photo, "--out", photo],
        "json_over_input": [photo, "--json", photo],
        "bad_joint": [photo, "--joint", "tail"],
        "bad_detector": [photo, "--detector", "magic"],
        "bad_device": [photo, "--device", "tpu"],
        "absent_gpu": [photo, "--device", "cuda:7"],
        "bad_min_person_score": [photo, "--min-person-score", "1.5"],
        "weights_missing": [photo, "--weights", tmp_path / "nowhere.pth"],
    }[case]
    (tmp_path / "text.jpg").write_text("not a picture")
    before = sorted(p.name for p in tmp_path.iterdir())
    # the tiny model first: a case's own --device / --weights comes later on the line and wins
    code, out, err = run_main([*args[:1], *tiny_args, *args[1:]])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # nothing written, no temp file left


def test_renamed_options_are_gone(tmp_path, tiny_args, run_main):
    """--draw-boxes became --boxes, --min-score became --min-joint-score: the old names are usage errors."""
    photo = synthetic_photo(tmp_path / "p.png")
    for old in (["--draw-boxes"], ["--min-score", "0"]):
        code, out, err = run_main([photo, *old, *tiny_args])
        assert code == 2 and out == "" and "No such option" in err, err
    code, _, err = run_main([photo, "--boxes", "--min-joint-score", "0", "--box", "40,5,80,110",
                             "--min-person-score", "0", "--out", tmp_path / "o.png", *tiny_args])
    assert code == 0, err


def test_box_outline_is_drawn_with_boxes(tmp_path, tiny_args, run_main):
    photo = synthetic_photo(tmp_path / "p.png")
    args = [photo, "--box", "40,5,80,110", "--min-person-score", "0", "--min-joint-score", "1", *tiny_args]
    assert run_main([*args, "--out", tmp_path / "plain.png"])[0] == 0        # no joint reaches 1: nothing
    assert run_main([*args, "--out", tmp_path / "boxed.png", "--boxes"])[0] == 0
    plain, boxed = cv2.imread(str(tmp_path / "plain.png")), cv2.imread(str(tmp_path / "boxed.png"))
    assert np.array_equal(plain, cv2.imread(str(photo)))
    changed = np.argwhere((plain != boxed).any(-1))
    assert len(changed) > 100
    (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
    assert abs(x0 - 40) <= 3 and abs(y0 - 5) <= 3 and abs(x1 - 119) <= 3 and abs(y1 - 114) <= 3


def test_missing_photo_from_the_console(tmp_path):
    """The real entry point in a fresh process: one line, exit 2, no model loaded."""
    done = subprocess.run([sys.executable, "-m", "transpose_live", "image", str(tmp_path / "gone.jpg")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: photo not found: {tmp_path / 'gone.jpg'}"]


# ------------------------------------------------------------------------------------ real photos

@pytest.mark.shared
def test_real_photos_color_and_grayscale(tmp_path, tiny_args, run_main):
    """messi5.jpg (colour) and basketball1.png (1-channel grayscale) through the real SSD detector."""
    messi = shared_path("data", "images", "messi5.jpg")
    court = shared_path("data", "images", "basketball1.png")
    assert cv2.imread(str(court), cv2.IMREAD_UNCHANGED).ndim == 2
    code, _, err = run_main([messi, court, "--out-dir", tmp_path, "--json", tmp_path / "p.json",
                             "--min-person-score", "0", *tiny_args])
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "messi5_pose.jpg")).shape == (342, 548, 3)
    assert cv2.imread(str(tmp_path / "basketball1_pose.jpg")).shape == (480, 640, 3)
    assert "messi5.jpg: " in err and "basketball1.png: 2 persons" in err
    results = json.loads((tmp_path / "p.json").read_text())
    assert {r["image_id"] for r in results} == {0, 1}
    assert all(0.0 <= s <= 1.0 for s in keypoint_scores(results))
    assert "no person found" not in err


@pytest.mark.shared
def test_shipped_model_puts_the_skeleton_on_messi(tmp_path, run_main):
    """With the shipped checkpoint (skips when absent) and a hand box: a plausible upright kick."""
    from transpose_live.model.hub import entries

    if "default" not in entries():
        pytest.skip("the shipped default checkpoint is not installed")
    messi = shared_path("data", "images", "messi5.jpg")
    code, _, err = run_main([messi, "--box", "60,55,410,285", "--json", tmp_path / "p.json", "--device", "cpu",
                             "--no-flip"])
    assert code == 0, err
    (pose,) = json.loads((tmp_path / "p.json").read_text())
    kp = np.array(pose["keypoints"]).reshape(17, 3)
    assert kp[:, 2].mean() > 0.3 and ((kp[:, 2] >= 0) & (kp[:, 2] <= 1)).all()
    assert (kp[:, 0] >= 60).all() and (kp[:, 0] <= 470).all()
    nose, ankles = kp[0], kp[15:17]
    assert nose[1] < ankles[:, 1].min() - 100          # the head well above the feet
    assert abs(nose[0] - 240) < 40 and abs(nose[1] - 100) < 40   # the head is near (240, 100)
