"""COCO keypoint training data with the TransPose training augmentation.

Follows the authors' `lib/dataset/coco.py` + `JointsDataset.py` (the DarkPose-derived version TransPose
ships): clean box -> `_box2cs` (aspect 0.75, x1.25), half-body (p 0.3, > 8 joints), scale 0.35,
rotation 45 (p 0.6), flip (p 0.5), affine warp, RGB + ImageNet normalisation, and unquantised Gaussian
targets computed in heatmap coordinates (sigma 2; a joint whose Gaussian misses the heatmap gets weight 0).

Additions over the official recipe: several json files at once with a weight per source, per-joint
soft weights from an optional `keypoint_scores` list (pseudo labels), an optional aspect jitter
(for sets whose images were squashed) and a light brightness/contrast jitter.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.preprocess import PIXEL_STD, box_to_center_scale, get_affine_transform, to_input_tensor
from transpose_live.skeleton import FLIP_INDEX, NUM_JOINTS

UPPER_BODY = frozenset(range(11))   # nose .. wrists; the rest (hips, knees, ankles) is the lower body


@dataclass(frozen=True)
class _Record:
    """One person: everything __getitem__ needs, parsed once from the json."""

    image_path: str
    image_id: int
    center: np.ndarray        # (2,) float32
    scale: np.ndarray         # (2,) float32
    joints: np.ndarray        # (17, 2) float32 image pixels
    vis: np.ndarray           # (17,) float32 0/1: the joint is labelled
    weight: np.ndarray        # (17,) float32 loss weight of a labelled joint (source weight x score)
    source: int
    aspect_jitter: float


def parse_slice(text: str | None) -> slice:
    """'START:STOP' (either may be empty) -> slice; None -> everything."""
    if not text:
        return slice(None)
    a, sep, b = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return slice(int(a) if a else None, int(b) if b else None)
    except ValueError:
        raise TransposeLiveError(f"--slice must be START:STOP (integers, either may be empty), got {text!r}") from None


def load_id_list(path: str | Path) -> set[int]:
    """Image ids, one integer per line (blank lines and '#' comments allowed), e.g. coco_val2017_ids.txt."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise TransposeLiveError(f"cannot read id list {path}: {exc.strerror or exc}") from None
    ids: set[int] = set()
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.add(int(text))
        except ValueError:
            raise TransposeLiveError(f"{path}:{n}: not an image id: {text!r}") from None
    return ids


def pack_sources(pack_dir: str | Path, weights: dict[str, float] | None = None) -> list[tuple[Path, Path, float]]:
    """Sources of a folder written by tools/pack_training_set.py (its manifest.json); a source's weight is
    `weights[name]` if given, else the manifest's (pack_training_set --weight), else 1."""
    pack_dir = Path(pack_dir)
    manifest_path = pack_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise TransposeLiveError(f"{manifest_path} is not a training pack manifest: {exc}") from None
    weights = dict(weights or {})
    names = list(manifest.get("sources", {}))
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise TransposeLiveError(f"no source {', '.join(unknown)} in {manifest_path}; it has: {', '.join(names)}")
    return [
        (pack_dir / manifest["sources"][n]["annotations"], pack_dir / manifest["sources"][n]["images_dir"],
         float(weights.get(n, manifest["sources"][n].get("weight", 1.0))))
        for n in names
    ]


def read_coco_json(path: str | Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise TransposeLiveError(f"cannot read annotations {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise TransposeLiveError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise TransposeLiveError(f"{path} is not a COCO keypoint file (needs 'images' and 'annotations')")
    return data


def refuse_excluded(data: dict, path: str | Path, exclude_ids: set[int] | None) -> None:
    """Raise when any image listed in a COCO dict (images or annotations) has an excluded id."""
    if not exclude_ids:
        return
    listed = {int(im["id"]) for im in data["images"]} | {int(a["image_id"]) for a in data["annotations"]}
    bad = sorted(listed & set(exclude_ids))
    if bad:
        shown = ", ".join(str(i) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise TransposeLiveError(
            f"{path}: {len(bad)} image(s) are in the excluded id list (ids {shown}); refusing to train on them")


def usable_person(ann: dict, image: dict,
                  where: str | Path = "annotations") -> tuple[float, float, float, float] | None:
    """The official clean box (x, y, w, h) of a trainable person, else None.

    Trainable: person category, not crowd, at least one labelled joint, a box with area inside the image.
    """
    if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1:
        return None
    kps = ann.get("keypoints")
    if not isinstance(kps, list) or len(kps) != 3 * NUM_JOINTS:
        raise TransposeLiveError(f"{where}: annotation {ann.get('id')} needs 51 keypoint numbers")
    if not any(v > 0 for v in kps[2::3]) or ann.get("num_keypoints", 1) == 0:
        return None
    try:
        width, height = float(image["width"]), float(image["height"])
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (KeyError, TypeError, ValueError):
        raise TransposeLiveError(
            f"{where}: image {image.get('id')} needs width/height and annotation {ann.get('id')} a bbox") from None
    # official sanitising: clip to the image, keep x2 >= x1, area > 0
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1, x1 + max(0.0, w - 1))
    y2 = min(height - 1, y1 + max(0.0, h - 1))
    if float(ann.get("area", w * h)) <= 0 or x2 < x1 or y2 < y1:
        return None
    return x1, y1, x2 - x1 + 1, y2 - y1 + 1


def _person_record(ann: dict, image: dict, path: Path, source: int, src_weight: float,
                   aspect_jitter: float, image_path: str) -> _Record | None:
    """Official kernel for one annotation: None when the person is unusable for training."""
    box = usable_person(ann, image, path)
    if box is None:
        return None
    center, scale = box_to_center_scale(box)
    kps = np.asarray(ann["keypoints"], dtype=np.float32).reshape(NUM_JOINTS, 3)
    vis = (kps[:, 2] > 0).astype(np.float32)
    joint_w = vis.copy()
    scores = ann.get("keypoint_scores")
    if scores is not None:
        if len(scores) != NUM_JOINTS:
            raise TransposeLiveError(f"{path}: annotation {ann.get('id')} needs 17 keypoint_scores")
        joint_w = vis * np.clip(np.asarray(scores, dtype=np.float32), 0.0, 1.0)
    return _Record(image_path, int(image["id"]), center, scale, kps[:, :2].copy(), vis,
                   (joint_w * src_weight).astype(np.float32), source, aspect_jitter)


def _load_source(spec: Sequence, source: int, exclude_ids: set[int] | None, default_aspect: float) -> list[_Record]:
    if not 3 <= len(spec) <= 4:
        raise TransposeLiveError(f"a source is (ann_json, images_dir, weight[, aspect_jitter]), got {spec!r}")
    path, images_dir, weight = Path(spec[0]), Path(spec[1]), float(spec[2])
    aspect = float(spec[3]) if len(spec) == 4 and spec[3] is not None else default_aspect
    if not math.isfinite(weight) or weight <= 0:
        raise TransposeLiveError(f"source weight for {path} must be > 0, got {spec[2]!r}")
    if not images_dir.is_dir():
        raise TransposeLiveError(f"image folder {images_dir} (for {path}) does not exist")
    data = read_coco_json(path)
    images = {int(im["id"]): im for im in data["images"]}

    refuse_excluded(data, path, exclude_ids)

    records, missing = [], []
    for ann in data["annotations"]:
        image = images.get(int(ann["image_id"]))
        if image is None:
            raise TransposeLiveError(f"{path}: annotation {ann.get('id')} names unknown image {ann['image_id']}")
        image_path = images_dir / image["file_name"]
        rec = _person_record(ann, image, path, source, weight, aspect, str(image_path))
        if rec is not None:
            records.append(rec)
    for p in sorted({r.image_path for r in records}):
        if not Path(p).is_file():
            missing.append(p)
    if missing:
        raise TransposeLiveError(
            f"{len(missing)} image(s) of {path} are missing from {images_dir} (e.g. {Path(missing[0]).name})")
    return records


def half_body_center_scale(joints: np.ndarray, vis: np.ndarray, rng: np.random.Generator,
                           aspect_ratio: float = 0.75) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Official half_body_transform: a box around the upper or the lower body's labelled joints, x1.5."""
    upper = [joints[j] for j in range(NUM_JOINTS) if vis[j] > 0 and j in UPPER_BODY]
    lower = [joints[j] for j in range(NUM_JOINTS) if vis[j] > 0 and j not in UPPER_BODY]
    # `randn() < 0.5` (not rand) is what the official code does: the upper body wins ~69% of the time
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None, None
    pts = np.asarray(selected, dtype=np.float32)
    center = pts.mean(axis=0)
    w, h = pts.max(axis=0) - pts.min(axis=0) + 1
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * 1.5


def generate_target(joints_hm: np.ndarray, vis: np.ndarray, heatmap_size_hw: tuple[int, int],
                    sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Official (DARK-style, unquantised) Gaussian targets.

    joints_hm (17, 2) in heatmap pixels, vis (17,) 0/1 -> target (17, h, w) float32, in_bounds (17,) 0/1.
    """
    hm_h, hm_w = heatmap_size_hw
    target = np.zeros((NUM_JOINTS, hm_h, hm_w), dtype=np.float32)
    keep = vis.astype(np.float32).copy()
    tmp = sigma * 3
    xs = np.arange(hm_w, dtype=np.float32)
    ys = np.arange(hm_h, dtype=np.float32)
    for j in range(NUM_JOINTS):
        if keep[j] <= 0:
            continue
        mu_x, mu_y = float(joints_hm[j, 0]), float(joints_hm[j, 1])
        ul = (int(mu_x - tmp), int(mu_y - tmp))
        br = (int(mu_x + tmp + 1), int(mu_y + tmp + 1))
        if ul[0] >= hm_w or ul[1] >= hm_h or br[0] < 0 or br[1] < 0:
            keep[j] = 0   # the Gaussian misses the heatmap entirely
            continue
        # separable form of exp(-((x-mx)^2 + (y-my)^2) / 2s^2)
        gx = np.exp(-((xs - mu_x) ** 2) / (2 * sigma ** 2))
        gy = np.exp(-((ys - mu_y) ** 2) / (2 * sigma ** 2))
        target[j] = gy[:, None] * gx[None, :]
    return target, keep


def _to3x3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (pts @ m[:2, :2].T + m[:2, 2]).astype(np.float32)


class KeypointDataset(Dataset):
    """Per-person COCO keypoint samples: (input (3,H,W), target (17,h,w), target_weight (17,1), meta).

    sources: (ann_json, images_dir, weight) tuples, optionally a 4th item: that source's aspect jitter.
    aspect_jitter a: the x/y stretch ratio is drawn log-uniformly in [1/(1+a), 1+a] (area kept).
    color_jitter c: brightness and contrast factors uniform in [1-c, 1+c] (train only; not in the
    official recipe: pass 0 for it exactly). The other defaults are the official TransPose values.
    meta: image_id, source, center, scale, rotation, flipped, joints (17, 2) in input pixels, joints_vis.
    Randomness is a function of (seed, epoch, index) only, so any worker layout gives the same samples.
    """

    def __init__(
        self,
        sources: Sequence[Sequence],
        image_size: tuple[int, int] = (256, 192),
        heatmap_size: tuple[int, int] = (64, 48),
        sigma: float = 2.0,
        train: bool = True,
        exclude_ids: set[int] | None = None,
        aspect_jitter: float = 0.0,
        color_jitter: float = 0.2,
        scale_factor: float = 0.35,
        rotation_factor: float = 45.0,
        rotation_prob: float = 0.6,
        flip_prob: float = 0.5,
        half_body_prob: float = 0.3,
        num_joints_half_body: int = 8,
        seed: int = 0,
    ):
        if not sources:
            raise TransposeLiveError("no training sources given")
        self.image_size = (int(image_size[0]), int(image_size[1]))        # (h, w)
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))  # (h, w)
        if min(self.image_size + self.heatmap_size) <= 0:
            raise TransposeLiveError(f"bad sizes: image {image_size}, heatmap {heatmap_size}")
        self.aspect_ratio = self.image_size[1] / self.image_size[0]
        self.sigma = float(sigma)
        self.train = bool(train)
        self.color_jitter = float(color_jitter)
        self.scale_factor = float(scale_factor)
        self.rotation_factor = float(rotation_factor)
        self.rotation_prob = float(rotation_prob)
        self.flip_prob = float(flip_prob)
        self.half_body_prob = float(half_body_prob)
        self.num_joints_half_body = int(num_joints_half_body)
        self.seed = int(seed)
        # in shared memory, so set_epoch reaches DataLoader workers, persistent ones included
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.records: list[_Record] = []
        self.source_counts: list[int] = []
        for i, spec in enumerate(sources):
            recs = _load_source(spec, i, exclude_ids, float(aspect_jitter))
            self.source_counts.append(len(recs))
            self.records.extend(recs)
        if not self.records:
            raise TransposeLiveError("the training sources hold no usable person (non-crowd, with keypoints)")

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """New augmentation draws each epoch; call before iterating the loader for that epoch."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.records)

    def _read_image(self, path: str) -> np.ndarray:
        # IGNORE_ORIENTATION: COCO labels are in stored-pixel order; IMREAD_COLOR makes grey images BGR
        img = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if img is None:
            raise TransposeLiveError(f"cannot read image {path}")
        return img

    def __getitem__(self, index: int):
        rec = self.records[index]
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        img = self._read_image(rec.image_path)
        img_w = img.shape[1]
        joints, vis, weight = rec.joints.copy(), rec.vis.copy(), rec.weight.copy()
        c, s, r = rec.center.copy(), rec.scale.copy(), 0.0
        flipped = False
        stretch = np.eye(3)

        if self.train:
            if vis.sum() > self.num_joints_half_body and rng.random() < self.half_body_prob:
                c_hb, s_hb = half_body_center_scale(joints, vis, rng, self.aspect_ratio)
                if c_hb is not None and s_hb is not None:   # both or neither (too few upper/lower joints)
                    c, s = c_hb, s_hb
            sf, rf = self.scale_factor, self.rotation_factor
            s = s * np.float32(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
            rot = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
            r = rot if rng.random() <= self.rotation_prob else 0.0
            if rng.random() < self.flip_prob:
                flipped = True
                joints[:, 0] = img_w - joints[:, 0] - 1
                joints, vis, weight = joints[list(FLIP_INDEX)], vis[list(FLIP_INDEX)], weight[list(FLIP_INDEX)]
                c[0] = img_w - c[0] - 1
            if rec.aspect_jitter > 0:
                lim = math.log1p(rec.aspect_jitter)
                ratio = math.exp(rng.uniform(-lim, lim))
                ax, ay = math.sqrt(ratio), 1.0 / math.sqrt(ratio)
                stretch = np.array([[ax, 0, c[0] * (1 - ax)], [0, ay, c[1] * (1 - ay)], [0, 0, 1]])

        out_h, out_w = self.image_size
        hm_h, hm_w = self.heatmap_size
        trans = _to3x3(get_affine_transform(c, s, r, (out_w, out_h))) @ stretch
        trans_hm = _to3x3(get_affine_transform(c, s, r, (hm_w, hm_h))) @ stretch
        # a flip of the whole image is folded into the warp: x -> W - 1 - x, then the crop transform
        flip = np.array([[-1.0, 0, img_w - 1], [0, 1, 0], [0, 0, 1]]) if flipped else np.eye(3)
        crop = cv2.warpAffine(img, (trans @ flip)[:2], (out_w, out_h), flags=cv2.INTER_LINEAR)
        if self.train and self.color_jitter > 0:
            crop = self._color_jitter(crop, rng)
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)   # on the small crop: same bytes as converting the frame

        joints_in = _apply(trans, joints)
        joints_hm = _apply(trans_hm, joints)
        target, in_bounds = generate_target(joints_hm, vis, self.heatmap_size, self.sigma)
        target_weight = (weight * in_bounds).reshape(NUM_JOINTS, 1).astype(np.float32)

        meta = {
            "image_id": rec.image_id,
            "source": rec.source,
            "center": c.astype(np.float32),
            "scale": np.asarray(s, dtype=np.float32),
            "rotation": np.float32(r),
            "flipped": flipped,
            "joints": joints_in,            # (17, 2) in input-crop pixels
            "joints_vis": vis.astype(np.float32),
        }
        return to_input_tensor(crop)[0], torch.from_numpy(target), torch.from_numpy(target_weight), meta

    def _color_jitter(self, crop_bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Contrast around the crop's mean grey, then brightness, saturated to uint8."""
        cj = self.color_jitter
        brightness = rng.uniform(1 - cj, 1 + cj)
        contrast = rng.uniform(1 - cj, 1 + cj)
        b, g, r = cv2.mean(crop_bgr)[:3]
        grey = 0.114 * b + 0.587 * g + 0.299 * r
        # ((x - grey) * contrast + grey) * brightness == x * alpha + beta
        alpha = contrast * brightness
        beta = (1 - contrast) * grey * brightness
        return cv2.addWeighted(crop_bgr, alpha, crop_bgr, 0.0, beta)
