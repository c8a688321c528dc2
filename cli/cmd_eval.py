"""`transpose-live eval`: COCO keypoint AP of a model on a COCO-format json + image folder."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer

from transpose_live.errors import TransposeLiveError

DEVICES = ("auto", "cpu", "cuda")


def build_estimator(model: str, weights: str | None, device: str, flip: bool):
    """The PoseEstimator to evaluate (a seam the tests replace with a fake)."""
    from transpose_live.estimator import PoseEstimator

    return PoseEstimator(model=model, weights=weights, device=device, flip=flip)


def _looks_like_file(name: str) -> bool:
    """A path (not a registered checkpoint name): it has a folder part or a checkpoint suffix."""
    return "/" in name or "\\" in name or Path(name).suffix in (".pth", ".pt", ".ckpt", ".bin")


def _fmt(value: float) -> str:
    return "  n/a" if math.isnan(value) else f"{100 * value:5.1f}"


def format_table(stats: dict, n_images: int, n_persons: int, n_results: int) -> str:
    keys = ("AP", "AP50", "AP75", "APm", "APl", "AR")
    head = "  ".join(f"{k:>5}" for k in keys)
    row = "  ".join(_fmt(stats[k]) for k in keys)
    return f"{head}\n{row}\n({n_images} images, {n_persons} labelled persons, {n_results} predicted poses; AP in %)"


def eval_command(
    annotations: Path = typer.Argument(..., metavar="ANNOTATIONS.json", help="COCO person_keypoints json."),
    images_dir: Path = typer.Argument(..., metavar="IMAGES_DIR", help="Folder holding the json's images (file_name)."),
    boxes: str = typer.Option("gt", "--boxes", help="Person boxes: gt (ground truth) or detector (SSD)."),
    model: str = typer.Option("default", "--model", help="Model preset name, or 'default'."),
    weights: str = typer.Option(None, "--weights", help="Checkpoint file or name (default: the model's)."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Flip test: average with the mirrored image."),
    json_out: Path = typer.Option(None, "--json", help="Write the scores (fractions 0..1) to this json file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    max_images: int = typer.Option(None, "--max-images", help="Only the first N images (by id)."),
) -> None:
    """COCO keypoint AP/AR (pycocotools, OKS) with the paper's protocol: flip test, rescoring, OKS-NMS."""
    from transpose_live import evaluate

    if not annotations.is_file():
        raise TransposeLiveError(f"annotation file not found: {annotations}")
    if not images_dir.is_dir():
        raise TransposeLiveError(f"image folder not found: {images_dir}")
    if boxes not in evaluate.BOX_MODES:
        raise TransposeLiveError(f"--boxes must be gt or detector, got {boxes!r}")
    if device not in DEVICES:
        raise TransposeLiveError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if weights is not None and _looks_like_file(weights) and not Path(weights).is_file():
        raise TransposeLiveError(f"weights file not found: {weights}")

    coco = evaluate.load_coco(annotations)
    img_ids = evaluate.select_image_ids(coco, max_images)
    estimator = build_estimator(model, weights, device, flip)
    t0 = time.perf_counter()
    results = evaluate.predict_coco(estimator, coco, images_dir, boxes=boxes, flip=flip, img_ids=img_ids)
    seconds = time.perf_counter() - t0
    stats = evaluate.coco_eval(coco, results, img_ids=img_ids)
    n_persons = len(evaluate.labelled_persons(coco, img_ids))

    typer.echo(format_table(stats, len(img_ids), n_persons, len(results)))
    if json_out is not None:
        report = {k: (None if math.isnan(v) else v) for k, v in stats.items()}
        report.update(model=model, weights=weights, boxes=boxes, flip=flip,
                      images=len(img_ids), persons=n_persons, predictions=len(results),
                      seconds=round(seconds, 2))
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as exc:
            raise TransposeLiveError(f"cannot write {json_out}: {exc.strerror}") from None
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
