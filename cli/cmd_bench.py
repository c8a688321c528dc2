"""`transpose-live bench`: model throughput per preset/batch/path, and the threaded pipeline on a video."""

from __future__ import annotations

from pathlib import Path

import typer

from transpose_live.cli.options import option, say, with_spec
from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks import OutputTarget, check_output, write_json
from transpose_live.model import hub
from transpose_live.model.backends import (
    OPENVINO_PRECISIONS,
    available_backends,
    check_backend_name,
    check_precision_name,
    resolve_backend,
)
from transpose_live.model.config import PRESETS, parse_image_size
from transpose_live.model.device import resolve_device


def _backends(asked: list[str], device) -> list[str]:
    """The --backend values as backend names: 'all' = every one available on the device, 'auto' = the
    one a run would pick; duplicates dropped, order kept."""

    out: list[str] = []
    for value in asked:
        names = available_backends(device) if value.strip().lower() == "all" else [
            resolve_backend(check_backend_name(value), device)]
        out += [n for n in names if n not in out]
    return out


def _combos(backends: list[str], precisions: list[str]) -> list[tuple[str, str]]:
    """(backend, precision) pairs that exist: bf16 and mixed only on openvino."""

    wanted = [check_precision_name(p) for p in precisions]
    pairs = [(b, p) for b in backends for p in dict.fromkeys(wanted) if p not in OPENVINO_PRECISIONS or b == "openvino"]
    if not pairs:
        raise TransposeLiveError(f"precision {'/'.join(dict.fromkeys(wanted))} runs on the openvino backend only; "
                                 "add --backend openvino")
    return pairs


def _model_rows(model: list[str], batch: list[int], device: str, backend: list[str], path: str,
                image_size: str | None, seconds: float, precision: list[str]) -> list:
    import torch  # deferred: torch and the benchmarks load only when the command runs (--help stays cheap)

    from transpose_live.bench.models import bench_model
    from transpose_live.model import create_model, load_model

    weights = hub.entries()
    names: list[str] = []
    for m in model:
        # all: the shipped model as it runs (when installed), then every preset at its own input size
        asked = ([hub.DEFAULT_NAME] if hub.DEFAULT_NAME in weights else []) + list(PRESETS) if m == "all" else [m]
        names += [n for n in asked if n not in names]
    for n in names:
        if n not in PRESETS and n not in weights:
            raise TransposeLiveError(f"unknown model {n!r}; choose a preset ({', '.join(PRESETS)}) or weights "
                                     f"({', '.join(weights)})")
    if path not in ("fast", "attention", "both"):
        raise TransposeLiveError("--path must be fast, attention or both")
    if any(b < 1 for b in batch):
        raise TransposeLiveError("--batch must be >= 1")
    dev = resolve_device(device)
    combos = _combos(_backends(backend, dev), precision)
    size = parse_image_size(image_size) if image_size else None
    paths = [False, True] if path == "both" else [path == "attention"]
    rows = []
    total = len(names) * len(batch) * len(paths) * len(combos)
    for n in names:
        # weights that are here (the shipped "default", a released file already cached) are timed as they run:
        # at their trained size. Anything else gets random weights, the same each run (seeded, so that its ONNX
        # export is cached once), and no download: speed does not depend on the values.
        torch.manual_seed(0)
        net, kind = None, "random"
        if n in weights and hub.is_cached(n):
            try:
                net = load_model(n, image_size=size)
                kind = "shipped" if n == hub.DEFAULT_NAME else "released"
            except TransposeLiveError as exc:
                if n not in PRESETS:
                    raise
                say(f"{n}: {exc}; timing the preset with random weights")
        if net is None:
            net = create_model(weights[n].preset if n in weights else n, image_size=size)
        for b in batch:
            for att in paths:
                for be, prec in combos:   # each row times its eager baseline in turns with itself
                    # progress on stderr says what is being timed; the results are the one table on stdout
                    done = len(rows) + 1
                    say(f"[{done}/{total}] timing {n} {be} {prec} batch {b}{' with attention maps' if att else ''}")
                    rows.append(bench_model(n, net, device=str(dev), batch=b, attention=att, backend=be,
                                            min_seconds=seconds, precision=prec, weights=kind))
    return rows


@with_spec("flip", "detect", "smooth", "duration")
def bench_command(
    model: list[str] = typer.Option(["default"], "--model", help="Model(s) to time: 'default' (the shipped one, "
                                    "at its own input size), a weights name or a preset (its weights when cached, "
                                    "else random ones: nothing is downloaded), or 'all' (the shipped model and "
                                    "every preset). Rows show the paper's COCO val AP beside the speed."),
    batch: list[int] = typer.Option([1, 8], "--batch", help="Batch size(s)."),
    device: str = option("device"),
    backend: list[str] = typer.Option(["auto"], "--backend", help="Backend(s) of the forward pass: auto (what a "
                                      "run picks), torch, onnxruntime, openvino, or all (every one available "
                                      "here). Every row also times the eager fp32 torch model in the same run."),
    precision: list[str] = typer.Option(["auto"], "--precision", help="Precision(s): auto (what a run picks: "
                                        "fp16 on CUDA; on the CPU mixed on openvino rows where the CPU has bf16, "
                                        "else fp32), fp32, mixed, bf16 (mixed and bf16: openvino rows only)."),
    path: str = typer.Option("fast", "--path", help="fast (no maps), attention (maps as outputs) or both."),
    image_size: str = typer.Option(None, "--image-size", help="Input HEIGHTxWIDTH (default: the preset's)."),
    seconds: float = typer.Option(2.0, "--seconds", help="Minimum timed seconds per row."),
    threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
    pipeline: Path = typer.Option(None, "--pipeline", help="Instead: run the full pipeline on this VIDEO and "
                                  "report per-stage times next to end-to-end fps."),
    frames: int = typer.Option(100, "--frames", min=1, help="Frames of VIDEO to time for --pipeline."),
    rtsp: str = typer.Option(None, "--rtsp", help="Instead: run the pipeline on this live stream for --duration "
                             "seconds (default 20) and report capture -> rendered latency percentiles."),
    json_out: Path = typer.Option(None, "--json", help="Also write the rows as JSON."),
    *, spec,
) -> None:
    """Measure crops/s of the model (forward pass only, inputs ready) against the eager fp32 model in the
    same run, or the whole pipeline (each stage alone, then end to end) on a video, per backend."""
    import torch  # deferred: as above

    from transpose_live.bench.models import environment, format_rows, rows_as_dicts

    if threads:
        torch.set_num_threads(threads)
    if json_out is not None:
        check_output(json_out, "json")          # an unwritable path fails now, not after the run
    if rtsp is not None:
        from transpose_live.bench.pipeline import bench_stream, format_stream  # deferred: torch

        data = bench_stream(rtsp, spec.replace(device=device, backend=_backends(backend, resolve_device(device))[0])
                            .validate())
        typer.echo(format_stream(data))
    elif pipeline is not None:
        from transpose_live.bench.pipeline import bench_pipeline, format_bench  # deferred: torch

        runs = []
        for be, prec in _combos(_backends(backend, resolve_device(device)), precision):
            runs.append(bench_pipeline(pipeline, spec.replace(device=device, backend=be, precision=prec,
                                                              max_frames=frames).validate()))
            typer.echo(format_bench(runs[-1]))
        data = {"environment": environment(runs[-1].device), "pipelines": [b.as_dict() for b in runs]}
    else:
        rows = _model_rows(model, batch, device, backend, path, image_size, seconds, precision)
        typer.echo(format_rows(rows))
        data = {"environment": environment(str(rows[0].device) if rows else device), "rows": rows_as_dicts(rows)}
    if json_out is not None:
        write_json(OutputTarget(json_out, "json"), data)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
