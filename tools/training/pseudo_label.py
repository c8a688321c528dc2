#!/usr/bin/env python3
"""Pseudo-label person crops with a pose teacher (MoveNet SinglePose Thunder, ONNX) into COCO keypoint jsons.

Sources (all paths come from the command line):
  --coco ANN.json IMAGES_DIR          persons of a COCO json that have no keypoint labels
                                      (num_keypoints == 0, not crowd, box height >= --min-height)
  --coco-detect ANN.json IMAGES_DIR   persons the detector finds in a COCO json's images that overlap no
                                      annotation at all (for jsons that dropped their 0-keypoint persons)
  --video FILE                        every Nth frame (about --frames-per-video frames), detector boxes
  --images FILE_OR_DIR [...]          unannotated still images (one source per --images), detector boxes
  --fill-missing ANN.json IMAGES_DIR  labelled persons whose --fill-joints (default: the five face joints)
                                      are unlabelled, e.g. LSPET: the teacher fills only those joints, the
                                      human labels stay (keypoint_scores 1.0 for them, the teacher's score
                                      for a filled joint), and the box grows to take in the filled joints.
                                      A person is filled only where the teacher agrees with its human limb
                                      labels (--min-agree), so the teacher looked at the labelled person.

One json per source is written to --out/<name>.json: COCO keypoints with visibility 2 where the teacher
scores >= --kp-thresh (else v=0 and x=y=0; also v=0 for joints on the image border or near a border
that cuts the person's box, where it parks out-of-frame joints), the teacher's 17 raw joint scores in
"keypoint_scores".
Video frames and still images are written (JPEG / copied) under --frames-out/<name>/; the json's
file_name is relative to --frames-out. COCO-source jsons keep the COCO file_name and image id, so they
pair with the original image folder.

The teacher is single-person: it labels the most salient person in a square crop (side = max(w, h)
around the box centre, as in the teacher's own evaluation harness), so labels whose confident joints
fall mostly outside the box are dropped as teacher mistakes.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import zlib
from functools import partial
from pathlib import Path

import cv2
import numpy as np

try:
    import transpose_live  # noqa: F401
except ImportError:  # run from a checkout without installing: the repo root holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from transpose_live.errors import TransposeLiveError
from transpose_live.skeleton import FLIP_INDEX, KEYPOINT_NAMES, LIMBS, NUM_JOINTS
from transpose_live.train.data import parse_slice

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class Teacher:
    """MoveNet SinglePose on onnxruntime: __call__(frame_bgr, box xywh) -> (17, 3) x, y, score in image pixels.

    Test-time augmentation (off by default): `flip` also runs the mirrored crop (its joints mirrored back,
    left/right swapped); `scales` runs one crop per side multiplier (1.0 = side max(w, h)). The runs are
    averaged: coordinates weighted by the joint's score in each run, scores plainly.
    """

    def __init__(self, path: Path, threads: int = 2, flip: bool = False, scales: tuple[float, ...] = (1.0,)):
        import onnxruntime as ort

        if not path.is_file():
            raise TransposeLiveError(f"teacher model not found: {path}")
        if not scales or min(scales) <= 0:
            raise TransposeLiveError(f"teacher crop scales must be > 0, got {scales}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads   # a labelling job shares the machine: keep it small
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = self.sess.get_inputs()[0]
        self.in_name, self.size = inp.name, int(inp.shape[1])
        self.dtype = {"tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(float)": np.float32}[inp.type]
        self.name = path.name
        self.flip, self.scales = bool(flip), tuple(float(s) for s in scales)

    @property
    def tta(self) -> str:
        """How the teacher was run, for the jsons' info: e.g. 'flip, scales 1.0/1.25'."""
        parts = (["flip"] if self.flip else []) + ([f"scales {'/'.join(str(s) for s in self.scales)}"]
                                                   if self.scales != (1.0,) else [])
        return ", ".join(parts) or "none"

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        out = np.asarray(self.sess.run(None, {self.in_name: rgb[None].astype(self.dtype)})[0], np.float32)
        return out.reshape(NUM_JOINTS, 3)                       # (y, x, score), normalised to the crop

    def __call__(self, frame_bgr: np.ndarray, box) -> np.ndarray:
        runs = []                                               # (17, 3) x, y, score in image pixels
        x, y, w, h = (float(v) for v in box)
        for s in self.scales:
            sbox = (x + w * (1 - s) / 2, y + h * (1 - s) / 2, w * s, h * s)
            crop, x0, y0, side = square_crop(frame_bgr, sbox, self.size)
            rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
            yxs = self._run(rgb)
            runs.append(np.stack([x0 + yxs[:, 1] * side, y0 + yxs[:, 0] * side, yxs[:, 2]], axis=1))
            if self.flip:
                m = self._run(np.ascontiguousarray(rgb[:, ::-1]))[list(FLIP_INDEX)]
                # crop pixel u of the mirror is pixel size-1-u of the crop: x_n -> (size-1)/size - x_n
                xm = (self.size - 1) / self.size - m[:, 1]
                runs.append(np.stack([x0 + xm * side, y0 + m[:, 0] * side, m[:, 2]], axis=1))
        return average_runs(np.stack(runs))


def average_runs(runs: np.ndarray) -> np.ndarray:
    """(R, 17, 3) x, y, score -> (17, 3): score-weighted mean position, mean score."""
    if len(runs) == 1:
        return runs[0]
    w = np.clip(runs[:, :, 2:3], 1e-6, None)                    # (R, 17, 1)
    xy = (runs[:, :, :2] * w).sum(0) / w.sum(0)
    return np.concatenate([xy, runs[:, :, 2].mean(0)[:, None]], axis=1).astype(np.float32)


def square_crop(img: np.ndarray, box, out_size: int):
    """Square crop of side max(w, h) around the box centre, zero padded, resized to out_size.
    Returns (crop, x0, y0, side): crop pixel u covers image pixel x0 + u * side / out_size."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2.0, y + h / 2.0
    side = max(1, int(round(max(w, h))))
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    height, width = img.shape[:2]
    canvas = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    flag = cv2.INTER_LINEAR if side <= out_size else cv2.INTER_AREA   # shrinking: anti-aliased
    return cv2.resize(canvas, (out_size, out_size), interpolation=flag), x0, y0, side


def labelled_joints(kps: np.ndarray, box, frame_shape, kp_thresh: float, band: float = 0.1) -> np.ndarray:
    """(17,) bool: joints the teacher is sure of, minus likely guesses. Where the body leaves the frame the
    teacher parks the missing joints on or near the cut: so joints on the image border, and joints within
    `band` of the box size of a border that the box touches, are left unlabelled."""
    height, width = frame_shape[:2]
    bx, by, bw, bh = (float(v) for v in box)
    x, y = kps[:, 0], kps[:, 1]
    lo_x = max(2.0, band * bw) if bx <= 2 else 2.0                       # box cut off on the left
    hi_x = max(2.0, band * bw) if bx + bw >= width - 3 else 2.0          # ... on the right
    lo_y = max(2.0, band * bh) if by <= 2 else 2.0                       # ... at the top
    hi_y = max(2.0, band * bh) if by + bh >= height - 3 else 2.0         # ... at the bottom
    cut = (x < lo_x) | (y < lo_y) | (x > width - 1 - hi_x) | (y > height - 1 - hi_y)
    return (kps[:, 2] >= kp_thresh) & ~cut


def make_annotation(kps: np.ndarray, conf: np.ndarray, box, ann_id: int, image_id: int,
                    extra: dict | None = None) -> dict:
    """COCO keypoint annotation: v=2 for the labelled joints `conf`, v=0 and (0, 0) for the rest;
    "keypoint_scores" keeps the teacher's raw score of every joint."""
    flat = np.zeros((NUM_JOINTS, 3))
    flat[conf, :2] = kps[conf, :2]
    flat[conf, 2] = 2
    x, y, w, h = (float(v) for v in box)
    ann = {
        "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
        "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": round(w * h, 2),
        "num_keypoints": int(conf.sum()),
        "keypoints": [round(float(v), 2) if i % 3 != 2 else int(v) for i, v in enumerate(flat.reshape(-1))],
        "keypoint_scores": [round(float(s), 4) for s in kps[:, 2]],
        "score": round(float(kps[conf, 2].mean()) if conf.any() else 0.0, 4),
    }
    ann.update(extra or {})
    return ann


def plausible(kps: np.ndarray, conf: np.ndarray, box, min_keypoints: int, inside: float = 0.8) -> str | None:
    """None when the label is usable, else why not ("few" joints or joints "outside" the box)."""
    if conf.sum() < min_keypoints:
        return "few"
    x, y, w, h = (float(v) for v in box)
    mx, my = 0.15 * w, 0.15 * h                    # a little slack: boxes cut off hands and feet
    px, py = kps[conf, 0], kps[conf, 1]
    ok = (px >= x - mx) & (px <= x + w + mx) & (py >= y - my) & (py <= y + h + my)
    return None if ok.mean() >= inside else "outside"


def iou_xywh(a, bs: np.ndarray) -> np.ndarray:
    bs = np.asarray(bs, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[0] + a[2], bs[:, 0] + bs[:, 2]) - np.maximum(a[0], bs[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[1] + a[3], bs[:, 1] + bs[:, 3]) - np.maximum(a[1], bs[:, 1]), 0, None)
    inter = ix * iy
    return inter / np.maximum(a[2] * a[3] + bs[:, 2] * bs[:, 3] - inter, 1e-9)


class Labeller:
    """Runs the teacher on boxes and collects images + annotations of one source, with counts."""

    def __init__(self, teacher: Teacher, args: argparse.Namespace):
        self.teacher, self.args = teacher, args
        self.images: list[dict] = []
        self.anns: list[dict] = []
        self.counts = {"boxes": 0, "labelled": 0, "few": 0, "outside": 0}
        self.info: dict = {}   # what a source adds to its json's info

    def label(self, frame: np.ndarray, boxes, image: dict, extras: list[dict]) -> int:
        """Label each box of one image; the image is kept only when a person was labelled. Returns that count."""
        added = 0
        for box, extra in zip(boxes, extras):
            self.counts["boxes"] += 1
            kps = self.teacher(frame, box)
            conf = labelled_joints(kps, box, frame.shape, self.args.kp_thresh)
            why = plausible(kps, conf, box, self.args.min_keypoints)
            if why:
                self.counts[why] += 1
                continue
            self.anns.append(make_annotation(kps, conf, box, len(self.anns) + 1, image["id"],
                                             dict(extra, teacher=self.teacher.name)))
            added += 1
        self.counts["labelled"] += added
        if added:
            self.images.append(image)
        return added


def detect_persons(detector, frame: np.ndarray, min_score: float, min_height: float):
    det = detector.detect(frame)
    keep = (det.scores >= min_score) & (det.boxes[:, 3] >= min_height)
    return det.boxes[keep], det.scores[keep]


def read_coco(path: Path, images_dir: Path) -> dict:
    if not path.is_file():
        raise TransposeLiveError(f"COCO json not found: {path}")
    if not images_dir.is_dir():
        raise TransposeLiveError(f"image folder not found: {images_dir}")
    return json.loads(path.read_text())


def read_bgr(path: Path) -> np.ndarray:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)   # grayscale files come back as 3 channels
    if frame is None:
        raise TransposeLiveError(f"cannot read image {path}")
    return frame


def label_coco(lab: Labeller, ann_path: Path, images_dir: Path, exclude: set[int]) -> None:
    """Persons a COCO json lists without keypoints; persons with labels are never touched."""
    data = read_coco(ann_path, images_dir)
    images = {im["id"]: im for im in data["images"]}
    todo: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if (a.get("category_id", 1) == 1 and not a.get("iscrowd", 0) and a.get("num_keypoints", 0) == 0
                and a["bbox"][3] >= lab.args.min_height and a["image_id"] not in exclude):
            todo.setdefault(a["image_id"], []).append(a)
    for img_id, anns in sorted(todo.items()):
        im = images[img_id]
        frame = read_bgr(images_dir / im["file_name"])
        lab.label(frame, [a["bbox"] for a in anns], dict(im), [{"coco_ann_id": a["id"]} for a in anns])


def label_coco_detect(lab: Labeller, detector, ann_path: Path, images_dir: Path, exclude: set[int]) -> None:
    """Detected persons of a COCO json's images that overlap none of its annotations (IoU < 0.3)."""
    data = read_coco(ann_path, images_dir)
    by_image: dict[int, list] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a["bbox"])
    for im in sorted(data["images"], key=lambda d: d["id"]):
        if im["id"] in exclude:
            continue
        frame = read_bgr(images_dir / im["file_name"])
        boxes, scores = detect_persons(detector, frame, lab.args.det_score, lab.args.min_height)
        known = np.asarray(by_image.get(im["id"], []), np.float64).reshape(-1, 4)
        keep = [i for i, b in enumerate(boxes) if not len(known) or iou_xywh(b, known).max() < 0.3]
        lab.label(frame, boxes[keep], dict(im), [{"box_score": round(float(scores[i]), 4)} for i in keep])


FACE_JOINTS = tuple(range(5))   # nose, eyes, ears


def agreement(kps: np.ndarray, ann_kps: np.ndarray, box, tol: float = 0.1) -> float | None:
    """Share of the human-labelled joints that the teacher puts within tol x the box diagonal; None if none."""
    labelled = ann_kps[:, 2] > 0
    if not labelled.any():
        return None
    diag = math.hypot(float(box[2]), float(box[3]))
    dist = np.hypot(*(kps[labelled, :2] - ann_kps[labelled, :2]).T)
    return float((dist <= tol * diag).mean())


def grow_box(box, pts: np.ndarray, width: int, height: int, pad: float = 0.1):
    """The box (xywh) grown to take in pts (N, 2) with pad x the box height around them, clipped to the image."""
    x, y, w, h = (float(v) for v in box)
    if not len(pts):
        return [x, y, w, h]
    m = pad * h
    x0, y0 = min(x, pts[:, 0].min() - m), min(y, pts[:, 1].min() - m)
    x1, y1 = max(x + w, pts[:, 0].max() + m), max(y + h, pts[:, 1].max() + m)
    x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
    x1, y1 = min(width - 1.0, float(x1)), min(height - 1.0, float(y1))
    return [x0, y0, x1 - x0, y1 - y0]


def fill_person(teacher, frame: np.ndarray, ann: dict, args: argparse.Namespace) -> tuple[dict | None, str]:
    """(the annotation with the fill joints filled, "filled"), or (None, why it was left as it is)."""
    kps_h = np.asarray(ann["keypoints"], np.float64).reshape(NUM_JOINTS, 3)
    todo = np.zeros(NUM_JOINTS, bool)
    todo[list(args.fill_joints)] = True
    todo &= kps_h[:, 2] <= 0
    if not todo.any():
        return None, "complete"
    # the teacher's crop: the box grown by --fill-box-scale (LSPET boxes stop at the shoulders' height)
    x, y, w, h = (float(v) for v in ann["bbox"])
    s = args.fill_box_scale
    crop_box = (x + w * (1 - s) / 2, y + h * (1 - s) / 2, w * s, h * s)
    kps = teacher(frame, crop_box)
    agree = agreement(kps, kps_h, ann["bbox"])
    if agree is not None and agree < args.min_agree:
        return None, "disagree"
    conf = labelled_joints(kps, crop_box, frame.shape, args.kp_thresh) & todo
    if not conf.any():
        return None, "unsure"
    height, width = frame.shape[:2]
    out = dict(ann)
    flat = kps_h.copy()
    flat[conf, :2] = kps[conf, :2]
    flat[conf, 2] = 2
    out["keypoints"] = [round(float(v), 2) if i % 3 != 2 else int(v) for i, v in enumerate(flat.reshape(-1))]
    out["num_keypoints"] = int((flat[:, 2] > 0).sum())
    # weights: a human label 1.0, a filled joint the teacher's score, the rest 0
    scores = np.where(kps_h[:, 2] > 0, 1.0, np.where(conf, kps[:, 2], 0.0))
    out["keypoint_scores"] = [round(float(v), 4) for v in scores]
    out["filled"] = [KEYPOINT_NAMES[j] for j in np.flatnonzero(conf)]
    out["teacher_agreement"] = None if agree is None else round(agree, 3)
    box = grow_box(ann["bbox"], kps[conf, :2], width, height)
    out["bbox"] = [round(v, 2) for v in box]
    out["area"] = round(box[2] * box[3], 2)
    return out, "filled"


def label_fill_missing(lab: Labeller, ann_path: Path, images_dir: Path, exclude: set[int]) -> None:
    """Every labelled person of a COCO json, with its missing --fill-joints filled where the teacher is sure;
    persons the teacher cannot fill keep their human labels unchanged (they are still training data)."""
    data = read_coco(ann_path, images_dir)
    images = {im["id"]: im for im in data["images"]}
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if a.get("iscrowd", 0) or a.get("num_keypoints", 0) == 0 or a["image_id"] in exclude:
            continue
        by_image.setdefault(a["image_id"], []).append(a)
    todo = sorted(by_image.items())[lab.args.slice]
    limit = lab.args.limit or len(todo)
    for n, (img_id, anns) in enumerate(todo[:limit]):
        frame = read_bgr(images_dir / images[img_id]["file_name"])
        for a in anns:
            lab.counts["boxes"] += 1
            filled, why = fill_person(lab.teacher, frame, a, lab.args)
            lab.counts[why] = lab.counts.get(why, 0) + 1
            out = dict(filled or a, id=len(lab.anns) + 1, source_ann_id=a["id"])
            if filled is None:   # human labels only: weight 1 on each
                out["keypoint_scores"] = [1.0 if v > 0 else 0.0 for v in a["keypoints"][2::3]]
            lab.anns.append(out)
            lab.counts["labelled"] += filled is not None
        lab.images.append(dict(images[img_id]))
        if (n + 1) % 500 == 0:
            print(f"  {n + 1}/{limit} images, {lab.counts}", file=sys.stderr, flush=True)


def merge_fill(original: Path, chunks: list[Path], out: Path) -> dict:
    """One json of every labelled person of `original`: a chunk's annotation (filled or not) where a chunk
    of --fill-missing --slice runs has it, else the human labels at weight 1 (the face left unlabelled)."""
    data = json.loads(original.read_text())
    done: dict[int, dict] = {}
    infos = []
    for c in chunks:
        cd = json.loads(c.read_text())
        infos.append(cd.get("info", {}))
        for a in cd["annotations"]:
            done[int(a["source_ann_id"])] = a
    anns, filled = [], 0
    for a in data["annotations"]:
        if a.get("iscrowd", 0) or a.get("num_keypoints", 0) == 0:
            continue
        b = done.get(int(a["id"]))
        if b is None:
            b = dict(a, keypoint_scores=[1.0 if v > 0 else 0.0 for v in a["keypoints"][2::3]], source_ann_id=a["id"])
        filled += bool(b.get("filled"))
        anns.append(dict(b, id=len(anns) + 1))
    counts = {"persons": len(anns), "filled": filled, "through_the_teacher": len(done)}
    info = dict(infos[0] if infos else {}, merged_from=[c.name for c in chunks], counts=counts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(data, info=info, annotations=anns), separators=(",", ":")) + "\n")
    return counts


def id_base(name: str) -> int:
    """Image ids far above COCO's (< 10^6), stable per source, so no id can clash with a COCO image."""
    return 10**9 + (zlib.crc32(name.encode()) % 1000) * 10**6


def label_video(lab: Labeller, detector, path: Path, name: str, frames_out: Path) -> None:
    """Every Nth frame of a video (N goes into the json's info); frames with a labelled person are saved."""
    if not path.is_file():
        raise TransposeLiveError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise TransposeLiveError(f"cannot open video {path}")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    if lab.args.every:
        step = lab.args.every
    else:  # unknown length: every frame
        step = max(1, math.ceil(total / lab.args.frames_per_video)) if total > 0 else 1
    (frames_out / name).mkdir(parents=True, exist_ok=True)
    index, base = 0, id_base(name)
    try:
        while True:
            if not cap.grab():
                break
            if index % step == 0:
                ok, frame = cap.retrieve()
                if ok:
                    file_name = f"{name}/{name}_{index:06d}.jpg"
                    h, w = frame.shape[:2]
                    image = {"id": base + index, "file_name": file_name, "width": w, "height": h,
                             "frame_index": index}
                    boxes, scores = detect_persons(detector, frame, lab.args.det_score, lab.args.min_height)
                    if lab.label(frame, boxes, image, [{"box_score": round(float(s), 4)} for s in scores]):
                        cv2.imwrite(str(frames_out / file_name), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            index += 1
    finally:
        cap.release()
    lab.info["frame_step"] = step


def image_files(items: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise TransposeLiveError(f"image not found: {p}")
    return files


def label_images(lab: Labeller, detector, files: list[Path], name: str, frames_out: Path) -> None:
    """Still images: detector boxes; images with a labelled person are copied under frames_out/name/."""
    (frames_out / name).mkdir(parents=True, exist_ok=True)
    base = id_base(name)
    for i, path in enumerate(files):
        frame = read_bgr(path)
        h, w = frame.shape[:2]
        image = {"id": base + i, "file_name": f"{name}/{path.name}", "width": w, "height": h}
        boxes, scores = detect_persons(detector, frame, lab.args.det_score, lab.args.min_height)
        if lab.label(frame, boxes, image, [{"box_score": round(float(s), 4)} for s in scores]):
            shutil.copyfile(path, frames_out / image["file_name"])


def write_source(lab: Labeller, out_dir: Path, name: str, info: dict) -> Path | None:
    if not lab.anns:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    a = lab.args
    data = {
        "info": dict(info, **lab.info, description=f"pseudo labels from teacher {lab.teacher.name}",
                     teacher_tta=lab.teacher.tta,
                     made_by="tools/training/pseudo_label.py", kp_thresh=a.kp_thresh,
                     edge_joints="unlabelled (image border; 10% band where the box is cut)",
                     min_keypoints=a.min_keypoints, min_height=a.min_height, det_score=a.det_score,
                     counts=lab.counts),
        "images": lab.images,
        "annotations": lab.anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",   # COCO's entry
                        "keypoints": list(KEYPOINT_NAMES), "skeleton": [[a + 1, b + 1] for a, b in LIMBS]}],
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, help="MoveNet SinglePose .onnx (needed except with --merge-fill)")
    ap.add_argument("--merge-fill", nargs="+", type=Path, metavar="PATH",
                    help="ORIGINAL.json OUT.json CHUNK.json...: join --fill-missing --slice chunks into one json "
                         "of every person (those no chunk covers keep their human labels at weight 1)")
    ap.add_argument("--out", type=Path, default=Path("data/pseudo"), help="folder for the <name>.json files")
    ap.add_argument("--frames-out", type=Path, default=Path(".traindata/frames"),
                    help="folder for video frames / image copies (file_name is relative to it)")
    ap.add_argument("--coco", nargs=2, action="append", default=[], metavar=("ANN", "IMAGES"))
    ap.add_argument("--coco-detect", nargs=2, action="append", default=[], metavar=("ANN", "IMAGES"))
    ap.add_argument("--video", action="append", default=[], type=Path)
    ap.add_argument("--images", nargs="+", action="append", default=[], metavar="FILE_OR_DIR")
    ap.add_argument("--fill-missing", nargs=2, action="append", default=[], metavar=("ANN", "IMAGES"),
                    help="fill the unlabelled --fill-joints of labelled persons (writes <set>_filled.json)")
    ap.add_argument("--fill-joints", default="face",
                    help="joints --fill-missing may fill: 'face' (nose, eyes, ears) or comma-separated names")
    ap.add_argument("--fill-box-scale", type=float, default=1.3,
                    help="teacher crop = the person box grown by this factor (LSPET boxes cut the head)")
    ap.add_argument("--min-agree", type=float, default=0.5,
                    help="fill only where this share of the human-labelled joints agrees with the teacher")
    ap.add_argument("--limit", type=int, default=0, help="--fill-missing: at most this many images (0: all)")
    ap.add_argument("--slice", default=None, metavar="START:STOP",
                    help="--fill-missing: only these images (sorted by id); the json is named <set>_filled_START-STOP")
    ap.add_argument("--flip", action="store_true", help="teacher test-time flip (mirrored crop averaged in)")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0],
                    help="teacher crop side multipliers to average over (e.g. 1 1.25)")
    ap.add_argument("--exclude-ids", type=Path, help="text file of image ids never to label (e.g. COCO val2017)")
    ap.add_argument("--frames-per-video", type=int, default=150)
    ap.add_argument("--every", type=int, default=0, help="take every Nth video frame (overrides --frames-per-video)")
    ap.add_argument("--detector", default="ssd", help="detector spec for transpose_live.detect.create_detector")
    ap.add_argument("--det-score", type=float, default=0.5)
    ap.add_argument("--min-height", type=float, default=60.0, help="smallest person box height in pixels")
    ap.add_argument("--kp-thresh", type=float, default=0.3, help="teacher score below which a joint is unlabelled")
    ap.add_argument("--min-keypoints", type=int, default=5, help="fewer confident joints: person dropped")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.frames_per_video < 1 or args.every < 0 or args.threads < 1:
        raise TransposeLiveError("--frames-per-video and --threads must be >= 1, --every >= 0")
    if args.fill_box_scale <= 0 or not 0 <= args.min_agree <= 1 or args.limit < 0:
        raise TransposeLiveError("--fill-box-scale must be > 0, --min-agree in 0..1, --limit >= 0")
    args.fill_joints = parse_joints(args.fill_joints)
    args.slice_text = args.slice
    args.slice = parse_slice(args.slice)
    return args


def parse_joints(text: str) -> tuple[int, ...]:
    if text == "face":
        return FACE_JOINTS
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in KEYPOINT_NAMES]
    if bad or not names:
        raise TransposeLiveError(f"--fill-joints: unknown joint(s) {', '.join(bad) or text!r}; "
                                 f"use 'face' or names from {', '.join(KEYPOINT_NAMES)}")
    return tuple(KEYPOINT_NAMES.index(n) for n in names)


def plan_jobs(args: argparse.Namespace, detector, exclude: set[int]) -> list[tuple[str, dict, object]]:
    """(json name, info, run(labeller)) per source, in command-line order."""
    jobs = []
    for ann, img in args.coco:
        set_name = Path(ann).resolve().parent.name
        jobs.append((f"{set_name}_unlabelled",
                     {"source": f"{set_name}/{Path(ann).name}", "images_dir": "the source's image folder"},
                     partial(label_coco, ann_path=Path(ann), images_dir=Path(img), exclude=exclude)))
    for ann, img in args.coco_detect:
        set_name = Path(ann).resolve().parent.name
        jobs.append((f"{set_name}_detected",
                     {"source": f"{set_name}/{Path(ann).name}", "images_dir": "the source's image folder"},
                     partial(label_coco_detect, detector=detector, ann_path=Path(ann), images_dir=Path(img),
                             exclude=exclude)))
    for ann, img in args.fill_missing:
        set_name = Path(ann).resolve().parent.name
        part = f"_{args.slice_text.replace(':', '-')}" if args.slice_text else ""
        jobs.append((f"{set_name}_filled{part}",
                     {"source": f"{set_name}/{Path(ann).name}", "images_dir": "the source's image folder",
                      "filled_joints": [KEYPOINT_NAMES[j] for j in args.fill_joints],
                      "fill_box_scale": args.fill_box_scale, "min_agree": args.min_agree,
                      "weights": "keypoint_scores: 1.0 per human label, the teacher's score per filled joint"},
                     partial(label_fill_missing, ann_path=Path(ann), images_dir=Path(img), exclude=exclude)))
    for video in args.video:
        jobs.append((video.stem, {"source": video.name, "images_dir": "the --frames-out folder"},
                     partial(label_video, detector=detector, path=video, name=video.stem,
                             frames_out=args.frames_out)))
    for items in args.images:
        files = image_files(items)
        name = files[0].resolve().parent.name if files else "images"
        jobs.append((name, {"source": [f.name for f in files], "images_dir": "the --frames-out folder"},
                     partial(label_images, detector=detector, files=files, name=name, frames_out=args.frames_out)))
    names = [j[0] for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TransposeLiveError(f"two sources would write the same json: {', '.join(dup)}")
    return jobs


def more_counts(c: dict) -> str:
    """--fill-missing's own counts (complete, disagree, unsure, filled) for the summary line."""
    extra = {k: v for k, v in c.items() if k not in ("boxes", "labelled", "few", "outside")}
    return "".join(f"; {k} {v}" for k, v in extra.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge_fill:
        if len(args.merge_fill) < 2:
            raise TransposeLiveError("--merge-fill needs ORIGINAL.json OUT.json [CHUNK.json ...]")
        original, out, *chunks = args.merge_fill
        counts = merge_fill(original, chunks, out)
        print(f"{out}: {counts['persons']} persons, {counts['filled']} with filled joints "
              f"({counts['through_the_teacher']} through the teacher, from {len(chunks)} chunks)")
        return 0
    if args.teacher is None:
        raise TransposeLiveError("--teacher is required (the MoveNet .onnx)")
    cv2.setNumThreads(args.threads)
    teacher = Teacher(args.teacher, args.threads, flip=args.flip, scales=tuple(args.scales))
    exclude: set[int] = set()
    if args.exclude_ids:
        if not args.exclude_ids.is_file():
            raise TransposeLiveError(f"id list not found: {args.exclude_ids}")
        exclude = {int(t) for t in args.exclude_ids.read_text().split() if t.strip().isdigit()}
    detector = None
    if args.coco_detect or args.video or args.images:
        from transpose_live.detect import create_detector

        detector = create_detector(args.detector, min_score=args.det_score)
    jobs = plan_jobs(args, detector, exclude)
    if not jobs:
        raise TransposeLiveError("nothing to label: give --coco, --coco-detect, --fill-missing, --video or --images")

    total_t0, total = time.perf_counter(), 0
    for name, info, run in jobs:
        t0 = time.perf_counter()
        lab = Labeller(teacher, args)
        run(lab)
        seconds = time.perf_counter() - t0
        path = write_source(lab, args.out, name, info)
        c = lab.counts
        print(f"{name}: {c['labelled']} persons labelled in {len(lab.images)} images "
              f"(of {c['boxes']} boxes; dropped {c['few']} with < {args.min_keypoints} confident joints, "
              f"{c['outside']} off the box{more_counts(c)}) in {seconds:.1f} s -> "
              f"{path or 'no file (nothing labelled)'}",
              flush=True)
        total += c["labelled"]
    print(f"total: {total} persons in {time.perf_counter() - total_t0:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TransposeLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
