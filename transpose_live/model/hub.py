"""Weights hub: the registry of released / shipped checkpoints, the cache, download and import.

It hands out verified file paths; building a model from one is transpose_live.model.loading's job.

Released TransPose checkpoints are the authors' GitHub release assets (tag "Hub"). Their sha256 is not
published, so it is pinned on first use: the first download or import that loads strictly into the
preset records the file's sha256 in <cache>/hashes.json, and every later load checks the cached file
against it. The project's own checkpoint ships in transpose_live/assets/ (described by default.json).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from transpose_live.errors import CheckpointError, TransposeLiveError
from transpose_live.model.cache import cache_dir, file_sha256
from transpose_live.model.config import parse_image_size
from transpose_live.progress import Progress

DEFAULT_NAME = "default"
HUB_URL_ENV = "TRANSPOSE_LIVE_HUB_URL"      # replaces the release URL's base: <base>/<filename>
TIMEOUT_S = 30.0                            # per socket operation, not for the whole download
CHUNK_BYTES = 1 << 16
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
_RELEASES = "https://github.com/yangsenius/TransPose/releases/download/Hub"


@dataclass(frozen=True)
class HubEntry:
    name: str
    preset: str
    url: str | None                 # None: nothing to download (the shipped checkpoint)
    filename: str
    sha256: str | None              # pinned here when known; else recorded on first verified use
    description: str
    image_size: tuple[int, int] | None = None   # (h, w) the weights were trained at, when not the preset's
    local_path: Path | None = None               # shipped file (default entry only)


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


REGISTRY: dict[str, HubEntry] = {
    e.name: e
    for e in (
        HubEntry("tp_r_a4", "tp_r_a4", f"{_RELEASES}/tp_r_256x192_enc4_d256_h1024_mh8.pth",
                 "tp_r_256x192_enc4_d256_h1024_mh8.pth", None,
                 "TransPose-R-A4, COCO train2017, 256x192 (authors' release)"),
        HubEntry("tp_h_a4", "tp_h_a4", f"{_RELEASES}/tp_h_48_256x192_enc4_d96_h192_mh1.pth",
                 "tp_h_48_256x192_enc4_d96_h192_mh1.pth", None,
                 "TransPose-H-A4, COCO train2017, 256x192 (authors' release)"),
    )
}


# ---------------------------------------------------------------------------------------------- cache


def checkpoints_dir() -> Path:
    return cache_dir() / "checkpoints"


def cached_path(entry: HubEntry) -> Path:
    return entry.local_path if entry.local_path is not None else checkpoints_dir() / entry.filename


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
    hashes = _read_hashes()
    hashes[entry.name] = {"filename": entry.filename, "sha256": sha256, "source": source}
    path = _hashes_file()
    _make_dir(path.parent)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
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
            "the shipped default checkpoint is not installed; get released weights with "
            f"`transpose-live weights download {next(iter(REGISTRY))}` or `transpose-live weights import FILE "
            "--name NAME`, then choose that model by name"
        )
    raise TransposeLiveError(f"unknown weights {name!r}; choose one of: {', '.join(entries())}")


def list_entries() -> list[EntryRow]:
    rows = []
    for entry in entries().values():
        path = cached_path(entry)
        url = entry_url(entry) if entry.url else None  # the mirror's URL when TRANSPOSE_LIVE_HUB_URL is set
        rows.append(EntryRow(entry.name, entry.preset, path.is_file(), expected_sha256(entry) is not None,
                             path, url, entry.description))
    return rows


def entry_url(entry: HubEntry) -> str:
    base = os.environ.get(HUB_URL_ENV)
    if base and entry.url:
        return f"{base.rstrip('/')}/{entry.filename}"
    if not entry.url:
        raise TransposeLiveError(f"{entry.name!r} ships with the package; there is nothing to download")
    return entry.url


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


def resolve_weights(name: str) -> Path:
    """The verified local file of a registry entry, or an error saying how to get it."""
    entry = get_entry(name)
    path = cached_path(entry)
    if not path.is_file():
        raise TransposeLiveError(
            f"weights {name!r} are not downloaded; run `transpose-live weights download {name}` "
            f"(or `transpose-live weights import FILE --name {name}`)"
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

def _one_line(reason: object) -> str:
    return " ".join(str(reason).split()) or type(reason).__name__


def _stream_to(url: str, out, label: str, show: bool) -> str:
    """Copy the body of `url` into the open file `out`; return its sha256. Network errors propagate.

    label, show: the progress display's label, and whether to draw it (only once the server answers).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "transpose-live"})
    digest = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with Progress(label, total, unit="bytes", enabled=show) as bar:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise http.client.IncompleteRead(b"", total - received)
    return digest.hexdigest()


def download(name: str, progress: bool = True, url: str | None = None, force: bool = False) -> Path:
    """Fetch a registry entry into the cache (atomic, sha256-checked, strict-load-checked); return its path.

    An already cached file is verified and returned unless `force`. `url` overrides the entry's URL.
    """
    entry = get_entry(name)
    target = cached_path(entry)
    if entry.local_path is not None:
        return resolve_weights(name)  # shipped with the package: nothing to fetch
    if target.is_file() and not force:
        return resolve_weights(name)
    source = url or entry_url(entry)
    hint = f"download it elsewhere and run `transpose-live weights import FILE --name {name}`"
    _make_dir(target.parent)
    # Temp file in the same directory so os.replace is an atomic rename: readers see old or new, never half.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                sha256 = _stream_to(source, out, f"downloading {name}", progress)
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {_one_line(exc.reason)}"
            raise TransposeLiveError(f"could not download {source}: {reason}; {hint}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(exc, http.client.IncompleteRead):
                reason = f"connection closed with {exc.expected} bytes missing"
            elif isinstance(reason, TimeoutError):
                reason = f"timed out after {TIMEOUT_S:g} s"
            raise TransposeLiveError(f"could not download {source}: {_one_line(reason)}; {hint}") from None
        expected = expected_sha256(entry)
        if expected is not None and sha256 != expected:
            raise TransposeLiveError(
                f"downloaded {source} has sha256 {sha256[:12]}..., expected {expected[:12]}... as recorded "
                f"before; refusing it (if it changed on purpose: transpose-live weights import FILE --name {name})"
            )
        _check_strict(tmp, entry.preset, label=f"downloaded {source}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    # An explicit import is the user vouching for this file: it (re)pins the recorded hash.
    _record_hash(entry, sha256, f"import:{src.name}")
    return target
