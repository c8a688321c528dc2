"""The one progress display: plain lines off a terminal, a rich bar on one, notes beside it, thread-safe counts."""

from __future__ import annotations

import io
import logging
import re
import threading
from types import SimpleNamespace

import pytest

from transpose_live import progress as progress_mod
from transpose_live.progress import Progress, WarningsToProgress, clock

MB = 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture()
def now(monkeypatch):
    """A settable clock in place of time.monotonic inside transpose_live.progress."""
    t = [0.0]
    monkeypatch.setattr(progress_mod, "time", SimpleNamespace(monotonic=lambda: t[0]))
    return t


def test_clock():
    assert clock(0) == "0:00" and clock(75.4) == "1:15" and clock(3725) == "1:02:05"


def test_plain_lines_count_rate_and_eta(now):
    out = io.StringIO()
    bar = Progress("video", total=100, unit="frames", stream=out, interval=10)
    now[0] = 5.0
    bar.update(10)
    assert out.getvalue() == ""                       # not yet: one line per interval
    now[0] = 10.0
    bar.update(10, status="2 persons")
    assert out.getvalue() == "video: 20/100 frames (20%)  2.0 frames/s  ETA 0:40  2 persons\n"
    bar.close()
    bar.close()                                       # closing twice writes the last line once
    bar.update(5)                                     # after close: ignored
    assert out.getvalue().splitlines()[1:] == ["video: 20/100 frames (20%)  2.0 frames/s  ETA 0:40  2 persons"]


def test_plain_bytes_and_time_budget_lines(now):
    out = io.StringIO()
    with Progress("downloading tp_r_a4", total=2 * MB, unit="bytes", stream=out, interval=0) as bar:
        now[0] = 1.0
        bar.update(MB)
    assert out.getvalue().splitlines()[0] == "downloading tp_r_a4: 1.0/2.0 MB (50%)  1.0 MB/s  ETA 0:01"

    out = io.StringIO()
    with Progress("train", total=None, unit="s", stream=out, interval=0) as bar:
        bar.set(12.0, status="epoch 1/3 step 40 loss 0.001")
        bar.set(30.0)                                  # absolute, not added
    assert out.getvalue().splitlines() == ["train: 12 s  epoch 1/3 step 40 loss 0.001",
                                           "train: 30 s  epoch 1/3 step 40 loss 0.001",
                                           "train: 30 s  epoch 1/3 step 40 loss 0.001"]


def test_disabled_writes_nothing_but_still_counts(now):
    out = io.StringIO()
    bar = Progress("eval", total=10, unit="images", stream=out, enabled=False, interval=0)
    for _ in range(4):
        bar.update()
    bar.close()
    assert out.getvalue() == "" and bar.done == 4


def test_notes_and_library_warnings_are_lines(now):
    out = io.StringIO()
    with Progress("video", total=None, stream=out, interval=100) as bar:
        bar.note("camera reconnected")
        with WarningsToProgress(bar):
            logging.getLogger("transpose_live.media.sources").warning("truncated file at %d s", 12)
        logging.getLogger("transpose_live.media.sources").warning("after the block")
    lines = out.getvalue().splitlines()
    assert lines == ["camera reconnected", "warning: truncated file at 12 s"]   # nothing counted: no last line


def test_rich_bar_on_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")              # room for every column whatever runs the tests
    tty = FakeTTY()
    with Progress("video", total=10, unit="frames", stream=tty) as bar:
        assert bar._rich is not None                   # a terminal gets the rich bar, not plain lines
        bar.update(3, status="2 persons")
        bar.note("warning: camera hiccup")
    text = ANSI.sub("", tty.getvalue())
    assert "warning: camera hiccup" in text
    final = text.rstrip().splitlines()[-1]
    assert "video" in final and "3/10" in final and "30%" in final and "2 persons" in final


def test_rich_bar_for_downloads_shows_sizes(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    tty = FakeTTY()
    with Progress("downloading tiny", total=4 * MB, unit="bytes", stream=tty) as bar:
        bar.update(MB)
    final = ANSI.sub("", tty.getvalue()).rstrip().splitlines()[-1]
    assert "downloading tiny" in final and "1.0/4.2 MB" in final    # rich's DownloadColumn: decimal MB


def test_concurrent_updates_count_exactly_and_lines_stay_whole():
    out = io.StringIO()
    bar = Progress("video", total=None, stream=out, interval=0)       # a line on every update
    threads = [threading.Thread(target=lambda: [bar.update(1) for _ in range(500)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    assert bar.done == 4000
    lines = out.getvalue().splitlines()
    assert len(lines) == 4001
    assert all(re.fullmatch(r"video: \d+ frames  [\d.]+ frames/s", line) for line in lines)
    assert lines[-1].startswith("video: 4000 frames")
