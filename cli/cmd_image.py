"""`transpose-live image`: poses on photos; annotated pictures, COCO-results JSON and a short summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from transpose_live.errors import TransposeLiveError

DEVICES = ("auto", "cpu", "cuda")
OUT_SUFFIX = "_pose"          # --out-dir DIR: DIR/<photo stem>_pose.jpg (never the photo's own name)


def build_estimator(model: str, weights: str | None, device: str, flip: bool):
    """The PoseEstimator to run (a seam the tests replace with a tiny model)."""
    from transpose_live.estimator import PoseEstimator

    return PoseEstimator(model=model, weights=weights, device=device, flip=flip)


def build_detector(spec: str):
    """The person detector for photos without --box (a seam for the tests)."""
    from transpose_live.detect import create_detector

    return create_detector(spec)


# -------------------------------------------------------------------------------------------- inputs

def parse_box(text: str) -> tuple[float, float, float, float]:
    """ "x,y,w,h" in pixels -> a tuple; w and h must be > 0."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise TransposeLiveError(f"--box must be x,y,w,h (four numbers in pixels), got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise TransposeLiveError(f"--box {text!r}: width and height must be > 0")
    return values


def read_photo(path: Path):
    """(H, W, 3) uint8 BGR; grayscale and 16-bit files are converted. One clear error otherwise."""
    import cv2
    import numpy as np

    if not path.exists():
        raise TransposeLiveError(f"photo not found: {path}")
    if not path.is_file():
        raise TransposeLiveError(f"not a file: {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise TransposeLiveError(f"cannot read {path}: {exc.strerror}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise TransposeLiveError(f"cannot read {path} as an image (not a picture format OpenCV knows)")
    return image


def image_id_for(path: Path, index: int) -> int:
    """COCO style: the number in an all-digit file name (000000183872.jpg -> 183872), else the photo's index."""
    return int(path.stem) if path.stem.isdigit() else index


def output_paths(photos: list[Path], out: Path | None, out_dir: Path | None) -> list[Path | None]:
    """Where each annotated photo goes (None: not written)."""
    if out is not None and out_dir is not None:
        raise TransposeLiveError("use either --out or --out-dir, not both")
    if out is not None:
        if len(photos) > 1:
            raise TransposeLiveError(f"--out names one file but {len(photos)} photos were given; use --out-dir DIR")
        return [out]
    if out_dir is None:
        return [None] * len(photos)
    paths = [out_dir / f"{p.stem}{OUT_SUFFIX}.jpg" for p in photos]
    seen: dict[Path, Path] = {}
    for photo, target in zip(photos, paths):
        if target in seen:
            raise TransposeLiveError(f"{seen[target]} and {photo} would both be written to {target}; "
                                     "rename one or run them separately")
        seen[target] = photo
    return paths


def check_outputs(targets: list[Path | None], json_out: Path | None, photos: list[Path]) -> None:
    """Fail before any model work: a known image format, a writable folder, never an input photo."""
    import cv2

    from transpose_live.sinks import AtomicPath

    inputs = {p.resolve() for p in photos}
    written = [t for t in targets if t is not None]
    for target in written + ([json_out] if json_out is not None else []):
        if target.resolve() in inputs:
            raise TransposeLiveError(f"refusing to overwrite the input photo {target}")
    if written:   # all annotated images share one folder and suffix: checking the first checks them all
        if not cv2.haveImageWriter(str(written[0])):
            raise TransposeLiveError(f"cannot write {written[0]}: unknown image format "
                                     f"{written[0].suffix or '(none)'!r} (use .jpg or .png)")
        AtomicPath(written[0], "image").discard()   # creates and removes a temp file: permissions, mounts
    if json_out is not None:
        AtomicPath(json_out, "json").discard()


def write_image(path: Path, image) -> None:
    import cv2

    from transpose_live.sinks import AtomicPath

    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise TransposeLiveError(f"could not encode {path}")
    target = AtomicPath(path, "image")
    try:
        target.tmp.write_bytes(buf.tobytes())
        target.commit()
    except OSError as exc:
        target.discard()
        raise TransposeLiveError(f"cannot write image {path}: {exc.strerror}") from None


# ------------------------------------------------------------------------------------------- results

def coco_result(pose, image_id: int) -> dict:
    """One COCO keypoint result; non-finite joints become (0, 0, 0) so the JSON stays valid."""
    keypoints: list[float] = []
    for (x, y), s in zip(pose.keypoints.tolist(), pose.scores.tolist()):
        if all(math.isfinite(v) for v in (x, y, s)):
            keypoints += [round(x, 2), round(y, 2), round(s, 4)]
        else:
            keypoints += [0.0, 0.0, 0.0]
    score = pose.score
    return {"image_id": image_id, "category_id": 1, "keypoints": keypoints,
            "score": round(score, 4) if math.isfinite(score) else 0.0}


def summary_line(n: int, pose, min_score: float) -> str:
    seen = int(sum(1 for s in pose.scores.tolist() if math.isfinite(s) and s >= min_score))
    x, y, w, h = pose.box
    return (f"  person {n}: box {x:.0f},{y:.0f},{w:.0f},{h:.0f}  score {pose.score:.2f}  "
            f"{seen}/{len(pose.scores)} joints >= {min_score:g}")


def find_boxes(detector, image, name: str):
    """Detected (boxes, scores); nobody found -> the whole image as one person, said on stderr."""
    found = detector.detect(image)
    if len(found):
        return found.boxes, found.scores
    h, w = image.shape[:2]
    typer.echo(f"{name}: the detector found nobody; using the whole image as one person", err=True)
    return [[0.0, 0.0, float(w), float(h)]], [1.0]


# ------------------------------------------------------------------------------------------- command

def image_command(
    photos: list[Path] = typer.Argument(..., metavar="PHOTO...", help="Image files (jpg, png, ...)."),
    out: Path = typer.Option(None, "--out", "-o", help="Annotated image (one photo only)."),
    out_dir: Path = typer.Option(None, "--out-dir", help="Folder for annotated images: <name>_pose.jpg each."),
    json_out: Path = typer.Option(None, "--json", help="Write the poses as COCO keypoint results (json)."),
    box: list[str] = typer.Option(None, "--box", help="Person box x,y,w,h in pixels (repeatable; every photo). "
                                  "Without it a detector finds the persons."),
    detector: str = typer.Option("ssd", "--detector", help="ssd, none (whole image) or onnx:FILE."),
    model: str = typer.Option("default", "--model", help="Model preset or weights name."),
    weights: str = typer.Option(None, "--weights", help="Checkpoint file for --model's preset."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Flip test: average with the mirrored crop."),
    attention: bool = typer.Option(False, "--attention", help="Overlay the dependency areas (the model's "
                                   "last-layer attention of each confident joint)."),
    joint: str = typer.Option(None, "--joint", help="Only this joint's dependency area (e.g. left_wrist); "
                              "implies --attention."),
    min_score: float = typer.Option(0.2, "--min-score", help="Draw and count joints scoring at least this."),
    draw_boxes: bool = typer.Option(False, "--draw-boxes", help="Outline the person boxes."),
) -> None:
    """Estimate the poses of the persons in photos: annotated images, COCO-results JSON, a summary."""
    from transpose_live.skeleton import KEYPOINT_NAMES

    if device not in DEVICES:
        raise TransposeLiveError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if joint is not None and joint not in KEYPOINT_NAMES:
        raise TransposeLiveError(f"--joint must be one of {', '.join(KEYPOINT_NAMES)}, got {joint!r}")
    attention = attention or joint is not None
    if not 0.0 <= min_score <= 1.0:
        raise TransposeLiveError(f"--min-score must be between 0 and 1, got {min_score}")
    boxes = [parse_box(b) for b in box or []]
    for p in photos:   # all inputs checked before the model loads
        if not p.is_file():
            raise TransposeLiveError(f"photo not found: {p}" if not p.exists() else f"not a file: {p}")
    if weights is not None and not Path(weights).expanduser().is_file():
        raise TransposeLiveError(f"weights file not found: {weights}")
    targets = output_paths(photos, out, out_dir)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransposeLiveError(f"cannot create folder {out_dir}: {exc.strerror}") from None
    check_outputs(targets, json_out, photos)

    find = None if boxes else build_detector(detector)   # a bad detector spec fails before the model loads
    estimator = build_estimator(model, weights, device, flip)
    input_size = tuple(estimator.config.image_size)

    from transpose_live.render import annotate

    results: list[dict] = []
    for index, (photo, target) in enumerate(zip(photos, targets)):
        image = read_photo(photo)
        h, w = image.shape[:2]
        if boxes:
            for b in boxes:
                if b[0] >= w or b[1] >= h or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
                    raise TransposeLiveError(f"--box {','.join(f'{v:g}' for v in b)} lies outside "
                                             f"{photo.name} ({w}x{h})")
            person_boxes, scores = boxes, None
        else:
            person_boxes, scores = find_boxes(find, image, photo.name)
        poses = estimator.estimate(image, person_boxes, box_scores=scores, attention=attention)
        image_id = image_id_for(photo, index)
        results += [coco_result(p, image_id) for p in poses]
        typer.echo(f"{photo.name}: {len(poses)} person{'' if len(poses) == 1 else 's'} ({w}x{h})")
        for n, pose in enumerate(poses, 1):
            typer.echo(summary_line(n, pose, min_score))
        if target is not None:
            drawn = annotate(image, poses, draw_boxes=draw_boxes, draw_ids=False, attention=attention,
                             min_score=min_score, joint=joint, input_size=input_size)
            write_image(target, drawn)
            typer.echo(f"  wrote {target}")
    if json_out is not None:
        from transpose_live.sinks import AtomicPath

        sink = AtomicPath(json_out, "json")
        try:
            sink.tmp.write_text(json.dumps(results) + "\n")
            sink.commit()
        except OSError as exc:
            sink.discard()
            raise TransposeLiveError(f"cannot write {json_out}: {exc.strerror}") from None
        typer.echo(f"wrote {json_out} ({len(results)} poses)")


def register(app: typer.Typer) -> None:
    app.command("image")(image_command)
