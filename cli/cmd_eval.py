"""`transpose-live eval`: COCO keypoint AP of a model on a COCO-format json + image folder."""

from __future__ import annotations

import math
import time
from pathlib import Path

import typer

from transpose_live.cli.options import with_spec
from transpose_live.errors import TransposeLiveError


def _fmt(value: float) -> str:
    return "  n/a" if math.isnan(value) else f"{100 * value:5.1f}"


def format_table(stats: dict, n_images: int, n_persons: int, n_results: int) -> str:
    keys = ("AP", "AP50", "AP75", "APm", "APl", "AR")
    head = "  ".join(f"{k:>5}" for k in keys)
    row = "  ".join(_fmt(stats[k]) for k in keys)
    return f"{head}\n{row}\n({n_images} images, {n_persons} labelled persons, {n_results} predicted poses; AP in %)"


@with_spec("model", "detector", "detect_tiles", "min_person_score")
def eval_command(
    annotations: Path = typer.Argument(..., metavar="ANNOTATIONS.json", help="COCO person_keypoints json."),
    images_dir: Path = typer.Argument(..., metavar="IMAGES_DIR", help="Folder holding the json's images (file_name)."),
    person_boxes: str = typer.Option("gt", "--person-boxes", help="gt: the labelled person boxes (the paper's "
                                     "protocol); detected: boxes from --detector."),
    json_out: str = typer.Option(None, "--json", help="Write the scores (fractions 0..1) to this json file; "
                                 "- for stdout (the table then goes to stderr)."),
    max_images: int = typer.Option(None, "--max-images", help="Only the first N images (by id)."),
    detector_min_score: float = typer.Option(None, "--detector-min-score", help="With --person-boxes detected: "
                                             "keep detector boxes scoring at least this (default 0.05: the COCO "
                                             "test keeps nearly every box and lets OKS-NMS sort them out; the live "
                                             "commands keep 0.3, see docs/MODEL_CARD.md)."),
    *, spec,
) -> None:
    """COCO keypoint AP/AR (pycocotools, OKS) with the paper's protocol: rescoring, OKS-NMS (add --flip for
    the flip test the paper's numbers use)."""
    # deferred: the model, pycocotools and torch load only when the command runs (--help stays cheap)
    from transpose_live.live.run import load_estimator
    from transpose_live.media.sinks import OutputTarget, check_output, write_json
    from transpose_live.train import evaluate

    if not annotations.is_file():
        raise TransposeLiveError(f"annotation file not found: {annotations}")
    if not images_dir.is_dir():
        raise TransposeLiveError(f"image folder not found: {images_dir}")
    if person_boxes not in ("gt", "detected"):
        raise TransposeLiveError(f"--person-boxes must be gt or detected, got {person_boxes!r}")
    if detector_min_score is not None and not 0.0 <= detector_min_score <= 1.0:
        raise TransposeLiveError(f"--detector-min-score must be between 0 and 1, got {detector_min_score}")
    if detector_min_score is not None and (person_boxes != "detected" or spec.detector == "none"):
        # it would be ignored: say so rather than report figures the user thinks it shaped
        raise TransposeLiveError("--detector-min-score needs --person-boxes detected and a detector (not none)")
    if spec.detect_tiles and person_boxes != "detected":
        raise TransposeLiveError("--detect-tiles needs --person-boxes detected")
    if json_out is not None and json_out != "-":
        check_output(json_out, "report")

    coco = evaluate.load_coco(annotations)
    img_ids = evaluate.select_image_ids(coco, max_images)
    estimator = load_estimator(spec)
    t0 = time.perf_counter()
    results = evaluate.predict_coco(estimator, coco, images_dir,
                                    detector="gt" if person_boxes == "gt" else spec.detector,
                                    flip=spec.flip, img_ids=img_ids, min_person_score=spec.min_person_score,
                                    detector_min_score=detector_min_score if person_boxes == "detected" else None,
                                    detect_tiles=spec.detect_tiles)
    seconds = time.perf_counter() - t0
    stats = evaluate.coco_eval(coco, results, img_ids=img_ids)
    n_persons = len(evaluate.labelled_persons(coco, img_ids))

    # the table is the result on stdout, unless the report itself goes there (--json -)
    typer.echo(format_table(stats, len(img_ids), n_persons, len(results)), err=str(json_out) == "-")
    if json_out is not None:
        report = {k: (None if math.isnan(v) else v) for k, v in stats.items()}
        report.update(model=spec.model, weights=spec.weights, person_boxes=person_boxes,
                      detector=spec.detector if person_boxes == "detected" else None,
                      # the threshold used (the eval default when none was given), so reports stay comparable
                      detector_min_score=(evaluate.EVAL_DETECTOR_MIN_SCORE if detector_min_score is None
                                          else detector_min_score)
                      if person_boxes == "detected" and spec.detector != "none" else None,
                      detect_tiles=spec.detect_tiles if person_boxes == "detected" else None,
                      flip=spec.flip,
                      min_person_score=spec.min_person_score, images=len(img_ids), persons=n_persons,
                      predictions=len(results), seconds=round(seconds, 2))
        write_json(OutputTarget(json_out, "report"), report)
        if str(json_out) != "-":
            typer.echo(f"wrote {json_out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
