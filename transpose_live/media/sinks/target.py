"""Where one output goes (`OutputTarget`): a regular file is written to a hidden temporary file beside it and
renamed into place when finished, so a reader never sees half a file and an unwritable path fails before any
work; "-" (stdout), a FIFO or a device (/dev/stdout) is written directly, never replaced; a `direct` file (a
live run's JSON Lines) is written in place too, a line at a time, so `tail -f` follows it."""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Any, TextIO

from transpose_live.errors import OutputClosed, TransposeLiveError

STDOUT = "-"


def is_stream_path(path: str | os.PathLike) -> bool:
    """True for "-", and for paths that are not regular files: a FIFO, a character device, anything under
    /dev or /proc (/dev/stdout is a link to the process's own stdout: renaming onto it would replace the
    system's link)."""
    text = os.fspath(path)
    if text == STDOUT:
        return True
    real = os.path.realpath(os.path.expanduser(text))
    if text.startswith(("/dev/", "/proc/")) or real.startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(real).st_mode)
    except OSError:         # does not exist yet (or cannot be looked at): a file to create
        return False


class OutputTarget:
    """Where one output goes. Regular files: a temporary file in the target's folder, renamed onto the
    target by commit() (a symlink is followed: the link stays, its file is replaced). Streams and `direct`
    files: written in place; commit() and discard() leave them as they are."""

    def __init__(self, path: str | os.PathLike, what: str, direct: bool = False):
        text = os.fspath(path)
        self.what = what
        self.stdout = text == STDOUT
        self.stream = is_stream_path(text)
        self.direct = direct or self.stream
        self.final = Path(text).expanduser()
        if self.stream:
            self.tmp = self.final
            return
        if self.final.is_symlink():
            self.final = Path(os.path.realpath(self.final))
        parent = self.final.parent
        if self.final.is_dir():
            raise TransposeLiveError(f"cannot write {what} {self.final}: it is a folder")
        if not parent.is_dir():
            raise TransposeLiveError(f"cannot write {what} {self.final}: folder {parent} does not exist")
        if self.direct:
            self.tmp = self.final
            return
        # creating the file is the only reliable test (permissions, read-only mounts, quotas); os.open
        # with 0o666 keeps the user's umask (mkstemp would leave the final file private, 0600)
        for _ in range(100):
            tmp = parent / f".{self.final.stem}.{secrets.token_hex(4)}.part{self.final.suffix}"
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise TransposeLiveError(f"cannot write {what} {self.final}: {exc.strerror}") from None
        self.tmp = tmp

    def open_text(self) -> TextIO:
        """The file to write text to (stdout itself for "-")."""
        if self.stdout:
            return sys.stdout
        try:
            return open(self.tmp, "w", encoding="utf-8")
        except OSError as exc:
            raise TransposeLiveError(f"cannot write {self.what} {self.final}: {exc.strerror}") from None

    def write_bytes(self, data: bytes) -> None:
        """The whole output at once, then commit() (images)."""
        try:
            if self.stdout:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                with open(self.tmp, "wb") as f:
                    f.write(data)
        except BrokenPipeError:
            raise OutputClosed(f"{self.what} {self.final}: closed by its reader") from None
        except OSError as exc:
            self.discard()
            raise TransposeLiveError(f"cannot write {self.what} {self.final}: {exc.strerror}") from None
        self.commit()

    def commit(self) -> None:
        if not self.direct:
            os.replace(self.tmp, self.final)

    def discard(self) -> None:
        if self.direct:
            return          # a stream, or a live file whose lines are out already: nothing to take back
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


def check_output(path: str | os.PathLike, what: str) -> None:
    """Fail now, before any work, when `path` cannot be written (leaves nothing behind)."""
    OutputTarget(path, what).discard()


def write_json(target: OutputTarget, data: Any) -> None:
    """A whole JSON document to a target ("-" included), then into place."""
    target.write_bytes((json.dumps(data, allow_nan=False) + "\n").encode())


__all__ = ["STDOUT", "OutputTarget", "is_stream_path", "check_output", "write_json"]
