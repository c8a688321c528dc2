"""Pack COCO keypoint training sets into one small folder that travels to a GPU machine.

    python tools/training/pack_training_set.py --out .traindata/pack \
        --source coco128=DATA/coco128_train/person_keypoints.json:DATA/coco128_train/images \
        --source tiny=DATA/tiny_coco_train/person_keypoints.json:DATA/tiny_coco_train/images

Per source NAME the pack holds NAME/images/*.jpg and NAME/person_keypoints.json; manifest.json lists
every source in the pack (a later run adds or replaces sources and keeps the others).
Only images with at least one trainable person are kept, with only their trainable persons.
Images whose longer side exceeds --max-side are downscaled and re-encoded (JPEG --quality); the
keypoints, boxes and areas are scaled with them. Images already small enough are re-encoded too,
except a JPEG whose original bytes are smaller than the re-encode: those are copied (EXIF dropped),
since re-encoding cannot add detail and only costs bytes.

To make a pack travel (a GPU machine takes a few tens of MiB per call), three options shrink it where
the model cannot tell:
  --target-crop PX   downscale an image until its smallest person's training crop (box at the model's
                     aspect, x1.25) is PX pixels tall: a 192x144 model sees no more than that
  --crop-margin M    cut each image to the union of its persons' training crops grown by M (room for the
                     scale and rotation augmentation); what lies outside is never in a training sample
  --format webp      about 25 % fewer bytes than JPEG at the same quality
--slice START:STOP keeps a part of a source's images (sorted by id) so a big set can be split over packs;
--weight W is stored in the manifest as the source's loss weight (train_data.pack_sources reads it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

try:
    from transpose_live.errors import TransposeLiveError
except ImportError:   # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from transpose_live.errors import TransposeLiveError
from transpose_live.pose.preprocess import PIXEL_STD, box_to_center_scale
from transpose_live.train.data import load_id_list, parse_slice, read_coco_json, refuse_excluded, usable_person

ANN_NAME = "person_keypoints.json"
FORMATS = {"jpg": (".jpg", cv2.IMWRITE_JPEG_QUALITY), "webp": (".webp", cv2.IMWRITE_WEBP_QUALITY)}
_SOURCE_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)=(?P<ann>.+?\.json):(?P<images>.+)$")


def parse_source(text: str) -> tuple[str, Path, Path]:
    """'NAME=ANN_JSON:IMAGES_DIR' -> (name, ann_json, images_dir)."""
    m = _SOURCE_RE.match(text)
    if not m:
        raise TransposeLiveError(
            f"--source must be NAME=ANN_JSON:IMAGES_DIR (NAME of letters, digits, _.-), got {text!r}")
    return m["name"], Path(m["ann"]), Path(m["images"])


def scale_point(v: float, f: float) -> float:
    """Pixel-index coordinate (pixel centres at integers) under a resize by f: (v + 0.5) * f - 0.5."""
    return (v + 0.5) * f - 0.5


def strip_exif(data: bytes) -> bytes | None:
    """A JPEG's bytes without APP1 (EXIF/XMP) segments, or None when the header does not parse."""
    if data[:2] != b"\xff\xd8":
        return None
    out, pos = [data[:2]], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xDA:   # start of scan: the rest is entropy-coded data
            out.append(data[pos:])
            return b"".join(out)
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            return None
        if marker != 0xE1:
            out.append(data[pos:pos + 2 + length])
        pos += 2 + length
    return None


def _scaled_annotation(ann: dict, fx: float, fy: float, ox: float = 0.0, oy: float = 0.0) -> dict:
    """The annotation in the packed image's pixels: shifted by the crop's origin (ox, oy), then resized."""
    keep = ("id", "image_id", "category_id", "iscrowd", "bbox", "area", "num_keypoints", "keypoints",
            "keypoint_scores", "score")
    out = {k: ann[k] for k in keep if k in ann}
    out.setdefault("category_id", 1)
    out.setdefault("iscrowd", 0)
    out["num_keypoints"] = int(sum(1 for v in ann["keypoints"][2::3] if v > 0))
    if (fx, fy, ox, oy) == (1.0, 1.0, 0.0, 0.0):
        return out
    kps = list(ann["keypoints"])
    for j in range(0, len(kps), 3):
        if kps[j + 2] > 0:   # unlabelled joints stay (0, 0, 0)
            kps[j] = round(scale_point(kps[j] - ox, fx), 2)
            kps[j + 1] = round(scale_point(kps[j + 1] - oy, fy), 2)
    out["keypoints"] = kps
    x, y, w, h = ann["bbox"]
    out["bbox"] = [round(scale_point(x - ox, fx), 2), round(scale_point(y - oy, fy), 2),
                   round(w * fx, 2), round(h * fy, 2)]
    out["area"] = round(float(ann.get("area", w * h)) * fx * fy, 2)
    return out


def plan_geometry(width: int, height: int, boxes: list, max_side: int, target_crop: float = 0.0,
                  crop_margin: float = 0.0, aspect: float = 0.75) -> tuple[int, int, int, int, int, int]:
    """(x0, y0, x1, y1, new_w, new_h): the image region to keep (x1, y1 exclusive) and its packed size.

    crop_margin > 0: the union of the persons' training crops (box at `aspect`, x1.25) grown by it;
    target_crop > 0: scaled so the smallest person's training crop is at most that tall; then max_side.
    """
    x0, y0, x1, y1 = 0, 0, width, height
    crops = [box_to_center_scale(b, aspect) for b in boxes]            # (center, scale in PIXEL_STD units)
    if crop_margin > 0 and crops:
        half = [s * PIXEL_STD * crop_margin / 2 for _, s in crops]
        x0 = max(0, int(np.floor(min(c[0] - h[0] for (c, _), h in zip(crops, half)))))
        y0 = max(0, int(np.floor(min(c[1] - h[1] for (c, _), h in zip(crops, half)))))
        x1 = min(width, int(np.ceil(max(c[0] + h[0] for (c, _), h in zip(crops, half)))) + 1)
        y1 = min(height, int(np.ceil(max(c[1] + h[1] for (c, _), h in zip(crops, half)))) + 1)
    f = 1.0
    if target_crop > 0 and crops:
        f = min(f, target_crop / max(1e-6, min(float(s[1]) * PIXEL_STD for _, s in crops)))
    f = min(f, max_side / max(x1 - x0, y1 - y0))
    if f >= 1.0:
        return x0, y0, x1, y1, x1 - x0, y1 - y0
    return x0, y0, x1, y1, max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))


def _encode_image(src: Path, width: int, height: int, max_side: int, quality: int, boxes: list | None = None,
                  target_crop: float = 0.0, crop_margin: float = 0.0, fmt: str = "jpg"
                  ) -> tuple[bytes, float, float, int, int, str]:
    """(image bytes, fx, fy, crop x0, crop y0, how) for one image; how is 'resized', 're-encoded' or 'copied'."""
    img = cv2.imread(str(src), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION)   # grey stays 1 channel
    if img is None:
        raise TransposeLiveError(f"cannot read image {src}")
    if (img.shape[1], img.shape[0]) != (width, height):
        raise TransposeLiveError(
            f"{src} is {img.shape[1]}x{img.shape[0]} but its annotations say {width}x{height}")
    suffix, flag = FORMATS[fmt]
    params = [flag, int(quality)] + ([cv2.IMWRITE_JPEG_OPTIMIZE, 1] if fmt == "jpg" else [])
    x0, y0, x1, y1, new_w, new_h = plan_geometry(width, height, boxes or [], max_side, target_crop, crop_margin)
    cropped = (x0, y0, x1, y1) != (0, 0, width, height)
    img = img[y0:y1, x0:x1]
    if (new_w, new_h) != (x1 - x0, y1 - y0):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
        fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
        return cv2.imencode(suffix, img, params)[1].tobytes(), fx, fy, x0, y0, "resized"
    encoded = cv2.imencode(suffix, img, params)[1].tobytes()
    original = strip_exif(src.read_bytes()) if fmt == "jpg" and not cropped else None
    if original is not None and len(original) <= len(encoded):
        return original, 1.0, 1.0, 0, 0, "copied"
    return encoded, 1.0, 1.0, x0, y0, "re-encoded"


def _prepare_dir(dest: Path, overwrite: bool) -> None:
    if dest.exists():
        ours = dest.is_dir() and {p.name for p in dest.iterdir()} <= {ANN_NAME, "images"}
        if not overwrite:
            raise TransposeLiveError(f"{dest} exists; pass --overwrite to replace it")
        if not ours:
            raise TransposeLiveError(f"{dest} holds files this tool did not write; refusing to delete it")
        shutil.rmtree(dest)
    (dest / "images").mkdir(parents=True)


def pack_source(name: str, ann_json: Path, images_dir: Path, out_dir: Path, max_side: int = 640,
                quality: int = 90, exclude_ids: set[int] | None = None, overwrite: bool = False,
                target_crop: float = 0.0, crop_margin: float = 0.0, fmt: str = "jpg",
                part: slice = slice(None), weight: float = 1.0) -> dict:
    """Write out_dir/name/{images/, person_keypoints.json}; return its manifest entry."""
    if max_side < 16 or not 1 <= quality <= 100:
        raise TransposeLiveError(f"--max-side must be >= 16 and --quality 1..100, got {max_side}, {quality}")
    if target_crop < 0 or crop_margin < 0 or not weight > 0 or fmt not in FORMATS:
        raise TransposeLiveError(f"--target-crop and --crop-margin must be >= 0, --weight > 0, --format one of "
                                 f"{', '.join(FORMATS)}; got {target_crop}, {crop_margin}, {weight}, {fmt!r}")
    data = read_coco_json(ann_json)
    refuse_excluded(data, ann_json, exclude_ids)
    images = {int(im["id"]): im for im in data["images"]}
    persons: dict[int, list[dict]] = {}
    boxes: dict[int, list] = {}
    for ann in data["annotations"]:
        image = images.get(int(ann["image_id"]))
        box = usable_person(ann, image, ann_json) if image is not None else None
        if box is not None:
            persons.setdefault(int(ann["image_id"]), []).append(ann)
            boxes.setdefault(int(ann["image_id"]), []).append(box)
    if persons and part != slice(None):
        kept = sorted(persons)[part]
        persons = {i: persons[i] for i in kept}
    if not persons:
        raise TransposeLiveError(f"{ann_json} holds no trainable person (non-crowd, with keypoints)")

    dest = out_dir / name
    _prepare_dir(dest, overwrite)
    out_images, out_anns, used = [], [], set()
    counts = {"resized": 0, "re-encoded": 0, "copied": 0}
    suffix = FORMATS[fmt][0]
    for image_id in sorted(persons):
        image = images[image_id]
        src = images_dir / image["file_name"]
        if not src.is_file():
            raise TransposeLiveError(f"image {image['file_name']} of {ann_json} is missing from {images_dir}")
        blob, fx, fy, ox, oy, how = _encode_image(src, int(image["width"]), int(image["height"]), max_side,
                                                  quality, boxes[image_id], target_crop, crop_margin, fmt)
        counts[how] += 1
        file_name = Path(image["file_name"]).stem + suffix
        if file_name in used:
            file_name = f"{Path(image['file_name']).stem}_{image_id}{suffix}"
        used.add(file_name)
        (dest / "images" / file_name).write_bytes(blob)
        packed = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)   # its true size
        entry = {"id": image_id, "file_name": file_name, "width": int(packed.shape[1]), "height": int(packed.shape[0])}
        if "license" in image:
            entry["license"] = image["license"]
        out_images.append(entry)
        out_anns.extend(_scaled_annotation(a, fx, fy, ox, oy) for a in persons[image_id])

    out = {
        "info": {"description": f"training pack of source {name!r} (tools/training/pack_training_set.py)",
                 "max_side": max_side, "quality": quality, "format": fmt, "target_crop": target_crop,
                 "crop_margin": crop_margin},
        "images": out_images,
        "annotations": out_anns,
        "categories": data.get("categories") or [{"id": 1, "name": "person", "supercategory": "person"}],
    }
    if "licenses" in data:
        out["licenses"] = data["licenses"]
    (dest / ANN_NAME).write_text(json.dumps(out, separators=(",", ":")))
    return {
        "annotations": f"{name}/{ANN_NAME}",
        "images_dir": f"{name}/images",
        "images": len(out_images),
        "persons": len(out_anns),
        "keypoints": int(sum(a["num_keypoints"] for a in out_anns)),
        **{k.replace("-", "_"): v for k, v in counts.items()},
        "max_side": max_side,
        "quality": quality,
        "format": fmt,
        "target_crop": target_crop,
        "crop_margin": crop_margin,
        "slice": None if part == slice(None) else [part.start, part.stop],
        "weight": weight,
        "source_json_sha256": hashlib.sha256(Path(ann_json).read_bytes()).hexdigest(),
        "bytes": sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()),
    }


def write_manifest(out_dir: Path, entries: dict[str, dict]) -> dict:
    """Merge entries into out_dir/manifest.json (sources packed earlier are kept) and return it."""
    path = out_dir / "manifest.json"
    manifest = {"format": 1, "sources": {}}
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except ValueError as exc:
            raise TransposeLiveError(f"{path} is not valid JSON: {exc}") from None
    manifest["sources"].update(entries)
    manifest["total_images"] = sum(s["images"] for s in manifest["sources"].values())
    manifest["total_persons"] = sum(s["persons"] for s in manifest["sources"].values())
    manifest["total_bytes"] = sum(s["bytes"] for s in manifest["sources"].values())
    path.write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", action="append", required=True, metavar="NAME=ANN_JSON:IMAGES_DIR",
                    help="a COCO keypoint json and its image folder (repeat for several)")
    ap.add_argument("--out", required=True, type=Path, help="pack folder (created; other sources in it are kept)")
    ap.add_argument("--max-side", type=int, default=640, help="downscale so the longer side is at most this")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of re-encoded images")
    ap.add_argument("--exclude-ids", type=Path, help="refuse sources that list any of these image ids "
                    "(one per line, e.g. coco_val2017_ids.txt)")
    ap.add_argument("--overwrite", action="store_true", help="replace a source already in the pack")
    ap.add_argument("--format", choices=sorted(FORMATS), default="jpg", help="image format (webp: smaller)")
    ap.add_argument("--target-crop", type=float, default=0.0, metavar="PX",
                    help="downscale until the smallest person's training crop is PX tall (0: off)")
    ap.add_argument("--crop-margin", type=float, default=0.0, metavar="M",
                    help="cut images to the union of their persons' training crops grown by M (0: off)")
    ap.add_argument("--slice", metavar="START:STOP", help="keep only these images of each source (sorted by id)")
    ap.add_argument("--weight", type=float, default=1.0, help="loss weight of these sources, kept in the manifest")
    args = ap.parse_args(argv)
    try:
        sources = [parse_source(s) for s in args.source]
        names = [n for n, _, _ in sources]
        if len(set(names)) != len(names):
            raise TransposeLiveError(f"source names repeat: {', '.join(names)}")
        exclude = load_id_list(args.exclude_ids) if args.exclude_ids else None
        args.out.mkdir(parents=True, exist_ok=True)
        entries = {}
        for name, ann, images in sources:
            entries[name] = pack_source(name, ann, images, args.out, args.max_side, args.quality,
                                        exclude, args.overwrite, args.target_crop, args.crop_margin,
                                        args.format, parse_slice(args.slice), args.weight)
            e = entries[name]
            print(f"{name}: {e['images']} images, {e['persons']} persons, {e['bytes'] / 1e6:.2f} MB")
        manifest = write_manifest(args.out, entries)
    except TransposeLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pack {args.out}: {len(manifest['sources'])} sources, {manifest['total_images']} images, "
          f"{manifest['total_persons']} persons, {manifest['total_bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
