"""The desktop window driven as a user would, with the real Pipeline and the tiny random model (pytest-qt,
offscreen): playback (play, pause, seek, step), the attention inspector, keeping screenshots, recordings and
poses, errors that leave the window usable, and a UI thread that is never blocked.

The clip's frame i has a 16 px wide block at x = 4 i (tests/conftest.py synthetic_clip), so which frame is
on view is read off the rendered pixels."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PyQt6.QtCore import Qt, QTimer  # noqa: E402
from PyQt6.QtGui import QImage  # noqa: E402

W, H, FPS, FRAMES = 160, 120, 20, 40
MAX_UI_GAP_S = 0.050


@pytest.fixture
def qapp(monkeypatch):
    """pytest-qt's own qapp is made before conftest's offscreen setting (a session fixture): Qt would try
    xcb, which aborts on machines without a display. This one is made after it."""
    from PyQt6.QtWidgets import QApplication

    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    return QApplication.instance() or QApplication(["test"])


@pytest.fixture
def tiny_spec(tiny_options):
    from transpose_live.live.spec import RunSpec

    return RunSpec.from_options(**tiny_options, min_person_score=0.0)   # its random joint scores are low


@pytest.fixture
def clip(tmp_path):
    from helpers import synthetic_clip

    return synthetic_clip(tmp_path / "clip.mp4", frames=FRAMES, size=(W, H), fps=FPS)


@pytest.fixture
def window(qtbot, tiny_spec):
    from transpose_live.ui.main_window import MainWindow

    win = MainWindow(config=tiny_spec.replace(queue_size=1))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def pixels(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB copy of a QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    data = np.frombuffer(rgb.constBits().asstring(stride * h), np.uint8).reshape(h, stride)
    return data[:, :3 * w].reshape(h, w, 3).copy()


def frame_on_view(window) -> int:
    """Which clip frame the view shows, from its pixels: the block's left edge / 4."""
    rgb = pixels(window.video.image).astype(int)
    median = np.median(rgb, axis=0)                                    # (W, 3) per column
    cols = np.flatnonzero((median[:, 0] > 150) & (abs(median[:, 1] - 120) < 40))
    assert cols.size, "no block in the frame on view"
    return int(round(cols.min() / 4))


def shown_time(window) -> float:
    return window._result.timestamp


class GapWatch:
    """A 5 ms QTimer in the UI thread: the longest gap between its ticks is the longest the thread was busy."""

    def __init__(self):
        self.last = None
        self.worst = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.timer.start(5)

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last)
        self.last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def test_play_pause_step_seek_and_resume(qtbot, window, clip):
    window.set_speed(1.0)
    assert window.start_source(str(clip))
    qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=20000)
    assert window.playback.slider.maximum() == pytest.approx(FRAMES / FPS * 1000, abs=60)   # the file's length

    window.play_pause()                                    # Space
    assert window.paused
    qtbot.wait(300)                                        # frames already on their way still arrive
    held = window.frames_shown
    qtbot.wait(400)
    assert window.frames_shown == held                     # paused: nothing new
    here = frame_on_view(window)
    assert here == round(shown_time(window) * FPS)

    window.step(1)                                         # →
    qtbot.waitUntil(lambda: window.frames_shown == held + 1, timeout=10000)
    assert frame_on_view(window) == here + 1
    window.step(-1)                                        # ←: that frame again, through the model again
    qtbot.waitUntil(lambda: frame_on_view(window) == here, timeout=10000)
    assert window.paused and shown_time(window) == pytest.approx(here / FPS, abs=1e-3)

    window.seek(1.5)                                       # the slider
    qtbot.waitUntil(lambda: frame_on_view(window) == 30, timeout=10000)
    assert window.playback.slider.value() == 1500 and "0:01.5" in window.playback.time_label.text()
    qtbot.wait(300)
    assert frame_on_view(window) == 30                     # still paused after the seek

    window.stop()                                          # Stop then Start goes on, not from the beginning
    assert not window.running
    window.play_pause()                                    # Space on a stopped file: Start
    qtbot.waitUntil(lambda: window.running and window.frames_shown >= 1, timeout=20000)
    assert frame_on_view(window) >= 31
    window.play_pause()                                    # it went on paused (as it was): play
    assert not window.paused
    window.set_speed(4.0)
    qtbot.waitUntil(lambda: not window.running, timeout=20000)
    assert frame_on_view(window) == FRAMES - 1 and window.last_error is None


def test_inspector_person_joint_layer_and_overlay(qtbot, window, clip):
    window.start_source(str(clip), paused=True)           # the first frame, held
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=20000)
    plain = pixels(window.video.image)
    assert frame_on_view(window) == 0

    window.attention_action.trigger()                     # A: the pipeline's own overlay, all joints
    window.inspector_action.trigger()                     # I: the inspector (one person, every layer)
    assert window.view.overlay and window.view.strip and window.inspector_dock.isVisible()
    qtbot.waitUntil(lambda: window.inspector.strip_label.pixmap() is not None
                    and not window.inspector.strip_label.pixmap().isNull(), timeout=20000)
    qtbot.waitUntil(lambda: not np.array_equal(pixels(window.video.image), plain), timeout=10000)
    overlaid = pixels(window.video.image)
    assert window._result.index == 0                      # the same frame, drawn again with the maps
    assert np.abs(overlaid.astype(int) - plain).mean() > 3   # the overlay covers the (whole-frame) person

    strip = window.inspector.strip_label.pixmap()
    layers = window.inspector.layer_spin.maximum()
    assert layers == 4 and strip.height() == 150          # tp_m_a4: 4 encoder layers, one tile each
    key = window._result.poses[0].track_id                 # tracked: the person is named by its track id
    assert key is not None and f"person {key} " in window.inspector.person_label.text()

    # a click on the person selects them; Tab cycles (one person here: the same one)
    target = window.video.image_rect().center()
    qtbot.mouseClick(window.video, Qt.MouseButton.LeftButton, pos=target)
    assert window.view.person == key
    window.next_person_action.trigger()
    assert window.view.person == key

    window.inspector.joint_list.setCurrentRow(10)         # "left wrist"
    assert window.view.joint == 9
    before = pixels(window.video.image)
    qtbot.waitUntil(lambda: not np.array_equal(pixels(window.video.image), before), timeout=10000)
    wrist_last = pixels(window.video.image)
    window.inspector.layer_spin.setValue(1)
    assert window.view.layer == 1
    qtbot.waitUntil(lambda: not np.array_equal(pixels(window.video.image), wrist_last), timeout=10000)
    assert "layer 1" in window.inspector.person_label.text()
    window.inspector.layer_spin.setValue(layers)          # the last again: "last" (None)
    assert window.view.layer is None
    window.inspector.mode_box.setCurrentIndex(1)          # affected areas: the column of the map
    assert window.view.affected

    window.attention_action.trigger()                     # A off: no maps at all, the plain frame again
    assert not window.view.overlay and not window.view.inspects
    qtbot.waitUntil(lambda: np.array_equal(pixels(window.video.image), plain), timeout=10000)


def test_screenshot_recording_and_pose_export(qtbot, window, clip, tmp_path):
    import av

    window.set_speed(1.0)
    window.attention_action.trigger()
    window.start_source(str(clip))
    qtbot.waitUntil(lambda: window.frames_shown >= 2, timeout=20000)
    window.start_recording(tmp_path / "view.mp4", fps=FPS)
    qtbot.wait(2000)                                       # record two seconds
    finishing = window.stop_recording()
    finishing.join(10)
    qtbot.waitUntil(lambda: not window.running, timeout=20000)

    with av.open(str(tmp_path / "view.mp4")) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) >= 10 and frames[0].shape == (H, W, 3)
    # the recording is the annotated view: not the plain clip (the attention overlay is drawn in it)
    assert frames[0].std() > 10

    shot = window.save_screenshot(tmp_path / "win.png")
    picture = QImage(str(shot))
    assert (picture.width(), picture.height()) == (window.width(), window.height())
    grid = pixels(picture)
    assert len(np.unique(grid.reshape(-1, 3), axis=0)) > 50          # a real picture, not one colour

    lines = window.export_poses(tmp_path / "poses.jsonl")
    records = [json.loads(line) for line in (tmp_path / "poses.jsonl").read_text().splitlines()]
    assert lines == len(records) == FRAMES                 # every frame of the session, once
    assert [r["frame"] for r in records] == list(range(FRAMES))
    assert set(records[0]) == {"frame", "timestamp", "persons"} and len(records[0]["persons"]) == 1


def test_shortcuts_work_whatever_widget_has_focus(qtbot, window, clip):
    window.start_source(str(clip), paused=True)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=20000)
    for widget in (window.video, window.playback.speed_box, window.inspector.joint_list, window.model_box):
        widget.setFocus()
        before = window.view.overlay
        qtbot.keyClick(widget, Qt.Key.Key_A)
        assert window.view.overlay is not before, type(widget).__name__
    window.camera_spin.setFocus()
    shown = window.frames_shown
    qtbot.keyClick(window.camera_spin, Qt.Key.Key_Right)   # → steps even from the camera box
    qtbot.waitUntil(lambda: window.frames_shown == shown + 1, timeout=10000)
    assert window.camera_spin.focusPolicy() == Qt.FocusPolicy.ClickFocus   # it never holds the keys from start


def test_ui_thread_never_blocked_playing_switching_stopping_reloading(qtbot, window, clip, tmp_path,
                                                                      tiny_options):
    from helpers import synthetic_clip

    other = synthetic_clip(tmp_path / "other.mp4", frames=FRAMES, size=(W, H), fps=FPS)
    qtbot.waitExposed(window)
    qtbot.wait(300)                  # the window's first paint (fonts load) is not what is measured here
    watch = GapWatch()
    window.set_speed(None)
    window.start_source(str(clip))
    qtbot.waitUntil(lambda: window.frames_shown >= 5, timeout=20000)            # playing
    window.start_source(str(other))                                            # switching
    qtbot.waitUntil(lambda: window.frames_shown >= 5, timeout=20000)
    window.set_model(device="cpu")                                             # the model reloads
    qtbot.waitUntil(lambda: window.frames_shown >= 5, timeout=20000)
    window.stop()                                                              # stopping
    qtbot.waitUntil(lambda: window.retired == 0, timeout=20000)
    worst = watch.stop()
    print(f"longest UI-thread gap: {1000 * worst:.1f} ms")
    assert worst < MAX_UI_GAP_S, f"the UI thread was blocked {1000 * worst:.0f} ms"


def test_broken_sources_show_a_message_and_the_window_stays_usable(qtbot, window, clip, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    data = clip.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    window.start_source(str(truncated))
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=20000)
    assert "truncated.mp4" in window.last_error and window._error_box.isVisible()
    assert not window._error_box.isModal()

    cut = tmp_path / "cut.mkv"                                            # the header intact, the tail gone
    from helpers import synthetic_clip

    data = synthetic_clip(tmp_path / "whole.mkv", frames=FRAMES, size=(W, H), fps=FPS).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    window.set_speed(None)
    window.start_source(str(cut))
    qtbot.waitUntil(lambda: window.last_error is not None and not window.running, timeout=20000)
    assert "cut.mkv ends early (truncated or damaged?)" in window.last_error and window.frames_shown >= 3

    window.start_source("rtsp://127.0.0.1:9/nothing-here")              # a dead stream
    qtbot.waitUntil(lambda: window.last_error is not None and not window.running, timeout=30000)
    assert "127.0.0.1" in window.last_error
    assert window.statusBar().currentMessage().startswith("error:")

    window.start_source(str(clip))                                       # still usable
    qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=20000)
    assert window.last_error is None


def test_a_live_stream_hides_the_file_controls_and_shows_its_reconnection(qtbot, window):
    """A real RTSP camera (tests/rtsp_server.py): no seek, steps or speed; the server dies and comes back:
    the status bar says the stream is reconnecting, then frames flow again and the line clears."""
    import threading

    import rtsp_server

    rtsp_server.require()
    with rtsp_server.RtspServer(paths=("/cam",)) as server:
        window.start_source(server.url("/cam"))
        qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=30000)
        assert window.playback.play_button.isVisible() and not window.playback.slider.isVisible()
        assert not window.playback.speed_box.isVisible() and not window.playback.back_button.isVisible()
        window.play_pause()                                  # Space does not pause a live source
        assert not window.paused
        server.kill()
        threading.Timer(1.5, server.start).start()
        qtbot.waitUntil(lambda: "reconnecting" in window.state_label.text(), timeout=20000)
        shown = window.frames_shown
        qtbot.waitUntil(lambda: window.frames_shown > shown + 3 and window.state_label.text() == "",
                        timeout=30000)
        assert window.last_error is None and window.running
        window.stop()
