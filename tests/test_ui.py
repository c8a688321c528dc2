"""The PyQt6 window and its worker, offscreen: frames reach the view, the toggles reach the pipeline, errors
reach the status bar, and stopping or closing leaves no thread behind.

The worker's own logic (threads, signals, frames in flight, pacing, rebuilds, errors) is tested with a fake
pipeline (same interface as transpose_live.pipeline.Pipeline) that feeds synthetic frames from its own
thread. The tests at the end run the real thing: the worker's default pipeline factory (no
pipeline_factory given) loads the tiny random model (conftest) and plays a synthetic clip into real writers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.types import FrameResult, Pose

QtCore = pytest.importorskip("PyQt6.QtCore")
from PyQt6.QtGui import QColor, QImage  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

W, H = 160, 120


@pytest.fixture
def qapp():
    # function scope: conftest's autouse fixture has set QT_QPA_PLATFORM (offscreen) by now
    return QApplication.instance() or QApplication(["test"])


def wait_until(app, predicate, timeout=5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if predicate():
            return True
        time.sleep(0.005)
    app.processEvents()
    return predicate()


def fake_spec(**changes):
    """A RunSpec naming a model the fake pipeline pretends to run (not validated: nothing is loaded)."""
    from transpose_live.spec import RunSpec

    return RunSpec(model="fake-model", device="cpu").replace(**changes)


class FakeSource:
    """Endless synthetic frames: grey with a white block; `closed` tells whether close() was called.
    A camera index is live, anything else a file (opened at `start` seconds)."""

    size = (W, H)
    fps = 30.0
    opened: list["FakeSource"] = []

    def __init__(self, spec=0, start=None, **options):
        self.spec = spec
        self.start = start
        self.is_live = isinstance(spec, int)
        self.closed = False
        self.index = 0
        FakeSource.opened.append(self)

    def __iter__(self):
        return self

    def __next__(self):
        image = np.full((H, W, 3), 70, np.uint8)
        image[40:80, 60:100] = 255
        self.index += 1
        return image

    def close(self):
        self.closed = True


class FakePipeline:
    """Pipeline's interface: run() blocks while a thread of its own calls on_frame; stop() ends it.
    Renders the attention state into the frame: a red band on top while attention is on. Like the pipelines
    the worker's default factory builds (own_sinks=False), it writes the sinks but leaves closing them to
    the worker."""

    instances: list["FakePipeline"] = []

    def __init__(self, source, config, sinks=(), on_frame=None, estimator=None, detector=None,
                 fail_after=None, live=True):
        self.source, self.config, self.on_frame, self.sinks = source, config, on_frame, list(sinks)
        self.attention = config.attention
        self.smooth = config.smooth
        self.fail_after = fail_after
        self._stop = threading.Event()
        self.frames = 0
        self.threads: list[threading.Thread] = []
        if live:
            self.set_attention = self._set_attention
        FakePipeline.instances.append(self)

    def _set_attention(self, on):
        self.attention = on

    def stats(self):
        return {"dropped": 3, "frames_in": self.frames}

    def run(self):
        error: list[BaseException] = []

        def last_stage():
            try:
                for image in self.source:
                    if self._stop.is_set():
                        break
                    if self.fail_after is not None and self.frames >= self.fail_after:
                        raise TransposeLiveError("camera 7 stopped giving frames")
                    out = image.copy()
                    if self.attention:
                        out[:10] = (0, 0, 255)      # BGR red
                    pose = Pose(keypoints=np.full((17, 2), 50, np.float32), scores=np.ones(17, np.float32))
                    result = FrameResult(index=self.frames, timestamp=self.frames / 30, poses=[pose])
                    for sink in self.sinks:
                        sink.write_frame(out, result)
                    self.on_frame(out, result)
                    self.frames += 1
                    time.sleep(0.005)
            except BaseException as exc:
                error.append(exc)

        thread = threading.Thread(target=last_stage, name="fake-render")
        self.threads.append(thread)
        thread.start()
        thread.join()
        if error:
            raise error[0]

    def stop(self):
        self._stop.set()


def factory(**options):
    def make(source, config, **kwargs):
        return FakePipeline(source, config, **options, **kwargs)
    return make


def make_window(**options):
    from transpose_live.ui.main_window import MainWindow

    FakePipeline.instances.clear()
    FakeSource.opened.clear()
    window = MainWindow(config=fake_spec(), pipeline_factory=factory(**options), source_factory=FakeSource)
    window.resize(640, 480)
    window.show()
    return window


def no_pipeline_threads() -> bool:
    names = [t.name for t in threading.enumerate()]
    return "fake-render" not in names


def test_bgr_to_qimage_copies_and_keeps_colours():
    from transpose_live.ui.worker import bgr_to_qimage

    image = np.zeros((4, 5, 3), np.uint8)
    image[..., 2] = 200          # red in BGR
    q = bgr_to_qimage(image)
    image[:] = 0                 # the QImage owns its pixels: changing the array changes nothing
    assert (q.width(), q.height()) == (5, 4)
    assert QColor(q.pixel(2, 1)).getRgb()[:3] == (200, 0, 0)
    grey = bgr_to_qimage(np.full((3, 3), 90, np.uint8))
    assert QColor(grey.pixel(1, 1)).getRgb()[:3] == (90, 90, 90)
    with pytest.raises(TransposeLiveError):
        bgr_to_qimage(np.zeros((3, 3, 4), np.uint8))


def test_window_shows_frames_and_stats(qapp):
    window = make_window()
    try:
        grab = window.video.grab().toImage()
        assert window.video.image is None
        assert window.start_source("fake.mp4")
        assert wait_until(qapp, lambda: window.frames_shown >= 5)
        assert wait_until(qapp, lambda: window.fps_label.text() != "fps –")
        # the view paints the frame: the white block is in the middle of the widget
        img = window.video.grab().toImage()
        assert img.width() > 0 and img != grab
        rect = window.video.image_rect()
        center = QColor(img.pixel(rect.center().x(), rect.center().y()))
        assert center.getRgb()[:3] == (255, 255, 255)
        corner = QColor(img.pixel(rect.left() + 3, rect.bottom() - 3))
        assert corner.getRgb()[:3] == (70, 70, 70)
        # aspect kept: 160x120 in a wider-than-4:3 view → pillarboxed with black bars
        assert abs(rect.width() / rect.height() - W / H) < 0.02
        if rect.left() > 0:
            assert QColor(img.pixel(0, img.height() // 2)).getRgb()[:3] == (0, 0, 0)
        assert window.persons_label.text() == "persons 1"
        assert wait_until(qapp, lambda: window.dropped_label.text().startswith("dropped ")
                          and int(window.dropped_label.text().split()[1]) >= 3)
        assert window.model_label.text() == "model fake-model · cpu"
        assert "fake.mp4" in window.windowTitle()
    finally:
        window.close()
    assert window.worker is None
    assert no_pipeline_threads()


def test_attention_toggle_reaches_pipeline_live(qapp):
    window = make_window()
    try:
        window.start_source(0)
        assert wait_until(qapp, lambda: window.frames_shown >= 2)
        pipeline = FakePipeline.instances[-1]
        assert pipeline.attention is False
        window.attention_action.trigger()          # what the A key does
        assert window.worker.attention is True
        assert pipeline.attention is True          # live: the same pipeline, not a rebuild
        assert len(FakePipeline.instances) == 1

        def red_band():
            img = window.video.image
            return img is not None and QColor(img.pixel(5, 2)).getRgb()[:3] == (255, 0, 0)

        assert wait_until(qapp, red_band)
        window.attention_action.trigger()
        assert pipeline.attention is False
        assert wait_until(qapp, lambda: not red_band())
    finally:
        window.close()
    assert no_pipeline_threads()


def test_attention_shortcut_is_a(qapp):
    window = make_window()
    try:
        assert window.attention_action.shortcut().toString() == "A"
        assert window.attention_action.isCheckable()
    finally:
        window.close()


def test_toggle_without_live_hook_rebuilds_pipeline(qapp):
    window = make_window(live=False)            # a pipeline without set_attention: rebuilt
    try:
        window.start_source("clip.mp4")
        assert wait_until(qapp, lambda: window.frames_shown >= 2)
        first = FakePipeline.instances[0]
        window.attention_action.setChecked(True)
        assert wait_until(qapp, lambda: len(FakePipeline.instances) == 2)
        second = FakePipeline.instances[1]
        assert first._stop.is_set() and first.source.closed
        assert second.config.attention is True and second.config.smooth is True
        assert wait_until(qapp, lambda: second.frames >= 2)
        # the file is reopened just after the last frame shown, not from its start
        reopened = FakeSource.opened[-1]
        assert len(FakeSource.opened) == 2 and reopened.start is not None
        assert reopened.start == pytest.approx((first.frames - 1) / 30 + 1 / 30, abs=0.2)
        assert reopened.start > 0
        assert window.running
    finally:
        window.close()
    assert no_pipeline_threads()


def test_live_source_rebuild_keeps_the_camera_open(qapp):
    window = make_window(live=False)
    try:
        window.start_source(0)
        assert wait_until(qapp, lambda: window.frames_shown >= 2)
        camera = FakeSource.opened[0]
        window.smooth_action.trigger()                  # S: smoothing off → rebuild
        assert wait_until(qapp, lambda: len(FakePipeline.instances) == 2 and FakePipeline.instances[1].frames)
        assert FakePipeline.instances[1].config.smooth is False
        assert len(FakeSource.opened) == 1 and not camera.closed    # no reconnect
        before = camera.index
        assert wait_until(qapp, lambda: camera.index > before + 2)  # the same camera goes on giving frames
    finally:
        window.close()
    assert FakeSource.opened[0].closed
    assert no_pipeline_threads()


class RecordingSink:
    needs_image = False

    def __init__(self):
        self.results, self.closed, self.aborted = [], 0, 0

    def write_frame(self, image, result):
        self.results.append(result.index)

    def close(self):
        self.closed += 1

    def abort(self):
        self.aborted += 1


def test_sinks_survive_a_rebuild_and_close_once(qapp):
    from transpose_live.ui.worker import PipelineWorker, launch, shutdown

    FakePipeline.instances.clear()
    sink = RecordingSink()
    worker = PipelineWorker(0, fake_spec(), pipeline_factory=factory(live=False), source_factory=FakeSource,
                            sinks=[sink])
    thread = launch(worker)
    try:
        assert wait_until(qapp, lambda: len(sink.results) >= 3)
        worker.set_attention(True)
        assert wait_until(qapp, lambda: len(FakePipeline.instances) == 2 and FakePipeline.instances[1].frames >= 3)
        assert sink.closed == 0                     # the first pipeline ended, the output goes on
    finally:
        assert shutdown(worker, thread)
    assert sink.closed == 1 and sink.aborted == 0
    assert len(sink.results) >= 6


def test_sinks_are_closed_once_after_an_error_too(qapp):
    """A recording up to a camera failure is still worth having: the worker closes (not aborts) its sinks."""
    from transpose_live.ui.worker import PipelineWorker, launch, shutdown

    sink = RecordingSink()
    worker = PipelineWorker(7, fake_spec(), pipeline_factory=factory(fail_after=3), source_factory=FakeSource,
                            sinks=[sink])
    errors = []
    worker.error.connect(errors.append)
    thread = launch(worker)
    try:
        assert wait_until(qapp, lambda: not worker.running and errors)
    finally:
        assert shutdown(worker, thread)
    assert errors == ["camera 7 stopped giving frames"]
    assert sink.results == [0, 1, 2] and sink.closed == 1 and sink.aborted == 0


def test_smoothing_toggle_passes_through(qapp):
    window = make_window(live=False)
    try:
        window.smooth_action.setChecked(False)      # before start: goes into the config
        window.start_source("clip.mp4")
        assert wait_until(qapp, lambda: len(FakePipeline.instances) == 1 and FakePipeline.instances[0].frames)
        assert FakePipeline.instances[0].config.smooth is False
    finally:
        window.close()


def test_stop_and_close_join_threads(qapp):
    window = make_window()
    window.start_source("clip.mp4")
    assert wait_until(qapp, lambda: window.frames_shown >= 1)
    thread = window._thread
    window.stop()                                   # returns at once; the thread ends by itself
    assert not window.running and window.start_action.text() == "Start"
    assert wait_until(qapp, lambda: thread.isFinished())
    assert wait_until(qapp, no_pipeline_threads)
    assert FakePipeline.instances[0].source.closed
    # start again, then close while playing: close joins the thread
    window.start_source()
    assert wait_until(qapp, lambda: window.frames_shown >= 1)
    thread = window._thread
    window.close()
    assert thread.isFinished()
    assert no_pipeline_threads()
    assert all(p.source.closed for p in FakePipeline.instances)


def test_pipeline_error_shows_in_status_bar(qapp):
    window = make_window(fail_after=3)
    try:
        window.start_source(7)
        assert wait_until(qapp, lambda: window.last_error is not None)
        assert window.last_error == "camera 7 stopped giving frames"
        assert wait_until(qapp, lambda: not window.running)
        assert window.statusBar().currentMessage() == "error: camera 7 stopped giving frames"
        box = window._error_box
        assert box is not None and box.isVisible() and not box.isModal()
        assert box.text() == "camera 7 stopped giving frames"
    finally:
        window.close()
    assert not window._error_box.isVisible()
    assert no_pipeline_threads()


def test_source_that_cannot_open_shows_error(qapp):
    from transpose_live.ui.main_window import MainWindow

    def refuse(spec, **kw):
        raise TransposeLiveError(f"cannot open camera {spec} (not connected, or in use by another program)")

    window = MainWindow(config=fake_spec(), pipeline_factory=factory(), source_factory=refuse)
    window.show()
    try:
        window.start_source(3)
        assert wait_until(qapp, lambda: window.last_error is not None and not window.running)
        assert window.statusBar().currentMessage().startswith("error: cannot open camera 3")
        assert window.video.image is None
        assert window.video.placeholder.startswith("could not play: cannot open camera 3")
    finally:
        window.close()


def test_worker_signals_directly(qapp):
    """The worker alone in a QThread: frame_ready carries a QImage and the FrameResult, finished follows stop."""
    from transpose_live.ui.worker import PipelineWorker, launch, shutdown

    worker = PipelineWorker(FakeSource(3), fake_spec(), pipeline_factory=factory())
    got, finished = [], []
    worker.frame_ready.connect(lambda img, res: got.append((img, res)))
    worker.finished.connect(lambda: finished.append(True))
    thread = launch(worker)
    try:
        assert wait_until(qapp, lambda: len(got) >= 3)
        image, result = got[0]
        assert isinstance(image, QImage) and (image.width(), image.height()) == (W, H)
        assert isinstance(result, FrameResult) and len(result.poses) == 1
        assert worker.running
    finally:
        assert shutdown(worker, thread)
    assert wait_until(qapp, lambda: finished == [True])
    assert not worker.running
    assert no_pipeline_threads()


def test_worker_keeps_few_frames_in_flight(qapp):
    """When the GUI does not process events, the worker stops queueing frames instead of piling them up."""
    from transpose_live.ui.worker import MAX_IN_FLIGHT, PipelineWorker, launch, shutdown

    worker = PipelineWorker(FakeSource(3), fake_spec(), pipeline_factory=factory())
    got, stats = [], []
    worker.frame_ready.connect(lambda img, res: got.append(res))
    worker.stats.connect(stats.append)
    thread = launch(worker)
    time.sleep(0.3)                           # no processEvents: nothing is delivered meanwhile
    produced = FakePipeline.instances[-1].frames
    assert shutdown(worker, thread)
    qapp.processEvents()
    assert produced > MAX_IN_FLIGHT + 5
    assert len(got) <= MAX_IN_FLIGHT
    assert stats and stats[-1]["dropped_display"] >= produced - MAX_IN_FLIGHT - 1


def test_window_without_source_says_so(qapp):
    window = make_window()
    try:
        assert not window.start_source()
        assert window.last_error.startswith("choose a source first")
        assert not window.running
    finally:
        window.close()


def test_run_app_refuses_without_display(monkeypatch):
    from transpose_live.ui import app as ui_app

    monkeypatch.setattr(ui_app.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(ui_app, "_qt_running", lambda: False)   # as in a fresh process
    with pytest.raises(TransposeLiveError, match="no display for the preview window"):
        ui_app.check_display()
    monkeypatch.setenv("DISPLAY", ":87")            # a local display whose X socket does not exist
    with pytest.raises(TransposeLiveError, match="no display"):
        ui_app.check_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    ui_app.check_display()                          # offscreen needs no display


@pytest.mark.parametrize("realtime", [True, False])
def test_files_play_at_their_own_speed(qapp, realtime):
    """A file's frames (30 fps timestamps here) are shown when due; realtime=False runs flat out."""
    from transpose_live.ui.worker import PipelineWorker, launch, shutdown

    FakePipeline.instances.clear()
    worker = PipelineWorker("clip.mp4", fake_spec(), pipeline_factory=factory(), source_factory=FakeSource,
                            realtime=realtime)
    thread = launch(worker)
    try:
        assert wait_until(qapp, lambda: FakePipeline.instances and FakePipeline.instances[0].frames >= 1)
        t0, f0 = time.monotonic(), FakePipeline.instances[0].frames
        wait_until(qapp, lambda: False, timeout=0.5)
        rate = (FakePipeline.instances[0].frames - f0) / (time.monotonic() - t0)
    finally:
        assert shutdown(worker, thread)
    if realtime:
        assert 20 <= rate <= 36
    else:
        assert rate > 60          # the fake pipeline alone manages ~150 fps


def test_source_labels():
    from transpose_live.ui.worker import source_label

    assert source_label(None) == "source"
    assert source_label(0) == "camera 0" and source_label("2") == "camera 2"
    assert source_label("/videos/clip.mp4") == "clip.mp4"
    assert source_label("rtsp://user:secret@cam.local/live") == "rtsp://user:***@cam.local/live"


def test_default_config_is_the_default_run_spec(qapp):
    from transpose_live.spec import RunSpec
    from transpose_live.ui.main_window import MainWindow
    from transpose_live.ui.worker import default_config

    assert default_config() == RunSpec()
    window = MainWindow()
    try:
        assert window.model_label.text() == "model default · auto"
        assert window.smooth_action.isChecked() and not window.attention_action.isChecked()
    finally:
        window.close()


def test_worker_reads_stats_through_the_snapshot():
    from transpose_live.pipeline import PipelineStats
    from transpose_live.ui.worker import _dropped, _pipeline_stats

    class Pipeline:
        stats = PipelineStats(frames_dropped=1)        # what a reader racing the stages could see

        def stats_snapshot(self):
            return PipelineStats(frames_processed=9, frames_dropped=4)

    class Broken:
        def stats_snapshot(self):
            raise RuntimeError("counters are a nicety")

    got = _pipeline_stats(Pipeline())
    assert got["frames_processed"] == 9 and _dropped(got) == 4 and "fps" in got
    assert _pipeline_stats(Broken()) == {}


# ------------------------------------------------------------------ the real pipeline, tiny random model

@pytest.fixture
def tiny_spec(tiny_options):
    from transpose_live.spec import RunSpec

    return RunSpec.from_options(**tiny_options, min_person_score=0.0)   # its random joint scores are low


@pytest.fixture
def clip(tmp_path):
    from conftest import synthetic_clip

    return synthetic_clip(tmp_path / "clip.mp4", frames=12, size=(W, H), fps=20)


def counting_jsonl(path):
    """A real JsonlWriter that counts its close() calls."""
    from transpose_live.sinks import JsonlWriter

    class CountingJsonl(JsonlWriter):
        closes = 0

        def close(self):
            self.closes += 1
            super().close()

    return CountingJsonl(path)


def read_jsonl(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


class WithoutLiveHooks:
    """A real Pipeline seen without set_attention / set_smooth: the worker has to rebuild it to change them."""

    def __init__(self, pipeline):
        self._pipeline = pipeline

    def __getattr__(self, name):
        if name in ("set_attention", "set_smooth"):
            raise AttributeError(name)
        return getattr(self._pipeline, name)


@pytest.mark.parametrize("live_hooks", [True, False], ids=["live-toggles", "rebuild"])
def test_real_worker_writes_its_sinks_across_toggles_and_closes_them_once(qapp, tiny_spec, clip, tmp_path,
                                                                         live_hooks):
    """The default factory (the tiny model loaded through load_runner) plays a clip into a real JsonlWriter;
    smoothing and attention are toggled mid-run: live on the real Pipeline, or by rebuilding it (the file
    resumes after the last shown frame, the model is reused). Every frame shown is one line; the writer is
    closed exactly once, at the end."""
    from transpose_live.ui.worker import PipelineWorker, _default_pipeline_factory, launch, shutdown

    built = []

    def rebuilt_each_time(source, config, **kwargs):
        built.append(_default_pipeline_factory(source, config, **kwargs))
        return WithoutLiveHooks(built[-1])

    path = tmp_path / "poses.jsonl"
    writer = counting_jsonl(path)
    options = {} if live_hooks else {"pipeline_factory": rebuilt_each_time}
    # one frame per queue: the stages run at most a few frames ahead, so frames after the toggle exist
    worker = PipelineWorker(str(clip), tiny_spec.replace(queue_size=1), sinks=[writer], **options)
    shown, stats, infos = [], [], []
    worker.frame_ready.connect(lambda image, result: shown.append(result))
    worker.stats.connect(stats.append)
    worker.info.connect(infos.append)
    thread = launch(worker)
    try:
        assert wait_until(qapp, lambda: len(shown) >= 3, timeout=20)
        worker.set_smooth(False)
        worker.set_attention(True)
        assert wait_until(qapp, lambda: not worker.running, timeout=20)
    finally:
        assert shutdown(worker, thread)
    wait_until(qapp, lambda: False, timeout=0.05)      # the last queued signals
    assert writer.closes == 1
    records = read_jsonl(path)
    assert len(records) == stats[-1]["frames"] >= len(shown)     # every frame the worker got was written
    times = [r["timestamp"] for r in records]
    assert times == sorted(set(times))                 # no frame twice, none out of order across a rebuild
    assert times[-1] == pytest.approx(11 / 20, abs=1e-3)   # on to the end of the clip
    assert all(len(r["persons"]) == 1 for r in records)
    assert [info["model"] for info in infos] == ["tp_m_a4"] * (1 if live_hooks else 2)
    if not live_hooks:
        assert len(built) == 2 and built[0].estimator is built[1].estimator    # the model loaded once
        assert built[1].spec.smooth is False and built[1].spec.attention is True
    assert shown[0].poses[0].attention is None         # attention maps only after the toggle
    assert shown[-1].poses[0].attention is not None


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
