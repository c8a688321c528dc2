"""`transpose-live image`: poses on photos; annotated pictures, COCO-results JSON and a summary on stderr."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from transpose_live.cli.options import say, with_spec
from transpose_live.errors import TransposeLiveError

OUT_SUFFIX = "_pose"          # --out-dir DIR: DIR/<photo stem>_pose.jpg (never the photo's own name)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """ "x,y,w,h" in pixels -> a tuple; w and h must be > 0."""
    try:
        values = tuple(float(p.strip()) for p in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise TransposeLiveError(f"--box must be x,y,w,h (four numbers in pixels), got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise TransposeLiveError(f"--box {text!r}: width and height must be > 0")
    return values


def image_id_for(path: Path, index: int) -> int:
    """COCO style: the number in an all-digit file name (000000183872.jpg -> 183872), else the photo's index."""
    return int(path.stem) if path.stem.isdigit() else index


def output_paths(photos: list[Path], out: Path | None, out_dir: Path | None) -> list[Path | None]:
    """Where each annotated photo goes (None: not written); checked before any model work."""
    from transpose_live.media.photos import check_photo_output  # deferred: numpy (--help stays fast)

    if out is not None and out_dir is not None:
        raise TransposeLiveError("use either --out or --out-dir, not both")
    if out is not None and len(photos) > 1:
        raise TransposeLiveError(f"--out names one file but {len(photos)} photos were given; use --out-dir DIR")
    if out is not None:
        targets: list[Path | None] = [out]
    elif out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransposeLiveError(f"cannot create folder {out_dir}: {exc.strerror}") from None
        targets = [out_dir / f"{p.stem}{OUT_SUFFIX}.jpg" for p in photos]
    else:
        return [None] * len(photos)
    seen: dict[Path, Path] = {}
    inputs = {p.resolve() for p in photos}
    for photo, target in zip(photos, targets):
        if target in seen:
            raise TransposeLiveError(f"{seen[target]} and {photo} would both be written to {target}; "
                                     "rename one or run them separately")
        if target.resolve() in inputs:
            raise TransposeLiveError(f"refusing to overwrite the input photo {target}")
        seen[target] = photo
    check_photo_output(targets[0])      # one folder and suffix for all: checking the first checks them all
    return targets


def summary_line(n: int, pose, min_joint_score: float) -> str:
    seen = int(sum(1 for s in pose.scores.tolist() if math.isfinite(s) and s >= min_joint_score))
    x, y, w, h = pose.box
    return (f"  person {n}: box {x:.0f},{y:.0f},{w:.0f},{h:.0f}  score {pose.score:.2f}  "
            f"{seen}/{len(pose.scores)} joints >= {min_joint_score:g}")


@with_spec("model", "detector", "detect_tiles", "min_person_score", "attention", "joint", "min_joint_score", "boxes")
def image_command(
    photos: list[Path] = typer.Argument(..., metavar="PHOTO...", help="Image files (jpg, png, ...)."),
    out: Path = typer.Option(None, "--out", "-o", help="Annotated image (one photo only)."),
    out_dir: Path = typer.Option(None, "--out-dir", help="Folder for annotated images: <name>_pose.jpg each."),
    json_out: str = typer.Option(None, "--json", help="The poses as COCO keypoint results (a JSON list; "
                                 "[] when nobody is found); - for stdout."),
    box: list[str] = typer.Option(None, "--box", help="Person box x,y,w,h in pixels (repeatable; every photo). "
                                  "Without it the detector finds the persons."),
    *, spec,
) -> None:
    """Estimate the poses of the persons in photos: annotated images, COCO-results JSON, a summary.

    A photo with nobody in it gives no pose (said on stderr; --json gets [])."""
    # deferred: numpy and the run API (--help and option errors stay fast)
    from transpose_live.live.run import load_runner
    from transpose_live.media.photos import read_photo, write_photo
    from transpose_live.media.records import coco_results
    from transpose_live.media.sinks import OutputTarget, check_output, write_json

    boxes = [parse_box(b) for b in box or []]
    for p in photos:   # all inputs checked before the model loads
        if not p.is_file():
            raise TransposeLiveError(f"photo not found: {p}" if not p.exists() else f"not a file: {p}")
    targets = output_paths(photos, out, out_dir)
    if json_out is not None and json_out != "-":
        if Path(json_out).resolve() in {p.resolve() for p in photos}:
            raise TransposeLiveError(f"refusing to overwrite the input photo {json_out}")
        check_output(json_out, "json")
    runner = load_runner(spec.replace(detector="none") if boxes else spec)   # given boxes: no detector to load

    results: list[dict] = []
    for index, (photo, target) in enumerate(zip(photos, targets)):
        image = read_photo(photo)
        h, w = image.shape[:2]
        for b in boxes:
            if b[0] >= w or b[1] >= h or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
                raise TransposeLiveError(f"--box {','.join(f'{v:g}' for v in b)} lies outside {photo.name} ({w}x{h})")
        poses = runner.find_poses(image, boxes or None)
        results += coco_results(poses, image_id_for(photo, index))
        if poses:
            say(f"{photo.name}: {len(poses)} person{'' if len(poses) == 1 else 's'} ({w}x{h})")
        else:
            say(f"{photo.name}: no person found ({w}x{h})")
        for n, pose in enumerate(poses, 1):
            say(summary_line(n, pose, spec.min_joint_score))
        if target is not None:
            write_photo(target, runner.draw(image, poses, ids=False))
            say(f"  wrote {target}")
    if json_out is not None:
        write_json(OutputTarget(json_out, "json"), results)
        if json_out != "-":
            say(f"wrote {json_out} ({len(results)} poses)")


def register(app: typer.Typer) -> None:
    app.command("image")(image_command)
