"""The PyQt6 window's parts, offscreen: QImage conversion, labels, the display and platform checks, and the
real worker (the tiny model through load_runner and the real Pipeline) writing its outputs across toggles.
The window itself, driven as a user would, is in tests/test_gui_window.py."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError

QtCore = pytest.importorskip("PyQt6.QtCore")
from PyQt6.QtGui import QColor  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

W, H = 160, 120


@pytest.fixture
def qapp():
    # function scope: conftest's autouse fixture has set QT_QPA_PLATFORM (offscreen) by now
    return QApplication.instance() or QApplication(["test"])


def wait_until(app, predicate, timeout=5.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if predicate():
            return True
        time.sleep(0.005)
    app.processEvents()
    return predicate()


def test_bgr_to_qimage_copies_and_keeps_colours():
    from transpose_live.ui.images import bgr_to_qimage

    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 2] = 255                       # BGR red
    q = bgr_to_qimage(image)
    image[:] = 0                              # the QImage owns its pixels
    assert (q.width(), q.height()) == (6, 4)
    assert QColor(q.pixel(3, 2)).getRgb()[:3] == (255, 0, 0)
    assert QColor(bgr_to_qimage(np.full((2, 2), 7, np.uint8)).pixel(0, 0)).getRgb()[:3] == (7, 7, 7)
    with pytest.raises(TransposeLiveError, match="uint8"):
        bgr_to_qimage(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(TransposeLiveError, match="shape"):
        bgr_to_qimage(np.zeros((2, 2, 4), np.uint8))


def test_run_app_refuses_without_display(monkeypatch):
    from transpose_live.ui import app as ui_app

    monkeypatch.setattr(ui_app, "_qt_running", lambda: False)
    monkeypatch.setattr(ui_app.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(TransposeLiveError, match="no display"):
        ui_app.check_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    ui_app.check_display()                      # headless platforms need no display


def test_platform_check_names_the_missing_libraries_and_the_apt_line(monkeypatch):
    from transpose_live.ui import app as ui_app

    monkeypatch.setattr(ui_app, "_qt_running", lambda: False)
    monkeypatch.setattr(ui_app.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(ui_app, "missing_platform_libraries",
                        lambda plugin="xcb": ["libxcb-icccm.so.4", "libxkbcommon-x11.so.0", "libEGL.so.1"])
    with pytest.raises(TransposeLiveError) as caught:
        ui_app.check_platform()
    line = str(caught.value)
    assert "\n" not in line and "libxcb-icccm.so.4" in line
    assert "sudo apt-get install libegl1 libxcb-icccm4 libxkbcommon-x11-0" in line
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    ui_app.check_platform()                     # offscreen needs none of them
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("DISPLAY")
    ui_app.check_platform()                     # no X display named: check_display's message instead
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(ui_app, "missing_platform_libraries", lambda plugin="xcb": [])
    ui_app.check_platform()


def test_missing_platform_libraries_reads_the_real_plugin():
    """ldd on PyQt6's own xcb plugin: a list of library file names (empty where all are installed)."""
    from transpose_live.ui.app import _qt_platform_plugin, missing_platform_libraries

    plugin = _qt_platform_plugin("xcb")
    if plugin is None:
        pytest.skip("this PyQt6 has no xcb platform plugin")
    missing = missing_platform_libraries("xcb")
    assert all(".so" in lib and "/" not in lib for lib in missing)


def test_source_labels():
    from transpose_live.ui.sources import source_label

    assert source_label(0) == "camera 0"
    assert source_label("/videos/clip.mp4") == "clip.mp4"
    assert "secret" not in source_label("rtsp://user:secret@cam/stream")
    assert source_label(None) == "source"


def test_default_config_is_the_default_run_spec(qapp):
    from transpose_live.live.spec import RunSpec
    from transpose_live.ui.main_window import MainWindow

    window = MainWindow()
    try:
        assert window.config == RunSpec()
        assert window.model_label.text() == "model default · auto"
    finally:
        window.close()


# ------------------------------------------------------------------ the real pipeline, tiny random model

@pytest.fixture
def tiny_spec(tiny_options):
    from transpose_live.live.spec import RunSpec

    return RunSpec.from_options(**tiny_options, min_person_score=0.0)   # its random joint scores are low


@pytest.fixture
def clip(tmp_path):
    from helpers import synthetic_clip

    return synthetic_clip(tmp_path / "clip.mp4", frames=12, size=(W, H), fps=20)


def counting_jsonl(path):
    """A real JsonlWriter that counts its close() calls."""
    from transpose_live.media.sinks import JsonlWriter

    class CountingJsonl(JsonlWriter):
        closes = 0

        def close(self):
            self.closes += 1
            super().close()

    return CountingJsonl(path)


def read_jsonl(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_real_worker_writes_its_sinks_across_toggles_and_a_seek_and_closes_them_once(qapp, tiny_spec, clip,
                                                                                     tmp_path):
    """The default factory (the tiny model loaded through load_runner) plays a clip into a real JsonlWriter;
    smoothing and attention are toggled live and a seek rebuilds the pipeline on the reopened file (the model
    is reused). The writer is closed exactly once, at the end."""
    from transpose_live.ui.pipeline_factory import real_pipeline
    from transpose_live.ui.threads import launch, shutdown
    from transpose_live.ui.worker import PipelineWorker

    built = []

    def counting(source, config, **kwargs):
        built.append(real_pipeline(source, config, **kwargs))
        return built[-1]

    path = tmp_path / "poses.jsonl"
    writer = counting_jsonl(path)
    worker = PipelineWorker(str(clip), tiny_spec.replace(queue_size=1), sinks=[writer], pipeline_factory=counting,
                            speed=None)
    shown, stats, infos = [], [], []
    worker.frame_ready.connect(lambda image, result: shown.append(result))
    worker.stats.connect(stats.append)
    worker.info.connect(infos.append)
    thread = launch(worker)
    try:
        assert wait_until(qapp, lambda: len(shown) >= 3, timeout=20)
        worker.set_smooth(False)
        worker.set_attention(True)
        worker.seek(0.3)
        assert wait_until(qapp, lambda: not worker.running, timeout=20)
    finally:
        assert shutdown(worker, thread)
    wait_until(qapp, lambda: False, timeout=0.05)      # the last queued signals
    assert writer.closes == 1
    times = [r.timestamp for r in shown]
    assert pytest.approx(0.3, abs=1e-3) in times         # the seek's frame
    assert times[-1] == pytest.approx(11 / 20, abs=1e-3)   # on to the end of the clip
    assert [info["model"] for info in infos] == ["tp_m_a4"] * len(built) and len(built) == 2
    assert built[0].estimator is built[1].estimator      # the model loaded once
    assert built[1].spec.smooth is False and built[1].spec.attention is True
    assert shown[0].poses[0].attention is None         # attention maps only after the toggle
    assert shown[-1].poses[0].attention is not None
    assert len(read_jsonl(path)) >= stats[-1]["frames"] >= len(shown)   # the sink also saw frames a seek dropped
    assert worker.ended


def test_window_plays_a_file_with_the_real_model(qapp, tiny_spec, clip, tmp_path):
    """MainWindow with no factory given: the real pipeline and model; A turns the attention maps on live,
    the first run's outputs are written and finished, and the window ends with no thread behind."""
    from transpose_live.ui.main_window import MainWindow

    path = tmp_path / "poses.jsonl"
    writer = counting_jsonl(path)
    # one frame per queue: the stages run at most a few frames ahead, so frames after the A key exist
    window = MainWindow(config=tiny_spec.replace(queue_size=1), sinks=[writer])
    window.show()
    shown = []
    try:
        assert window.start_source(str(clip))
        window.worker.frame_ready.connect(lambda image, result: shown.append(result))
        assert wait_until(qapp, lambda: window.frames_shown >= 2, timeout=20)
        window.attention_action.trigger()             # what the A key does
        assert wait_until(qapp, lambda: not window.running, timeout=20)
        assert window.last_error is None
        assert window.model_label.text() == "model tp_m_a4 · cpu"
        assert window.persons_label.text() == "persons 1"
        assert f"clip.mp4 ({W}x{H})" in window.windowTitle()
        img = window.video.image                      # the last frame stays on view: the clip's block in it
        assert img is not None and (img.width(), img.height()) == (W, H)
        assert any(QColor(img.pixel(x, H // 2)).getRgb()[:3] != (0, 0, 0) for x in range(W))
    finally:
        window.close()
    assert writer.closes == 1
    assert len(read_jsonl(path)) >= len(shown) >= 2
    assert shown[0].poses[0].attention is None and shown[-1].poses[0].attention is not None
    assert not [t for t in threading.enumerate() if t.name.startswith("pipeline-")]


def test_recording_goes_on_when_a_source_of_another_size_opens(tmp_path):
    """Record, then switch to a smaller and an odd-sized source: every frame lands in the file, fitted into
    the first frame's size (it used to reject them all after the switch, with the Record button still on)."""
    import av

    from transpose_live.ui.keep import Recorder

    recorder = Recorder(tmp_path / "rec.mp4", 25)
    for shape in [(480, 640)] * 3 + [(240, 320)] * 3 + [(481, 641)] * 2 + [(720, 1280)] * 2:
        frame = np.full((*shape, 3), 200, np.uint8)
        recorder.write(frame)
    assert recorder.error is None and recorder.frames == 10
    assert recorder.close()
    with av.open(str(tmp_path / "rec.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 10 and all(f.shape == (480, 640, 3) for f in frames)
    wide = frames[-1]                                           # 16:9 into 4:3: black bands above and below
    assert wide[:40].mean() < 20 and wide[200:280].mean() > 150
