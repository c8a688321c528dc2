"""Training data: targets and augmentation against hand-computed geometry, and the packing tool."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.preprocess import IMAGENET_MEAN, IMAGENET_STD
from transpose_live.skeleton import FLIP_INDEX
from transpose_live.train.data import KeypointDataset, load_id_list, pack_sources

from helpers import REPO, shared_path

W, H = 160, 200                      # synthetic image
BOX = (40.0, 30.0, 90.0, 120.0)       # aspect 0.75 exactly: center (84.5, 89.5), crop region 112.5 x 150
JOINTS = np.array([(45 + 20 * (j % 5), 35 + 28 * (j // 5)) for j in range(17)], dtype=np.float32)
NO_AUG = dict(scale_factor=0.0, rotation_factor=0.0, half_body_prob=0.0, flip_prob=0.0, color_jitter=0.0)


def _colours() -> np.ndarray:
    """17 well separated saturated RGB colours (hue steps of 360/17 degrees)."""
    hsv = np.array([[[int(j * 180 / 17), 255, 255] for j in range(17)]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.int32)


COLOURS = _colours()


def _write_set(root: Path, image_id: int = 7, extra_ann: dict | None = None, joints=JOINTS) -> tuple[Path, Path]:
    """One PNG with a 7x7 block of joint j's colour at each joint, and its COCO json."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rgb = np.full((H, W, 3), 90, np.uint8)
    for j, (x, y) in enumerate(joints.astype(int)):
        rgb[y - 3:y + 4, x - 3:x + 4] = COLOURS[j]
    cv2.imwrite(str(images / f"{image_id:012d}.png"), rgb[..., ::-1])
    kps = []
    for x, y in joints:
        kps += [float(x), float(y), 2]
    ann = {"id": 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(BOX),
           "area": BOX[2] * BOX[3], "num_keypoints": 17, "keypoints": kps}
    ann.update(extra_ann or {})
    data = {"images": [{"id": image_id, "file_name": f"{image_id:012d}.png", "width": W, "height": H}],
            "annotations": [ann], "categories": [{"id": 1, "name": "person"}]}
    path = root / "person_keypoints.json"
    path.write_text(json.dumps(data))
    return path, images


def _expected(xy: np.ndarray, out_w: int, out_h: int, cx: float = 84.5, cy: float = 89.5) -> np.ndarray:
    """Image pixels -> crop pixels for BOX without augmentation, worked out by hand.

    Official TransPose (DarkPose) convention: the box centre goes to ((W-1)/2, (H-1)/2) and
    (scale_w*200 - 1) image pixels span (W - 1) crop pixels.
    """
    k = (out_w - 1) / (112.5 - 1)
    return np.stack([(xy[:, 0] - cx) * k + (out_w - 1) / 2, (xy[:, 1] - cy) * k + (out_h - 1) / 2], axis=1)


def _expected_input(xy: np.ndarray) -> np.ndarray:
    return _expected(xy, 192, 256)


def _crop_rgb(x: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x * std + mean) * 255).round().permute(1, 2, 0).numpy().astype(np.int32)   # (H, W, 3) RGB


def test_joints_land_on_the_heatmap_peaks(tmp_path):
    ann, images = _write_set(tmp_path)
    ds = KeypointDataset([(ann, images, 1.0)], train=False)
    x, target, weight, meta = ds[0]
    assert x.shape == (3, 256, 192) and target.shape == (17, 64, 48) and weight.shape == (17, 1)
    expected_in = _expected_input(JOINTS)
    np.testing.assert_allclose(meta["joints"], expected_in, atol=1e-3)
    expected_hm = _expected(JOINTS, 48, 64)   # its own transform, not input / 4
    ys, xs = np.mgrid[0:64, 0:48]
    for j in range(17):
        mx, my = expected_hm[j]
        iy, ix = np.unravel_index(int(target[j].argmax()), (64, 48))
        assert (ix, iy) == (round(mx), round(my))
        gauss = np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * 2.0 ** 2))
        np.testing.assert_allclose(target[j].numpy(), gauss, atol=1e-5)
    assert torch.equal(weight, torch.ones(17, 1))
    # the warped image agrees with the labels: each joint's pixel has that joint's colour
    crop = _crop_rgb(x)
    for j, (u, v) in enumerate(expected_in):
        assert np.abs(crop[round(v), round(u)] - COLOURS[j]).max() <= 2


def test_flip_swaps_left_right_and_mirrors_x(tmp_path):
    ann, images = _write_set(tmp_path)
    plain = KeypointDataset([(ann, images, 1.0)], train=True, **NO_AUG)
    flipped = KeypointDataset([(ann, images, 1.0)], train=True, **{**NO_AUG, "flip_prob": 1.0})
    x0, t0, _, m0 = plain[0]
    x1, t1, _, m1 = flipped[0]
    assert not m0["flipped"] and m1["flipped"]
    assert m1["center"][0] == pytest.approx(W - 84.5 - 1)
    # joint j of the flipped sample is the mirror of joint FLIP_INDEX[j] about the crop centre: u -> 191 - u
    src = m0["joints"][list(FLIP_INDEX)]
    np.testing.assert_allclose(m1["joints"][:, 0], 191 - src[:, 0], atol=1e-3)
    np.testing.assert_allclose(m1["joints"][:, 1], src[:, 1], atol=1e-3)
    assert m1["joints"][9, 0] == pytest.approx(191 - m0["joints"][10, 0], abs=1e-3)   # left wrist <- right wrist
    # the image is mirrored the same way: the flipped crop is the plain crop mirrored
    assert torch.allclose(x1, x0.flip(-1), atol=3 / 255 / 0.224)
    crop = _crop_rgb(x1)
    for j, (u, v) in enumerate(m1["joints"]):
        assert np.abs(crop[round(v), round(u)] - COLOURS[FLIP_INDEX[j]]).max() <= 2
    # heatmaps follow: the flipped left-wrist peak is the mirrored right-wrist peak
    p0 = np.unravel_index(int(t0[10].argmax()), (64, 48))
    p1 = np.unravel_index(int(t1[9].argmax()), (64, 48))
    assert p1[0] == p0[0] and p1[1] == 47 - p0[1]


def test_full_augmentation_keeps_image_and_labels_together(tmp_path):
    ann, images = _write_set(tmp_path)
    ds = KeypointDataset([(ann, images, 1.0, 0.3)], train=True, color_jitter=0.0, seed=3)
    seen_flip, seen_rot, checked = set(), 0, 0
    for epoch in range(12):
        ds.set_epoch(epoch)
        x, target, weight, meta = ds[0]
        seen_flip.add(bool(meta["flipped"]))
        seen_rot += float(meta["rotation"]) != 0
        crop = _crop_rgb(x)
        for j, (u, v) in enumerate(meta["joints"]):
            if weight[j, 0] > 0 and 4 <= u < 188 and 4 <= v < 252:
                want = COLOURS[FLIP_INDEX[j]] if meta["flipped"] else COLOURS[j]
                assert np.abs(crop[round(v), round(u)] - want).max() <= 12, (epoch, j)
                checked += 1
    assert seen_flip == {True, False} and seen_rot > 0 and checked > 100
    # deterministic in (seed, epoch, index)
    ds.set_epoch(5)
    a, b = ds[0], ds[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    ds.set_epoch(6)
    assert not torch.equal(a[0], ds[0][0])


def test_keypoint_scores_become_target_weights(tmp_path):
    scores = [round(0.05 * j + 0.1, 2) for j in range(17)]
    joints = JOINTS.copy()
    kps_extra = {"keypoint_scores": scores}
    ann, images = _write_set(tmp_path, extra_ann=kps_extra, joints=joints)
    data = json.loads(ann.read_text())
    data["annotations"][0]["keypoints"][3 * 4 + 2] = 0     # joint 4 unlabelled
    ann.write_text(json.dumps(data))
    _, target, weight, _ = KeypointDataset([(ann, images, 0.5)], train=False)[0]
    want = np.array(scores, dtype=np.float32) * 0.5
    want[4] = 0
    np.testing.assert_allclose(weight[:, 0].numpy(), want, atol=1e-6)
    assert target[0].max() > 0.9        # a low-confidence joint still gets its full Gaussian
    assert target[4].max() == 0


def test_joint_off_the_heatmap_gets_weight_zero(tmp_path):
    joints = JOINTS.copy()
    ann, images = _write_set(tmp_path, joints=joints)
    data = json.loads(ann.read_text())
    # heatmap x = (x - 84.5) * 47 / 111.5 + 23.5: 159 -> 54.9 (the 3-sigma square starts at 48, off the
    # 48-wide map), 155 -> 53.2 (square starts at 47: official keeps it, with a partial Gaussian)
    data["annotations"][0]["keypoints"][0:2] = [159.0, 100.0]
    data["annotations"][0]["keypoints"][3:5] = [155.0, 100.0]
    ann.write_text(json.dumps(data))
    _, target, weight, _ = KeypointDataset([(ann, images, 1.0)], train=False)[0]
    assert weight[0, 0] == 0 and target[0].max() == 0
    assert weight[1, 0] == 1 and 0 < target[1].max() < 0.1
    assert weight[2:, 0].min() == 1


def test_exclude_ids_refuses_listed_images(tmp_path):
    ann, images = _write_set(tmp_path, image_id=139)
    ids = tmp_path / "val_ids.txt"
    ids.write_text("# val\n139\n\n285\n")
    assert load_id_list(ids) == {139, 285}
    excluded = r"person_keypoints\.json: 1 image\(s\) are in the excluded id list \(ids 139\)"
    with pytest.raises(TransposeLiveError, match=excluded):
        KeypointDataset([(ann, images, 1.0)], exclude_ids=load_id_list(ids))
    assert len(KeypointDataset([(ann, images, 1.0)], exclude_ids={1, 2})) == 1
    ids.write_text("139\nabc\n")
    with pytest.raises(TransposeLiveError, match=r"val_ids\.txt:2"):
        load_id_list(ids)


def test_bad_sources_are_clear_errors(tmp_path):
    ann, images = _write_set(tmp_path)
    with pytest.raises(TransposeLiveError, match="weight"):
        KeypointDataset([(ann, images, 0.0)])
    with pytest.raises(TransposeLiveError, match="does not exist"):
        KeypointDataset([(ann, tmp_path / "nope", 1.0)])
    (images / "000000000007.png").unlink()
    with pytest.raises(TransposeLiveError, match="missing"):
        KeypointDataset([(ann, images, 1.0)])


def test_dataloader_with_two_workers(tmp_path):
    sets = [_write_set(tmp_path / f"s{i}", image_id=100 + i) for i in range(3)]
    ds = KeypointDataset([(a, im, 1.0) for a, im in sets], train=True, seed=1)
    ds.set_epoch(2)
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert len(batches) == 1
    x, target, weight, meta = batches[0]
    assert x.shape == (3, 3, 256, 192) and x.dtype == torch.float32
    assert target.shape == (3, 17, 64, 48) and weight.shape == (3, 17, 1)
    assert meta["image_id"].tolist() == [100, 101, 102] and meta["joints"].shape == (3, 17, 2)
    # same samples as the main process draws: randomness depends on (seed, epoch, index) only
    assert torch.equal(x[1], ds[1][0])


def test_set_epoch_reaches_persistent_workers(tmp_path):
    ann, images = _write_set(tmp_path)
    ds = KeypointDataset([(ann, images, 1.0)], train=True, seed=4)
    loader = DataLoader(ds, batch_size=1, num_workers=1, persistent_workers=True)
    seen = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        (x, *_), = list(loader)
        assert torch.equal(x[0], ds[0][0])
        seen.append(x[0])
    assert not torch.equal(seen[0], seen[1])


# ---------------------------------------------------------------- packing tool

def _pack_module():
    path = REPO / "tools" / "training" / "pack_training_set.py"
    spec = importlib.util.spec_from_file_location("pack_training_set", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_big_set(root: Path) -> tuple[Path, Path, list[tuple[float, float]]]:
    """A 400x300 PNG with 12x12 colour blocks at five keypoints, one image with no usable person."""
    images = root / "images"
    images.mkdir(parents=True)
    bgr = np.full((300, 400, 3), 60, np.uint8)
    pts = [(101.0, 75.0), (250.0, 60.0), (180.0, 200.0), (320.0, 250.0), (30.0, 150.0)]
    for j, (x, y) in enumerate(pts):
        bgr[int(y) - 6:int(y) + 6, int(x) - 6:int(x) + 6] = COLOURS[3 * j][::-1]
    cv2.imwrite(str(images / "a.png"), bgr)
    cv2.imwrite(str(images / "b.jpg"), np.full((50, 60, 3), 128, np.uint8))
    kps = [0.0] * 51
    for j, (x, y) in enumerate(pts):
        kps[3 * j:3 * j + 3] = [x, y, 2]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [20.0, 40.0, 320.0, 230.0],
         "area": 50000.0, "num_keypoints": 5, "keypoints": kps, "segmentation": [[0, 0, 1, 1, 2, 2]]},
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10], "area": 100.0,
         "num_keypoints": 0, "keypoints": [0] * 51},
        {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 10, 10], "area": 100.0,
         "num_keypoints": 0, "keypoints": [0] * 51},
    ]
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 400, "height": 300},
                       {"id": 2, "file_name": "b.jpg", "width": 60, "height": 50}],
            "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    path = root / "person_keypoints.json"
    path.write_text(json.dumps(data))
    return path, images, pts


def test_pack_rescales_keypoints_with_the_image(tmp_path):
    pack = _pack_module()
    ann, images, pts = _write_big_set(tmp_path / "src")
    out = tmp_path / "pack"
    rc = pack.main(["--source", f"big={ann}:{images}", "--out", str(out), "--max-side", "200"])
    assert rc == 0
    packed = json.loads((out / "big" / "person_keypoints.json").read_text())
    assert [im["id"] for im in packed["images"]] == [1]              # image 2 has no usable person
    assert [a["id"] for a in packed["annotations"]] == [1]           # crowd dropped
    assert "segmentation" not in packed["annotations"][0]
    assert packed["images"][0] == {"id": 1, "file_name": "a.jpg", "width": 200, "height": 150}
    img = cv2.imread(str(out / "big" / "images" / "a.jpg"))
    assert img.shape == (150, 200, 3)
    kps = packed["annotations"][0]["keypoints"]
    for j, (x, y) in enumerate(pts):
        nx, ny, v = kps[3 * j:3 * j + 3]
        assert v == 2 and nx == pytest.approx((x + 0.5) * 0.5 - 0.5) and ny == pytest.approx((y + 0.5) * 0.5 - 0.5)
        got = img[round(ny), round(nx)][::-1].astype(int)             # RGB at the new coordinates
        assert np.abs(got - COLOURS[3 * j]).max() <= 30, (j, got, COLOURS[3 * j])
    assert kps[3 * 5:3 * 5 + 3] == [0.0, 0.0, 0]                    # unlabelled joints untouched
    a = packed["annotations"][0]
    assert a["bbox"] == pytest.approx([9.75, 19.75, 160.0, 115.0]) and a["area"] == pytest.approx(12500.0)

    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["sources"]["big"]
    assert (entry["images"], entry["persons"], entry["keypoints"], entry["resized"]) == (1, 1, 5, 1)
    on_disk = sum(p.stat().st_size for p in (out / "big").rglob("*") if p.is_file())
    assert entry["bytes"] == on_disk == manifest["total_bytes"]

    # a second run adds a source and keeps the first; repacking needs --overwrite
    ann2, images2 = _write_set(tmp_path / "small")
    assert pack.main(["--source", f"small={ann2}:{images2}", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["sources"]) == {"big", "small"} and manifest["total_persons"] == 2
    assert pack.main(["--source", f"small={ann2}:{images2}", "--out", str(out)]) == 2
    assert pack.main(["--source", f"small={ann2}:{images2}", "--out", str(out), "--overwrite"]) == 0

    # the pack feeds the dataset directly; the un-resized image keeps its exact labels
    ds = KeypointDataset(pack_sources(out, {"small": 2.0}), train=False)
    assert ds.source_counts == [1, 1]
    _, _, weight, meta = ds[1]
    np.testing.assert_allclose(meta["joints"], _expected_input(JOINTS), atol=1e-3)
    assert float(weight[0, 0]) == 2.0


def test_pack_rejects_bad_arguments(tmp_path, capsys):
    pack = _pack_module()
    assert pack.main(["--source", "no-equals-sign", "--out", str(tmp_path / "p")]) == 2
    assert "NAME=ANN_JSON:IMAGES_DIR" in capsys.readouterr().err
    ann, images = _write_set(tmp_path / "s", image_id=139)
    ids = tmp_path / "ids.txt"
    ids.write_text("139\n")
    assert pack.main(["--source", f"s={ann}:{images}", "--out", str(tmp_path / "p"), "--exclude-ids", str(ids)]) == 2
    assert "excluded id list" in capsys.readouterr().err


def test_strip_exif_keeps_the_image(tmp_path):
    pack = _pack_module()
    ok, jpg = cv2.imencode(".jpg", np.full((20, 30, 3), 200, np.uint8))
    data = jpg.tobytes()
    app1 = b"\xff\xe1" + (8).to_bytes(2, "big") + b"Exif\0\0"
    with_exif = data[:2] + app1 + data[2:]
    stripped = pack.strip_exif(with_exif)
    assert stripped == data
    assert pack.strip_exif(b"not a jpeg") is None


@pytest.mark.shared
def test_shared_coco_train_sets_load_without_val_images():
    data = shared_path("data")
    names = ["coco128_train", "tiny_coco_train", "coco_train_more", "coco_train_256"]
    sources = [(data / n / "person_keypoints.json", data / n / "images", 1.0) for n in names]
    ds = KeypointDataset(sources, exclude_ids=load_id_list(data / "coco_val2017_ids.txt"))
    assert ds.source_counts == [139, 57, 73, 4972]
    x, target, weight, _ = ds[0]
    assert x.shape == (3, 256, 192) and target.shape == (17, 64, 48) and float(weight.sum()) > 0


def test_pack_crops_downscales_and_splits_for_travel(tmp_path):
    """--crop-margin / --target-crop / --format webp / --slice / --weight: the labels follow the pixels."""
    pack = _pack_module()
    ann, images, pts = _write_big_set(tmp_path / "src")
    data = json.loads(ann.read_text())
    second = dict(data["annotations"][0], id=4, image_id=3)
    data["images"].append({"id": 3, "file_name": "a.png", "width": 400, "height": 300})
    data["annotations"].append(second)
    ann.write_text(json.dumps(data))
    out = tmp_path / "pack"
    # the box 320x230 -> training crop 320/0.75*1.25 = 533 px tall; target 200 -> x0.375; margin 0.5 cuts
    rc = pack.main(["--source", f"big={ann}:{images}", "--out", str(out), "--format", "webp", "--quality", "95",
                    "--target-crop", "200", "--crop-margin", "0.5", "--slice", "0:1", "--weight", "0.5"])
    assert rc == 0
    packed = json.loads((out / "big" / "person_keypoints.json").read_text())
    assert [im["id"] for im in packed["images"]] == [1]                # --slice 0:1: the first image only
    im = packed["images"][0]
    img = cv2.imread(str(out / "big" / "images" / im["file_name"]))
    assert im["file_name"].endswith(".webp") and img.shape[:2] == (im["height"], im["width"])
    x0, y0, x1, y1, new_w, new_h = pack.plan_geometry(400, 300, [(20.0, 40.0, 320.0, 230.0)], 640, 200, 0.5)
    assert (x0, y0) != (0, 0) and (new_w, new_h) == (im["width"], im["height"])
    f = new_w / (x1 - x0)
    assert f == pytest.approx(200 / (320 / 0.75 * 1.25), rel=0.02)
    kps = packed["annotations"][0]["keypoints"]
    for j, (x, _y) in enumerate(pts):
        nx, ny, v = kps[3 * j:3 * j + 3]
        assert nx == pytest.approx((x - x0 + 0.5) * f - 0.5, abs=0.02)
        if 0 <= round(ny) < new_h and 0 <= round(nx) < new_w:          # the colour block is still under it
            got = img[round(ny), round(nx)][::-1].astype(int)
            assert np.abs(got - COLOURS[3 * j]).max() <= 40, (j, got)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sources"]["big"]["weight"] == 0.5 and manifest["sources"]["big"]["slice"] == [0, 1]
    assert pack_sources(out)[0][2] == 0.5 and pack_sources(out, {"big": 2.0})[0][2] == 2.0
    assert pack.main(["--source", f"b={ann}:{images}", "--out", str(out), "--slice", "x"]) == 2
