"""The window's Model box offers the released models with their COCO AP and size; picking one that is not
downloaded fetches it off the GUI thread (progress and Cancel in the status bar) while the video goes on with
the old model, then reloads with it. Against a local HTTP server (helpers.serve_hub) that serves a real
R-A3 checkpoint (random values), the cache in tmp_path; offscreen Qt, the tiny model playing a small clip."""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("pytestqt")

from helpers import MB, HubHandler, checkpoint_bytes, serve_hub, synthetic_clip, wait_until  # noqa: E402

NAME = "tp_r_a3"                                   # the smallest released model
FILENAME = "tp_r_256x192_enc3_d256_h1024_mh8.pth"
TIMEOUT_S = 30.0                                   # generous: only a hang should reach it


@pytest.fixture
def qapp(monkeypatch):
    """Made after the offscreen setting (see test_gui_window.py's note on pytest-qt's own qapp)."""
    from PyQt6.QtWidgets import QApplication

    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    return QApplication.instance() or QApplication(["test"])


@pytest.fixture(scope="module")
def released() -> bytes:
    return checkpoint_bytes(NAME, 0)


@pytest.fixture(scope="module")
def server():
    with serve_hub() as url:
        yield url


@pytest.fixture
def hub_at(server, released, tmp_path, monkeypatch):
    """An empty cache in tmp_path; the registry's base URL on the local server under `/<prefix>` (set it)."""
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSPOSE_LIVE_OFFLINE", raising=False)
    monkeypatch.setattr(HubHandler, "slow_s", 0.15)           # ~3 s for the 20 MB file on /slow/
    HubHandler.files.clear()
    HubHandler.files[FILENAME] = released
    HubHandler.requests.clear()

    def point(prefix: str) -> None:
        monkeypatch.setenv("TRANSPOSE_LIVE_HUB_URL", f"{server}/{prefix}")

    point("slow")
    yield point
    HubHandler.files.clear()


@pytest.fixture
def window(qtbot, tiny_options, hub_at):
    from transpose_live.live.spec import RunSpec
    from transpose_live.ui.main_window import MainWindow

    win = MainWindow(config=RunSpec.from_options(**tiny_options, min_person_score=0.0, queue_size=1))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.fixture
def playing(window, tmp_path):
    """The window playing a 10 s clip with the tiny model (tp_m_a4), a few frames shown already."""
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=200, size=(160, 120), fps=20)
    assert window.start_source(str(clip))
    assert settle(lambda: window.frames_shown >= 3)
    return window


def settle(predicate, timeout: float = TIMEOUT_S) -> bool:
    """wait_until, with the GUI thread's events delivered between the looks (the signals are queued)."""
    from PyQt6.QtWidgets import QApplication

    def look() -> bool:
        QApplication.processEvents()
        return bool(predicate())

    return wait_until(look, timeout)


def cache_files(tmp_path) -> list[str]:
    folder = tmp_path / "home" / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def pick(window, name: str) -> None:
    """Choose `name` in the Model box as a click on its item does."""
    index = window.model_box.findData(name)
    assert index >= 0, name
    window.model_box.setCurrentIndex(index)
    window.model_box.activated.emit(index)


def messages(window) -> list[str]:
    seen: list[str] = []
    window.statusBar().messageChanged.connect(seen.append)
    return seen


def box_name(window) -> str:
    return window.model_box.currentData()


# ------------------------------------------------------------------------------------------------ menu

def test_the_menu_shows_ap_size_and_what_is_downloaded(qapp, hub_at, tmp_path, released):
    from transpose_live.model import hub
    from transpose_live.ui.model_picker import WEIGHTS_FILE, ModelPicker

    hub.checkpoints_dir().mkdir(parents=True)
    (hub.checkpoints_dir() / FILENAME).write_bytes(released)            # R-A3 is here, the others are not
    picker = ModelPicker("tp_m_a4", "cpu")
    box = picker.model_box
    texts = {box.itemData(i): box.itemText(i) for i in range(box.count())}
    size = f"{len(released) / MB:.0f} MB"                                # the cached file's own size
    assert texts[NAME] == f"{NAME} — AP 0.717 · {size} · downloaded"
    assert texts["tp_r_a4"] == "tp_r_a4 — AP 0.726 · 23 MB · download"
    assert texts["tp_h_a6"] == "tp_h_a6 — AP 0.758 · 67 MB · download"
    assert box.itemData(0) == "tp_m_a4" and box.currentData() == "tp_m_a4"   # configured, outside the registry
    assert box.itemData(box.count() - 1) == WEIGHTS_FILE
    assert set(hub.REGISTRY) <= set(texts)


# -------------------------------------------------------------------------------------------- download

def test_a_pick_downloads_while_the_video_plays_then_reloads_with_it(qtbot, playing, tmp_path, released):
    window = playing
    seen = messages(window)
    frames_at = {"start": window.frames_shown}
    # the frames shown by the last progress report (the reload after the download starts a new count)
    window.models.downloads.progressed.connect(lambda *_: frames_at.__setitem__("last", window.frames_shown))
    done: list[str] = []
    window.models.downloads.succeeded.connect(done.append)

    pick(window, NAME)
    assert window.models.downloads.name == NAME and box_name(window) == NAME
    assert settle(lambda: done == [NAME])
    # the old model played on all along: frames arrived while the file came in
    assert frames_at["last"] > frames_at["start"]
    progress = [m for m in seen if m.startswith(f"downloading {NAME}: ") and "%" in m]
    total = f"{len(released) / MB:.1f} MB"
    assert len(progress) >= 3 and all(total in m for m in progress), seen
    assert progress[-1].startswith(f"downloading {NAME}: {len(released) / MB:.1f} / {total} (100 %)")
    assert cache_files(tmp_path) == [FILENAME] and HubHandler.requests == [f"/slow/{FILENAME}"]

    # then the window reloads as for a cached pick: a new worker with R-A3, playing
    assert window.config.model == NAME and window.config.weights is None
    assert settle(lambda: window.models.running == NAME and window.frames_shown >= 2)
    assert NAME in window.model_label.text()
    assert window.model_box.currentText() == f"{NAME} — AP 0.717 · {len(released) / MB:.0f} MB · downloaded"
    assert not window.models.status.isVisible()


def test_cancel_mid_download_keeps_nothing_and_the_old_model(qtbot, playing, tmp_path):
    window = playing
    pick(window, NAME)
    status = window.models.status
    assert settle(lambda: status.progress.value() >= 10)                 # ~2 MB in
    assert status.isVisible() and status.escape_action.isEnabled()
    status.cancel_button.click()
    assert window.statusBar().currentMessage().startswith("download cancelled")
    assert box_name(window) == "tp_m_a4" and window.models.downloads.name is None
    assert not status.isVisible() and not status.escape_action.isEnabled()
    assert settle(lambda: not window.models.downloads.busy)              # its thread saw the cancel
    assert cache_files(tmp_path) == []                                   # no file, no temp file
    shown = window.frames_shown
    assert settle(lambda: window.frames_shown > shown + 2)               # the old model plays on
    assert window.models.running == "tp_m_a4" and window.config.model == "tp_m_a4"


def test_a_server_error_is_one_line_and_keeps_the_old_model(qtbot, playing, hub_at, tmp_path):
    window = playing
    hub_at("fail")
    pick(window, NAME)
    assert settle(lambda: window.models.downloads.name is None)
    message = window.statusBar().currentMessage()
    assert message.startswith(f"download of {NAME} failed: could not download ") and "HTTP 500" in message
    assert "\n" not in message
    assert box_name(window) == "tp_m_a4" and window.config.model == "tp_m_a4"
    assert cache_files(tmp_path) == []
    shown = window.frames_shown
    assert settle(lambda: window.frames_shown > shown + 2) and window.models.running == "tp_m_a4"


def test_offline_refuses_without_touching_the_network(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSPOSE_LIVE_OFFLINE", "1")
    pick(window, NAME)
    assert settle(lambda: window.models.downloads.name is None)
    message = window.statusBar().currentMessage()
    assert message.startswith(f"download of {NAME} failed: not downloading ") and "network access is off" in message
    assert HubHandler.requests == [] and cache_files(tmp_path) == [] and box_name(window) == "tp_m_a4"


def test_another_pick_or_escape_cancels_and_closing_does_not_wait_for_it(qtbot, window, tmp_path):
    downloads = window.models.downloads
    pick(window, NAME)
    assert settle(lambda: window.models.status.progress.value() >= 5)
    pick(window, "tp_m_a4")                                  # the newest pick wins: R-A3's download stops
    assert downloads.name is None and box_name(window) == "tp_m_a4" and window.config.model == "tp_m_a4"
    assert settle(lambda: not downloads.busy) and cache_files(tmp_path) == []

    pick(window, NAME)                                       # again: Escape cancels too
    assert settle(lambda: window.models.status.progress.value() >= 5)
    window.models.status.escape_action.trigger()
    assert downloads.name is None and window.statusBar().currentMessage().startswith("download cancelled")
    assert settle(lambda: not downloads.busy) and cache_files(tmp_path) == []

    pick(window, NAME)                                       # again, then close the window mid-download
    assert settle(lambda: window.models.status.progress.value() >= 5)
    began = time.monotonic()
    window.close()
    closed_in = time.monotonic() - began
    assert not downloads.busy and cache_files(tmp_path) == [], closed_in
