"""`transpose-live weights list|download|import`: manage the checkpoint cache (see transpose_live.model.hub)."""

from __future__ import annotations

from pathlib import Path

import typer

from transpose_live.model import hub


def _mb(size: int | None, exact: bool) -> str:
    if size is None:
        return "-"
    return f"{'' if exact else '~'}{size / (1024 * 1024):.1f} MB"   # MB as the download bar counts them


def _ap(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _list() -> None:
    """Show known weights: name, preset, the authors' COCO val AP, size, whether cached, and the file
    (or the URL it is downloaded from on first use)."""
    rows = hub.list_entries()
    header = ("name", "preset", "AP", "AP(gt)", "size", "cached", "sha256", "path / url")
    table = [
        (r.name, r.preset, _ap(r.paper_ap.detector if r.paper_ap else None),
         _ap(r.paper_ap.gt if r.paper_ap else None), _mb(r.size_bytes, r.cached),
         "yes" if r.cached else "no", "known" if r.sha256_known else "-",
         str(r.path) if r.cached or not r.url else r.url)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header) - 1)]
    for row in (header, *table):
        cells = [cell.ljust(w) for cell, w in zip(row, widths)] + [row[-1]]
        typer.echo("  ".join(cells).rstrip())
    typer.echo("AP: COCO val2017 keypoint AP with detected person boxes (the paper's Table 2); AP(gt): with "
               "ground-truth boxes (the authors' README); ~size: the weights' data, before download.")
    typer.echo("A name not cached yet is downloaded on first use (never with --offline or TRANSPOSE_LIVE_OFFLINE=1).")
    typer.echo(f"cache: {hub.checkpoints_dir()}")


def _download(
    name: str = typer.Argument(..., help="Registry name, e.g. tp_r_a4 (see `weights list`)."),
    force: bool = typer.Option(False, "--force", help="Download again even when already cached."),
) -> None:
    """Download released weights into the cache (checked to load strictly before they are kept)."""
    entry = hub.get_entry(name)
    was_cached = hub.cached_path(entry).is_file()
    path = hub.download(name, progress=True, force=force)
    verb = "already cached" if was_cached and not force else "saved"
    typer.echo(f"{name}: {verb} {path}")


def _import(
    file: Path = typer.Argument(..., help="Checkpoint file (.pth/.pt) in the released key format."),
    name: str = typer.Option(..., "--name", help="Registry name the file is for, e.g. tp_r_a4."),
) -> None:
    """Import a checkpoint you downloaded elsewhere (checked to load strictly, then copied into the cache)."""
    path = hub.import_checkpoint(file, name)
    typer.echo(f"{name}: imported {file} -> {path}")


def register(app: typer.Typer) -> None:
    weights = typer.Typer(name="weights", help="List, download and import model weights.", no_args_is_help=True)
    weights.command("list")(_list)
    weights.command("download")(_download)
    weights.command("import")(_import)
    app.add_typer(weights, name="weights")
