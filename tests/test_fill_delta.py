"""tools/training/fill_delta.py: the teacher's part of a filled label set, exported and applied back to exactly the json
--merge-fill wrote; the repository's LSPET delta applied to the real LSPET labels."""

from __future__ import annotations

import gzip
import importlib.util
import json

import cv2
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.skeleton import KEYPOINT_NAMES

from helpers import REPO, shared_path


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fd():
    return load_tool("fill_delta")


@pytest.fixture(scope="module")
def pl():
    import sys

    sys.path.insert(0, str(REPO / "tools" / "training"))
    return load_tool("pseudo_label")


class PerImageTeacher:
    """A teacher whose answer depends on the image (its mean brightness picks one of the poses)."""
    name, tta = "fixed", "none"

    def __init__(self, poses):
        self.poses = poses

    def __call__(self, frame, box):
        return self.poses[int(frame.mean()) % len(self.poses)].copy()


def lsp_like_set(tmp_path):
    """Five images of LSPET-like persons (limbs labelled, face not), one crowd and one unlabelled person."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    for i in range(5):
        cv2.imwrite(str(images / f"im{i}.png"), np.full((240, 160, 3), i, np.uint8))
        data["images"].append({"id": i + 1, "file_name": f"im{i}.png", "width": 160, "height": 240})
        kps = np.zeros((17, 3))
        kps[5:, :2] = rng.uniform([40, 100], [120, 220], (12, 2)).round(2)
        kps[5:, 2] = 2
        if i == 3:
            kps[0] = (80, 95, 2)                  # a nose the human labelled: never overwritten
        data["annotations"].append({"id": 100 + i, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                                    "num_keypoints": int((kps[:, 2] > 0).sum()),
                                    "keypoints": kps.reshape(-1).tolist(), "bbox": [35.0, 95.0, 90.0, 130.0],
                                    "area": 11700.0})
    data["annotations"].append(dict(data["annotations"][0], id=200, iscrowd=1))
    data["annotations"].append(dict(data["annotations"][0], id=201, num_keypoints=0, keypoints=[0] * 51))
    path = tmp_path / "lsp" / "person_keypoints.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path, images, data


def teacher_poses(data):
    """Per image: the human limbs (agreement) and a face above the box, some joints unsure."""
    poses = []
    for k, a in enumerate(data["annotations"][:5]):
        t = np.zeros((17, 3), np.float32)
        t[:, :2] = np.asarray(a["keypoints"]).reshape(17, 3)[:, :2] + 0.7
        t[:, 2] = 0.85
        t[:5, :2] = [(80, 80), (84, 77), (76, 77), (88, 79), (72, 79)]
        t[:5, 2] = [0.91, 0.62, 0.2, 0.77, 0.45 - 0.1 * k]
        if k == 2:
            t[5:, :2] += 70                        # looking at someone else: refused
        poses.append(t)
    return poses


def merged_by_the_fill(pl, tmp_path):
    path, images, data = lsp_like_set(tmp_path)
    args = pl.parse_args(["--teacher", "x.onnx", "--fill-missing", str(path), str(images), "--slice", "0:4"])
    lab = pl.Labeller(PerImageTeacher(teacher_poses(data)), args)
    pl.label_fill_missing(lab, path, images, exclude=set())
    chunk = pl.write_source(lab, tmp_path / "out", "lsp_filled_0-4", {"source": "lsp"})
    merged = tmp_path / "merged.json"
    pl.merge_fill(path, [chunk], merged)
    return path, merged


def test_export_then_apply_gives_the_merged_json(fd, pl, tmp_path):
    original, merged = merged_by_the_fill(pl, tmp_path)
    delta_path = tmp_path / "delta.json.gz"
    assert fd.main(["export", str(merged), str(delta_path)]) == 0
    delta = json.loads(gzip.decompress(delta_path.read_bytes()))
    assert sorted(delta["persons"]) == ["100", "101", "103"]       # 102 refused, 104 beyond the slice
    assert delta["persons"]["103"]["joints"].keys() == {"left_eye", "left_ear"}   # its nose is human
    # nothing of the human labels travels: only the filled joints' (x, y, weight), the box, area, agreement
    for person in delta["persons"].values():
        assert set(person) == {"joints", "bbox", "area", "teacher_agreement"}
        assert all(name in KEYPOINT_NAMES[:5] for name in person["joints"])
    out = tmp_path / "rebuilt.json"
    assert fd.main(["apply", str(original), str(delta_path), str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(merged.read_text())
    # the same labels give the same bytes (the gzip header holds no time)
    again = tmp_path / "again.json.gz"
    fd.main(["export", str(merged), str(again)])
    assert again.read_bytes() == delta_path.read_bytes()


def test_a_delta_of_another_label_set_is_refused(fd, pl, tmp_path, capsys):
    original, merged = merged_by_the_fill(pl, tmp_path)
    delta = fd.export(json.loads(merged.read_text()))
    data = json.loads(original.read_text())
    with pytest.raises(TransposeLiveError, match="not in the original"):
        fd.apply(dict(data, annotations=data["annotations"][2:]), delta)
    labelled_face = json.loads(original.read_text())
    labelled_face["annotations"][0]["keypoints"][2] = 2          # annotation 100 now has a human nose
    with pytest.raises(TransposeLiveError, match="already"):
        fd.apply(labelled_face, delta)
    with pytest.raises(TransposeLiveError, match="not a fill delta"):
        fd.apply(data, {"persons": {}})
    assert fd.main(["apply", str(original), str(tmp_path / "missing.json.gz"), str(tmp_path / "o.json")]) == 2
    assert "file not found" in capsys.readouterr().err


@pytest.mark.shared
def test_the_repository_lspet_delta_fits_the_lspet_labels(fd):
    lspet = shared_path("data", "lspet", "person_keypoints.json")
    delta_path = REPO / "data" / "pseudo" / "lspet_face.json.gz"
    delta = fd.read_json(delta_path)
    merged = fd.apply(fd.read_json(lspet), delta)
    filled = [a for a in merged["annotations"] if a.get("filled")]
    assert len(filled) == len(delta["persons"]) > 7000
    for a in filled[::97]:
        kps = np.asarray(a["keypoints"]).reshape(17, 3)
        x, y, w, h = a["bbox"]
        face = kps[:5][kps[:5, 2] > 0]
        assert len(face) >= 1 and a["num_keypoints"] == int((kps[:, 2] > 0).sum())
        # the box was grown to take in the filled joints
        assert (face[:, 0] >= x - 0.01).all() and (face[:, 0] <= x + w + 0.01).all()
        assert (face[:, 1] >= y - 0.01).all() and (face[:, 1] <= y + h + 0.01).all()
        assert all(0.3 <= s <= 1.0 for s, v in zip(a["keypoint_scores"][:5], kps[:5, 2]) if v > 0)
