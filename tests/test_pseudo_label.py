"""tools/training/pseudo_label.py: the teacher's flip / multi-crop test-time augmentation and --fill-missing."""

from __future__ import annotations

import importlib.util
import json
import sys

import cv2
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.skeleton import FLIP_INDEX

from helpers import REPO, shared_path


@pytest.fixture(scope="module")
def pl():
    sys.path.insert(0, str(REPO / "tools" / "training"))
    spec = importlib.util.spec_from_file_location("pseudo_label", REPO / "tools" / "training" / "pseudo_label.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_average_runs_weights_positions_by_score(pl):
    a = np.zeros((17, 3), np.float32)
    b = np.zeros((17, 3), np.float32)
    a[:, :2], a[:, 2] = 10.0, 0.9
    b[:, :2], b[:, 2] = 20.0, 0.1
    out = pl.average_runs(np.stack([a, b]))
    np.testing.assert_allclose(out[:, :2], 11.0, atol=1e-4)          # (10 * 0.9 + 20 * 0.1) / 1.0
    np.testing.assert_allclose(out[:, 2], 0.5, atol=1e-6)
    np.testing.assert_array_equal(pl.average_runs(a[None]), a)


@pytest.mark.shared
def test_flip_tta_is_mirror_symmetric_with_the_real_teacher(pl):
    """With flip on, the teacher on a mirrored image gives the mirrored pose, left and right swapped:
    this fails if the mirrored run is not mapped back (x) or its joints are not swapped."""
    teacher = pl.Teacher(shared_path("teachers", "movenet_thunder.onnx"), threads=1, flip=True, scales=(1.0, 1.25))
    img = cv2.imread(str(shared_path("data", "images", "messi5.jpg")))
    h, w = img.shape[:2]
    box = (200.0, 20.0, 150.0, 300.0)        # the footballer
    mirrored_box = (w - box[0] - box[2], box[1], box[2], box[3])
    a = teacher(img, box)
    b = teacher(np.ascontiguousarray(img[:, ::-1]), mirrored_box)[list(FLIP_INDEX)]
    b[:, 0] = w - 1 - b[:, 0]
    sure = (a[:, 2] > 0.3) & (b[:, 2] > 0.3)
    assert sure.sum() >= 10
    assert np.abs(a[sure, :2] - b[sure, :2]).max() < 3.0             # pixels; crop rounding only
    plain = pl.Teacher(shared_path("teachers", "movenet_thunder.onnx"), threads=1)
    assert plain.tta == "none" and teacher.tta == "flip, scales 1.0/1.25"


class _FixedTeacher:
    """A stand-in teacher that answers the same pose (17, 3) for every crop."""

    name = "fixed"
    tta = "none"

    def __init__(self, kps):
        self.kps = np.asarray(kps, np.float32)

    def __call__(self, frame, box):
        return self.kps.copy()


def _lsp_person():
    """A person with the 12 limb joints labelled, face joints unlabelled, as in lspet/person_keypoints.json."""
    kps = np.zeros((17, 3))
    for j in range(5, 17):
        kps[j] = (40 + 4 * (j % 2) * 10, 60 + 8 * j, 2)
    ann = {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 12,
           "keypoints": kps.reshape(-1).tolist(), "bbox": [30.0, 90.0, 60.0, 110.0], "area": 6600.0}
    return ann, kps


def _args(pl, **over):
    args = pl.parse_args(["--teacher", "x.onnx", "--fill-missing", "a.json", "imgs"])
    for k, v in over.items():
        setattr(args, k, v)
    return args


def test_fill_missing_fills_only_the_face_and_keeps_human_labels(pl):
    ann, kps = _lsp_person()
    teacher_kps = np.zeros((17, 3), np.float32)
    teacher_kps[:, :2] = kps[:, :2] + 1.5                               # agrees with every human label
    teacher_kps[:, 2] = 0.8
    teacher_kps[:5, :2] = [(50, 70), (53, 67), (47, 67), (57, 69), (43, 69)]   # a head above the box top
    teacher_kps[4, 2] = 0.1                                             # the right ear: unsure
    out, why = pl.fill_person(_FixedTeacher(teacher_kps), np.zeros((240, 160, 3), np.uint8), ann, _args(pl))
    assert why == "filled"
    got = np.asarray(out["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(got[:4, :2], teacher_kps[:4, :2], atol=0.01)
    assert list(got[:5, 2]) == [2, 2, 2, 2, 0]
    np.testing.assert_allclose(got[5:], kps[5:])                        # human labels untouched
    assert out["keypoint_scores"][:5] == pytest.approx([0.8, 0.8, 0.8, 0.8, 0.0])
    assert out["keypoint_scores"][5:] == [1.0] * 12
    assert out["filled"] == ["nose", "left_eye", "right_eye", "left_ear"]
    assert out["num_keypoints"] == 16
    x, y, w, h = out["bbox"]
    assert y < 67 and y + h == pytest.approx(200.0)                     # grown to take in the head
    assert out["area"] == pytest.approx(w * h, rel=1e-3)


def test_fill_missing_refuses_a_teacher_on_another_person(pl):
    ann, kps = _lsp_person()
    wrong = np.zeros((17, 3), np.float32)
    wrong[:, :2] = kps[:, :2] + 60                                      # every limb joint far off
    wrong[:, 2] = 0.9
    out, why = pl.fill_person(_FixedTeacher(wrong), np.zeros((300, 200, 3), np.uint8), ann, _args(pl))
    assert (out, why) == (None, "disagree")


def test_fill_missing_writes_every_person_with_weights(pl, tmp_path):
    ann, kps = _lsp_person()
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "im1.jpg"), np.zeros((240, 160, 3), np.uint8))
    cv2.imwrite(str(images / "im2.jpg"), np.zeros((240, 160, 3), np.uint8))
    ann2 = dict(ann, id=6, image_id=2)
    data = {"images": [{"id": 1, "file_name": "im1.jpg", "width": 160, "height": 240},
                       {"id": 2, "file_name": "im2.jpg", "width": 160, "height": 240}],
            "annotations": [ann, ann2], "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "lsp").mkdir()
    path = tmp_path / "lsp" / "person_keypoints.json"
    path.write_text(json.dumps(data))
    teacher_kps = np.zeros((17, 3), np.float32)
    teacher_kps[:, :2] = kps[:, :2]
    teacher_kps[:5] = (50, 70, 0.2)                                     # the face: too unsure to fill
    lab = pl.Labeller(_FixedTeacher(teacher_kps), _args(pl))
    pl.label_fill_missing(lab, path, images, exclude={2})
    assert [a["source_ann_id"] for a in lab.anns] == [5]                # image 2 excluded
    assert lab.counts["unsure"] == 1 and lab.counts["labelled"] == 0
    only_human = lab.anns[0]
    assert only_human["keypoint_scores"] == [0.0] * 5 + [1.0] * 12      # the human labels, weight 1
    assert only_human["keypoints"] == ann["keypoints"]


def test_bad_fill_options_are_clear_errors(pl):
    with pytest.raises(TransposeLiveError, match="unknown joint"):
        pl.parse_args(["--teacher", "t.onnx", "--fill-joints", "nose,tail"])
    with pytest.raises(TransposeLiveError, match="--min-agree"):
        pl.parse_args(["--teacher", "t.onnx", "--min-agree", "2"])
    assert pl.parse_args(["--teacher", "t", "--fill-joints", "left_ear,nose"]).fill_joints == (3, 0)
    with pytest.raises(TransposeLiveError, match="scales"):
        pl.Teacher(REPO / "pyproject.toml", scales=())


def test_fill_in_slices_then_merge(pl, tmp_path):
    """--slice runs one chunk of images; --merge-fill joins the chunks, persons no chunk covered keep
    their human labels at weight 1."""
    ann, kps = _lsp_person()
    images = tmp_path / "images"
    images.mkdir()
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    for i in (1, 2, 3):
        cv2.imwrite(str(images / f"im{i}.jpg"), np.zeros((240, 160, 3), np.uint8))
        data["images"].append({"id": i, "file_name": f"im{i}.jpg", "width": 160, "height": 240})
        data["annotations"].append(dict(ann, id=10 + i, image_id=i))
    src = tmp_path / "lsp" / "person_keypoints.json"
    src.parent.mkdir()
    src.write_text(json.dumps(data))
    teacher_kps = np.zeros((17, 3), np.float32)
    teacher_kps[:, :2], teacher_kps[:, 2] = kps[:, :2], 0.9
    teacher_kps[:5, :2] = (50, 70)
    lab = pl.Labeller(_FixedTeacher(teacher_kps), _args(pl, slice=pl.parse_slice("1:2")))
    pl.label_fill_missing(lab, src, images, exclude=set())
    assert [a["source_ann_id"] for a in lab.anns] == [12]               # the second image only
    chunk = pl.write_source(lab, tmp_path / "out", "lsp_filled_1-2", {})
    merged = tmp_path / "merged.json"
    counts = pl.merge_fill(src, [chunk], merged)
    assert counts == {"persons": 3, "filled": 1, "through_the_teacher": 1}
    out = json.loads(merged.read_text())
    by_src = {a["source_ann_id"]: a for a in out["annotations"]}
    assert sorted(by_src) == [11, 12, 13] and [a["id"] for a in out["annotations"]] == [1, 2, 3]
    assert by_src[12]["keypoint_scores"][:5] == [0.9] * 5 and by_src[12]["keypoints"][2] == 2
    assert by_src[11]["keypoint_scores"] == [0.0] * 5 + [1.0] * 12 and by_src[11]["keypoints"] == ann["keypoints"]
    assert pl.main(["--merge-fill", str(src), str(tmp_path / "m2.json"), str(chunk)]) == 0
    with pytest.raises(TransposeLiveError, match="--slice"):
        pl.parse_args(["--teacher", "t", "--slice", "3"])
