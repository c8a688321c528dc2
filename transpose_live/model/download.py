"""Fetching one file over HTTP(S) into a folder: streamed, hashed, checked, then renamed into place.

What makes it safe to interrupt and to run twice at once:
- the body goes to a temp file beside the target and only an `os.replace` puts it in place, after the
  caller's check passed: a reader sees the old file or the new one, never half of one, and a failure
  (cut-off transfer, wrong hash, a file that does not load) leaves nothing behind;
- `file_lock` serialises downloads of the same name across processes (flock on a lock file), so a second
  first run waits for the first one and then finds the file cached instead of fetching it again.

Network use can be switched off for the process: TRANSPOSE_LIVE_OFFLINE=1, or the CLI's --offline
(`network_forbidden()` around the command); then `check_online` refuses before any connection is made.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from transpose_live.errors import TransposeLiveError
from transpose_live.progress import Progress

OFFLINE_ENV = "TRANSPOSE_LIVE_OFFLINE"
TIMEOUT_S = 30.0                            # per socket operation, not for the whole download
CHUNK_BYTES = 1 << 16
_FALSE_WORDS = ("", "0", "false", "no", "off")

_forbidden_depth = 0                        # open network_forbidden() blocks (the CLI's --offline)
_forbidden_guard = threading.Lock()


class DownloadCancelled(TransposeLiveError):
    """The caller's cancel event was set during a download (the window's model picker); nothing was kept."""


# ------------------------------------------------------------------------------------------ offline

def offline() -> bool:
    """True when network access is forbidden: $TRANSPOSE_LIVE_OFFLINE is set (not 0/false/no/off), or
    inside network_forbidden()."""
    return _forbidden_depth > 0 or os.environ.get(OFFLINE_ENV, "").strip().lower() not in _FALSE_WORDS


@contextlib.contextmanager
def network_forbidden(forbid: bool = True) -> Iterator[None]:
    """No downloads in this process while the block runs (when `forbid`); restored after, nesting allowed.

    Process-wide rather than per thread on purpose: the model may be loaded on a pipeline or worker thread.
    """
    global _forbidden_depth
    if not forbid:
        yield
        return
    with _forbidden_guard:
        _forbidden_depth += 1
    try:
        yield
    finally:
        with _forbidden_guard:
            _forbidden_depth -= 1


def check_online(url: str, hint: str) -> None:
    """Raise (one line naming `url` and `hint`) when network access is forbidden."""
    if offline():
        raise TransposeLiveError(f"not downloading {url}: network access is off (--offline or {OFFLINE_ENV}); "
                                 f"{hint}")


# ------------------------------------------------------------------------------------------- locking

@contextlib.contextmanager
def file_lock(path: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block; `waiting()` is called once if
    another process holds it and this one has to wait. The lock goes with the process if it dies.

    Where flock does not exist (Windows) it does not lock: the atomic rename alone still keeps the cache
    whole, two first runs then just both download."""
    try:
        import fcntl
    except ImportError:   # not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------ fetching

def _one_line(reason: object) -> str:
    return " ".join(str(reason).split()) or type(reason).__name__


def _stream_to(url: str, out: BinaryIO, label: str, show: bool,
               on_bytes: Callable[[int, int | None], None] | None,
               cancel: threading.Event | None) -> str:
    """Copy the body of `url` into the open file `out`; return its sha256. Network errors propagate.

    label, show: the progress display's label, and whether to draw it (only once the server answers).
    on_bytes(received, total): called after every chunk (total None when the server does not say).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "transpose-live"})
    digest = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with Progress(label, total, unit="bytes", enabled=show) as bar:
            while chunk := response.read(CHUNK_BYTES):
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelled(f"download of {url} cancelled")
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if on_bytes is not None:
                    on_bytes(received, total)
        if total is not None and received != total:
            raise http.client.IncompleteRead(b"", total - received)
    return digest.hexdigest()


def fetch_into(url: str, target: Path, check: Callable[[Path, str], None], hint: str, label: str,
               progress: bool = True, on_bytes: Callable[[int, int | None], None] | None = None,
               cancel: threading.Event | None = None) -> str:
    """Download `url` to `target` atomically; return the file's sha256.

    check(temp_path, sha256) runs on the complete temp file and raises to refuse it (a wrong hash, a file
    that does not load); only then is the file renamed into place. Any failure leaves `target` as it was and
    no temp file behind. Errors are one line that names `url`, followed by `hint` (how else to get the file).
    """
    check_online(url, hint)
    # Temp file in the same directory so os.replace is an atomic rename: readers see old or new, never half.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                sha256 = _stream_to(url, out, label, progress, on_bytes, cancel)
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {_one_line(exc.reason)}"
            raise TransposeLiveError(f"could not download {url}: {reason}; {hint}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            why: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(exc, http.client.IncompleteRead):
                why = f"connection closed with {exc.expected} bytes missing"
            elif isinstance(why, TimeoutError):
                why = f"timed out after {TIMEOUT_S:g} s"
            raise TransposeLiveError(f"could not download {url}: {_one_line(why)}; {hint}") from None
        check(tmp, sha256)
        os.chmod(tmp, 0o644)    # mkstemp made it private; a cache file is readable like any other
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256


__all__ = ["OFFLINE_ENV", "TIMEOUT_S", "CHUNK_BYTES", "DownloadCancelled", "offline", "network_forbidden",
           "check_online", "file_lock", "fetch_into"]
