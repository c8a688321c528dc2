"""`transpose-live bench`: model throughput per preset/batch/path, and the threaded pipeline on a video."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transpose_live.errors import TransposeLiveError


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        model: list[str] = typer.Option(["tp_m_a4"], "--model", help="Preset(s) to time; 'all' for every preset."),
        batch: list[int] = typer.Option([1, 8], "--batch", help="Batch size(s)."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        path: str = typer.Option("both", "--path", help="fast, attention or both."),
        image_size: str = typer.Option(None, "--image-size", help="Input HEIGHTxWIDTH (default: the preset's)."),
        seconds: float = typer.Option(2.0, "--seconds", help="Minimum timed seconds per row."),
        threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
        pipeline: Path = typer.Option(None, "--pipeline", help="Instead: run the full pipeline on this VIDEO and "
                                      "report per-stage times next to end-to-end fps."),
        max_frames: int = typer.Option(100, "--max-frames", help="Frames for --pipeline."),
        json_out: Path = typer.Option(None, "--json", help="Also write the rows as JSON."),
    ) -> None:
        """Measure crops/s of the model (forward pass only, inputs on the device) or the whole pipeline."""
        import torch

        from transpose_live.config import PRESETS

        if threads:
            torch.set_num_threads(threads)
        if pipeline is not None:
            from transpose_live.bench_pipeline import bench_pipeline_cli

            bench_pipeline_cli(pipeline, max_frames=max_frames, device=device, json_out=json_out)
            return
        from transpose_live.bench import bench_model, format_rows, rows_as_dicts
        from .cmd_train import parse_size

        names = list(PRESETS) if "all" in model else model
        for n in names:
            if n not in PRESETS:
                raise TransposeLiveError(f"unknown model {n!r}; choose from: {', '.join(PRESETS)}")
        if path not in ("fast", "attention", "both"):
            raise TransposeLiveError("--path must be fast, attention or both")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise TransposeLiveError("--device cuda asked for, but no CUDA device is available")
        size = parse_size(image_size) if image_size else None
        paths = [False, True] if path == "both" else [path == "attention"]
        rows = []
        for n in names:
            for b in batch:
                for att in paths:
                    rows.append(bench_model(n, device=device, batch=b, attention=att, image_size=size,
                                            min_seconds=seconds))
                    typer.echo(format_rows(rows[-1:]).splitlines()[1])
        typer.echo("\n" + format_rows(rows))
        if json_out:
            json_out.write_text(json.dumps(rows_as_dicts(rows), indent=2))
