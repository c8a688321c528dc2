"""The events the web view keeps: records in SQLite (`<event-dir>/events.sqlite3`, so a restart shows the past
again and the page can filter), each event's snapshot as `<event-dir>/snapshots/<id>.jpg` and its clip, once
cut, as `<event-dir>/clips/<id>.mp4`. File names come from the integer id only, never from a request.

Retention: events older than `keep_days`, then the oldest while snapshots + clips + the database take more
than `keep_mb`, are deleted with their files (prune()). Ids are never reused (AUTOINCREMENT), so a file
left by a deleted event can never be served for a new one.

A full or read-only disk must not stop the monitoring: every write failure is one warning (per outage, an
info line when writing works again) and the event goes on to the live pages without being kept; an event
folder that cannot be opened at all gives a database in memory for this run.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DB_NAME = "events.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT NOT NULL,
    type TEXT NOT NULL,
    epoch REAL NOT NULL,                 -- wall clock (seconds since 1970) when the event reached the view
    timestamp REAL,                      -- the event's own time: seconds of its camera's stream
    track_id INTEGER,
    record TEXT NOT NULL,                -- the event as the pipeline emitted it (JSON)
    recorded INTEGER NOT NULL DEFAULT 0, -- its camera was recording: a clip can be cut
    snapshot_bytes INTEGER NOT NULL DEFAULT 0,
    clip_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (epoch);
CREATE INDEX IF NOT EXISTS events_by_camera ON events (camera, epoch);
"""
_COLUMNS = "id, camera, type, epoch, timestamp, track_id, record, recorded, snapshot_bytes, clip_bytes"


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventStore:
    """Events on disk (or in memory when the folder cannot be used). Thread-safe: one connection, one lock."""

    def __init__(self, folder: str | os.PathLike, keep_days: float, keep_mb: float):
        self.folder = Path(folder).expanduser()
        self.keep_s = float(keep_days) * 86400.0
        self.keep_bytes = int(float(keep_mb) * 1024 * 1024)
        self._lock = threading.Lock()
        self._failing = False
        self._scratch: tempfile.TemporaryDirectory | None = None
        try:
            for sub in ("snapshots", "clips"):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
            self._db = self._open(str(self.folder / DB_NAME))
            self.persistent = True
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot keep events in %s (%s): this run's events are kept in memory only, without "
                        "snapshots; monitoring goes on", self.folder, _why(exc))
            self._scratch = tempfile.TemporaryDirectory(prefix="transpose-live-events-")
            self.folder = Path(self._scratch.name)
            (self.folder / "clips").mkdir()
            self._db = self._open(":memory:")
            self.persistent = False

    @staticmethod
    def _open(where: str) -> sqlite3.Connection:
        db = sqlite3.connect(where, check_same_thread=False, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")    # readers (the pages) never wait for the writer
            # no fsync per event (0.4 ms instead of 14 a commit here): a crash of the process loses nothing, a
            # power cut at most the last events; the database is never corrupted either way
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            pass
        db.executescript(_SCHEMA)
        db.commit()
        return db

    # ------------------------------------------------------------------------------------------- writing

    def add(self, camera: str, record: dict, epoch: float, snapshot: bytes | None = None,
            recorded: bool = False) -> int | None:
        """Keep one event (and its JPEG snapshot); its id, or None when it could not be written."""
        track = record.get("id")
        values = (camera, str(record.get("event", "")), float(epoch), _float(record.get("timestamp")),
                  int(track) if isinstance(track, int) else None, json.dumps(record, default=str), int(recorded))
        keep_snapshot = bool(snapshot) and self.persistent
        lost: OSError | None = None
        try:
            with self._lock:      # the row and its snapshot appear together: nobody reads one without the other
                cursor = self._db.execute("INSERT INTO events (camera, type, epoch, timestamp, track_id, record, "
                                          "recorded, snapshot_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                          (*values, len(snapshot or b"") if keep_snapshot else 0))
                event_id = int(cursor.lastrowid or 0)
                if keep_snapshot:
                    try:
                        _write_atomic(self.snapshot_file(event_id), snapshot or b"")
                    except OSError as exc:
                        lost = exc
                        self._db.execute("UPDATE events SET snapshot_bytes = 0 WHERE id = ?", (event_id,))
                self._db.commit()
        except sqlite3.Error as exc:
            self._rollback()
            self._failed("cannot keep an event", exc)
            return None
        if lost is not None:
            self._failed(f"cannot keep the snapshot of event {event_id}", lost)
            return event_id
        self._recovered()
        return event_id

    def set_bytes(self, event_id: int, column: str, size: int) -> None:
        if column not in ("snapshot_bytes", "clip_bytes"):
            raise ValueError(column)
        try:
            with self._lock:
                self._db.execute(f"UPDATE events SET {column} = ? WHERE id = ?", (int(size), int(event_id)))
                self._db.commit()
        except sqlite3.Error as exc:
            self._rollback()
            self._failed("cannot update an event", exc)

    def prune(self, now: float | None = None) -> int:
        """Delete the events (and their files) past keep_days, then the oldest while over keep_mb; how many."""
        now = time.time() if now is None else now
        removed = 0
        try:
            with self._lock:
                old = self._db.execute("SELECT id FROM events WHERE epoch < ?", (now - self.keep_s,)).fetchall()
            removed += self._delete([row[0] for row in old])
            with self._lock:
                used = self._db.execute("SELECT COALESCE(SUM(snapshot_bytes + clip_bytes), 0) FROM events"
                                        ).fetchone()[0] + self._db_bytes()
                excess, doomed = used - self.keep_bytes, []
                rows = self._db.execute("SELECT id, snapshot_bytes + clip_bytes FROM events ORDER BY id")
                while excess > 0 and (row := rows.fetchone()) is not None:
                    doomed.append(row[0])
                    excess -= row[1] + 200          # ~ a row's share of the database
            removed += self._delete(doomed)
        except sqlite3.Error as exc:
            self._rollback()
            self._failed("cannot prune old events", exc)
        if removed:
            log.info("removed %d old event(s) from %s (keeping %g days, %g MB)", removed, self.folder,
                     self.keep_s / 86400, self.keep_bytes / 2**20)
        return removed

    def _delete(self, ids: list[int]) -> int:
        if not ids:
            return 0
        for event_id in ids:
            for path in (self.snapshot_file(event_id), self.clip_file(event_id)):
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    log.debug("cannot remove %s: %s", path, exc)
        with self._lock:
            self._db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
            self._db.commit()
        return len(ids)

    def _db_bytes(self) -> int:
        """The database's own size (its pages; the write-ahead log is folded back in at checkpoints)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(self._db.execute("PRAGMA page_size").fetchone()[0])

    # ------------------------------------------------------------------------------------------- reading

    def get(self, event_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM events WHERE id = ?", (int(event_id),)).fetchone()
        return _event(row) if row else None

    def query(self, camera: str | None = None, kind: str | None = None, since: float | None = None,
              before_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Events newest first, filtered by camera, type, wall-clock time (epoch >= since) and id (< before_id)."""
        where, args = [], []
        for clause, value in (("camera = ?", camera), ("type = ?", kind), ("epoch >= ?", since),
                              ("id < ?", before_id)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_event(row) for row in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """(camera, type) -> events kept."""
        with self._lock:
            rows = self._db.execute("SELECT camera, type, COUNT(*) FROM events GROUP BY camera, type").fetchall()
        return {(camera, kind): n for camera, kind, n in rows}

    def snapshot_file(self, event_id: int) -> Path:
        return self.folder / "snapshots" / f"{int(event_id)}.jpg"

    def clip_file(self, event_id: int) -> Path:
        return self.folder / "clips" / f"{int(event_id)}.mp4"

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    # ------------------------------------------------------------------------------------------- failures

    def _rollback(self) -> None:
        try:
            with self._lock:
                self._db.rollback()
        except sqlite3.Error:
            pass

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning("event store %s: %s (%s); monitoring goes on, events still reach the live pages",
                        self.folder, what, _why(exc))

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("event store %s: writing again", self.folder)


def _event(row: tuple) -> dict[str, Any]:
    event_id, camera, kind, epoch, timestamp, track_id, record, recorded, snapshot_bytes, _clip = row
    return {"id": event_id, "camera": camera, "type": kind, "time": iso_time(epoch), "epoch": epoch,
            "timestamp": timestamp, "track_id": track_id, "record": json.loads(record),
            "snapshot": f"/api/events/{event_id}/snapshot.jpg" if snapshot_bytes else None,
            "clip": f"/api/events/{event_id}/clip.mp4" if recorded else None}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _float(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


__all__ = ["EventStore", "iso_time", "DB_NAME"]
