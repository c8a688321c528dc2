"""Weights hub: the cache of checkpoints, first-use download, sha256 pinning and import.

It hands out verified file paths; building a model from one is transpose_live.model.loading's job. The
table of released checkpoints is model/registry.py; the fetching itself (atomic, locked, offline switch)
is model/download.py.

A registered name that is not cached yet is downloaded on first use (`resolve_weights`), so every caller
that takes a name (the CLI, load_model, PoseEstimator, the window's model picker) gets it the same way.
Released sha256s are not published, so they are pinned on first use: the first download or import that
loads strictly into the preset records the file's sha256 in <cache>/hashes.json, and every later load
checks the cached file against it. The project's own checkpoint ships in transpose_live/assets/
(described by default.json).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from transpose_live.errors import CheckpointError, TransposeLiveError
from transpose_live.model.cache import cache_dir, file_sha256
from transpose_live.model.config import parse_image_size
from transpose_live.model.download import (
    OFFLINE_ENV,
    fetch_into,
    file_lock,
    network_forbidden,
    offline,
)
from transpose_live.model.registry import HUB_URL_ENV, REGISTRY, HubEntry, PaperAP, entry_url

DEFAULT_NAME = "default"
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


@dataclass(frozen=True)
class EntryRow:
    """One line of `transpose-live weights list`."""

    name: str
    preset: str
    cached: bool
    sha256_known: bool
    path: Path | None               # where the file is (or would be cached)
    url: str | None
    description: str
    paper_ap: PaperAP | None = None  # the authors' COCO val AP for these weights
    size_bytes: int | None = None    # the file's size when cached, else the registry's expected data size


# ---------------------------------------------------------------------------------------------- cache


def checkpoints_dir() -> Path:
    return cache_dir() / "checkpoints"


def cached_path(entry: HubEntry) -> Path:
    return entry.local_path if entry.local_path is not None else checkpoints_dir() / entry.filename


def is_cached(name: str) -> bool:
    """Whether `name`'s file is here (not whether it is verified: resolve_weights does that)."""
    return cached_path(get_entry(name)).is_file()


def _locks_dir() -> Path:
    return cache_dir() / "locks"


def _hashes_file() -> Path:
    return cache_dir() / "hashes.json"


def _read_hashes() -> dict:
    path = _hashes_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TransposeLiveError(f"cannot read {path}: {exc}; delete it to re-pin checkpoint hashes") from None
    return data if isinstance(data, dict) else {}


def _record_hash(entry: HubEntry, sha256: str, source: str) -> None:
    path = _hashes_file()
    _make_dir(path.parent)
    # read-modify-write under a lock: two names pinned at once must both end up in the file
    with file_lock(_locks_dir() / "hashes.lock"):
        hashes = _read_hashes()
        hashes[entry.name] = {"filename": entry.filename, "sha256": sha256, "source": source}
        tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)  # readers never see half a file


def expected_sha256(entry: HubEntry) -> str | None:
    """The pinned sha256, else the one recorded on first verified use (for the same filename)."""
    if entry.sha256:
        return entry.sha256
    record = _read_hashes().get(entry.name)
    if isinstance(record, dict) and record.get("filename") == entry.filename:
        return record.get("sha256")
    return None


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransposeLiveError(f"cannot write the weights cache {folder}: {exc.strerror} "
                                 f"(set TRANSPOSE_LIVE_HOME to a writable folder)") from None


# ------------------------------------------------------------------------------------------- registry

def _default_entry() -> HubEntry | None:
    """The shipped checkpoint, when assets/default.json and its file are both present."""
    meta_path = ASSETS_DIR / "default.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        preset = str(meta["preset"])
        filename = str(meta.get("file", "default.pt"))
        size = meta.get("image_size")
        image_size = parse_image_size(size) if size else None
    except (OSError, ValueError, KeyError, TypeError, TransposeLiveError) as exc:
        raise TransposeLiveError(f"broken {meta_path.name} in the package assets: {exc}; reinstall") from None
    path = ASSETS_DIR / filename
    if not path.is_file():
        return None
    return HubEntry(DEFAULT_NAME, preset, None, filename, meta.get("sha256") or None,
                    "this project's shipped checkpoint", image_size=image_size, local_path=path)


def entries() -> dict[str, HubEntry]:
    """All registry entries; "default" only when the shipped checkpoint is installed."""
    default = _default_entry()
    return ({DEFAULT_NAME: default} if default else {}) | dict(REGISTRY)


def get_entry(name: str) -> HubEntry:
    found = entries().get(name)
    if found is not None:
        return found
    if name == DEFAULT_NAME:
        raise TransposeLiveError(
            "the shipped default checkpoint is not installed; choose released weights by name (e.g. "
            f"--model {next(iter(REGISTRY))}, downloaded on first use) or `transpose-live weights import FILE "
            "--name NAME`"
        )
    raise TransposeLiveError(f"unknown weights {name!r}; choose one of: {', '.join(entries())}")


def list_entries() -> list[EntryRow]:
    rows = []
    for entry in entries().values():
        path = cached_path(entry)
        cached = path.is_file()
        url = entry_url(entry) if entry.url else None  # the mirror's URL when TRANSPOSE_LIVE_HUB_URL is set
        size = path.stat().st_size if cached else entry.size_bytes
        rows.append(EntryRow(entry.name, entry.preset, cached, expected_sha256(entry) is not None,
                             path, url, entry.description, entry.paper_ap, size))
    return rows


# ------------------------------------------------------------------------------------ verify / resolve

def _check_strict(path: Path, preset: str, label: str) -> None:
    """Raise CheckpointError unless `path` loads strictly (every key and shape) into the preset.

    `label` names the file in the message (a download's URL rather than its temp file).
    """
    from transpose_live.model.transpose import create_model
    from transpose_live.model.weights import load_strict, read_checkpoint

    try:
        load_strict(create_model(preset), read_checkpoint(path), source=label)
    except CheckpointError as exc:
        raise CheckpointError(str(exc).replace(str(path), label)) from None


def _import_hint(name: str) -> str:
    return f"download it elsewhere and run `transpose-live weights import FILE --name {name}`"


def resolve_weights(name: str, fetch: bool = True, progress: bool = True) -> Path:
    """The verified local file of a registry entry; a released one not cached yet is downloaded first
    (unless `fetch` is False or network access is off: then an error says how to get it)."""
    entry = get_entry(name)
    path = cached_path(entry)
    if not path.is_file():
        if entry.url is not None and fetch and not offline():
            return download(name, progress=progress)
        where = f"fetch {entry_url(entry)} elsewhere and " if entry.url is not None else ""
        why = " and network access is off (--offline or " + OFFLINE_ENV + ")" if fetch and offline() else ""
        raise TransposeLiveError(
            f"weights {name!r} are not downloaded{why}; {where}run `transpose-live weights import FILE --name "
            f"{name}` (or `transpose-live weights download {name}` when online)"
        )
    expected = expected_sha256(entry)
    if expected is not None:
        actual = file_sha256(path)
        if actual != expected:
            fix = ("reinstall the package" if entry.local_path is not None else
                   f"run `transpose-live weights download {name} --force` or import it again")
            raise TransposeLiveError(
                f"{path} has sha256 {actual[:12]}..., expected {expected[:12]}... (corrupted or replaced); {fix}"
            )
    return path


# ------------------------------------------------------------------------------------------- download

def download(name: str, progress: bool = True, url: str | None = None, force: bool = False,
             on_bytes: Callable[[int, int | None], None] | None = None,
             cancel: threading.Event | None = None) -> Path:
    """Fetch a registry entry into the cache (atomic, sha256-checked, strict-load-checked); return its path.

    An already cached file is verified and returned unless `force`. `url` overrides the entry's URL.
    progress: the bar on stderr. on_bytes(received, total) after every chunk and `cancel` (set it to stop,
    raising download.DownloadCancelled) are for a window that shows the progress itself.
    Concurrent calls for the same name (threads or processes) take turns: the later one finds it cached.
    """
    entry = get_entry(name)
    target = cached_path(entry)
    if entry.local_path is not None:
        return resolve_weights(name)  # shipped with the package: nothing to fetch
    if target.is_file() and not force:
        return resolve_weights(name)
    source = url or entry_url(entry)
    hint = _import_hint(name)
    _make_dir(target.parent)

    def waiting() -> None:
        if progress:  # tell the person at the terminal why nothing moves
            sys.stderr.write(f"waiting for another download of {name} to finish\n")
            sys.stderr.flush()

    with file_lock(_locks_dir() / f"{entry.filename}.lock", waiting=waiting):
        if target.is_file() and not force:
            return resolve_weights(name)  # another process or thread fetched it while this one waited
        expected = expected_sha256(entry)

        def check(tmp: Path, sha256: str) -> None:
            if expected is not None and sha256 != expected:
                raise TransposeLiveError(
                    f"downloaded {source} has sha256 {sha256[:12]}..., expected {expected[:12]}... as recorded "
                    f"before; refusing it (if it changed on purpose: transpose-live weights import FILE --name "
                    f"{name})"
                )
            _check_strict(tmp, entry.preset, label=f"downloaded {source}")

        sha256 = fetch_into(source, target, check, hint, f"downloading {name}", progress, on_bytes, cancel)
        if entry.sha256 is None:
            _record_hash(entry, sha256, source)
    return target


# --------------------------------------------------------------------------------------------- import

def import_checkpoint(file: str | os.PathLike, name: str) -> Path:
    """Copy a local checkpoint into the cache as registry entry `name`, after a strict load check."""
    entry = get_entry(name)
    if entry.local_path is not None:
        choices = ", ".join(REGISTRY)
        raise TransposeLiveError(f"{name!r} is the shipped checkpoint and cannot be replaced; "
                                 f"import as one of: {choices}")
    src = Path(file).expanduser()
    if not src.is_file():
        raise TransposeLiveError(f"checkpoint file not found: {src}")
    sha256 = file_sha256(src)
    if entry.sha256 is not None and sha256 != entry.sha256:
        raise TransposeLiveError(
            f"{src} has sha256 {sha256[:12]}..., but {name!r} is pinned to {entry.sha256[:12]}...; "
            "not the released file"
        )
    _check_strict(src, entry.preset, label=str(src))  # raises CheckpointError naming the keys / shapes
    target = cached_path(entry)
    _make_dir(target.parent)
    with file_lock(_locks_dir() / f"{entry.filename}.lock"):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)    # mkstemp made it private; a cache file is readable like any other
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        # An explicit import is the user vouching for this file: it (re)pins the recorded hash.
        _record_hash(entry, sha256, f"import:{src.name}")
    return target


__all__ = ["DEFAULT_NAME", "ASSETS_DIR", "HUB_URL_ENV", "OFFLINE_ENV", "REGISTRY", "HubEntry", "EntryRow",
           "PaperAP", "checkpoints_dir", "cached_path", "is_cached", "expected_sha256", "entries", "get_entry",
           "list_entries", "entry_url", "resolve_weights", "download", "import_checkpoint", "network_forbidden",
           "offline"]
