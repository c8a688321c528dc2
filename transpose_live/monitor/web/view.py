"""WebView: the web page of a monitoring run, started and stopped by the `monitor` and `rtsp` commands.

    view = WebView(WebConfig(port=8080, event_dir=Path("events")))
    view.start()                                    # serving at view.url
    Outputs(..., more=(view.for_camera,))          # monitor: each camera's sink, opened with its other outputs
    sink = view.sink("door", url=camera_url)       # or one by hand; sink.bind(pipeline) for the overlay toggle
    view.stop()

Everything reaches it through the cameras' sinks (frames, events, how the output ended), the same output
interface the JSON Lines and MQTT writers use; the only other input is `model_stats` (the shared model's
batch counters for /metrics and /api/stats).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from transpose_live.media.sinks.outputs import SinkOpener
from transpose_live.monitor.cameras import CameraConfig
from transpose_live.monitor.web.clips import ClipCutter
from transpose_live.monitor.web.config import WebConfig
from transpose_live.monitor.web.feeds import CameraFeed
from transpose_live.monitor.web.hub import JpegStream
from transpose_live.monitor.web.push import Broadcaster
from transpose_live.monitor.web.recorder import EventRecorder
from transpose_live.monitor.web.sink import WebSink
from transpose_live.monitor.web.state import WebState
from transpose_live.monitor.web.store import EventStore

log = logging.getLogger(__name__)


class WebView:
    """The web server, the cameras' feeds, the event store. Raises TransposeLiveError for a bad config
    (no password off loopback) at construction and for a port it cannot take at start()."""

    def __init__(self, config: WebConfig, model_stats: Callable[[], Any] | None = None):
        self.config = config.validate()
        store = EventStore(config.event_dir, config.keep_days, config.keep_mb)
        clips = ClipCutter(config.record_dir, config.clip_before_s, config.clip_after_s) \
            if config.record_dir is not None else None
        self.state = WebState(config, store, Broadcaster(), clips, model_stats)
        self.recorder = EventRecorder(store, self.state.push)
        self._server: Any = None
        self.port: int | None = None

    # ------------------------------------------------------------------------------------------ cameras

    def sink(self, camera: str, url: str | None = None, records: bool = False) -> WebSink:
        """The sink of one camera's pipeline (its tile appears now, "connecting"). The same name again (a
        camera's new pipeline) continues that camera's feed."""
        feed = self._feed(camera, url, records)
        feed.reopen(records=records)
        return WebSink(feed, self.recorder)

    def _feed(self, camera: str, url: str | None, records: bool) -> CameraFeed:
        state = self.state
        with state.lock:
            feed = state.feeds.get(camera)
            if feed is None:
                feed = CameraFeed(camera, url, records, on_change=self._changed)
                state.feeds[camera] = feed
                state.streams[camera] = JpegStream(feed)
            return feed

    def for_camera(self, camera: CameraConfig | str) -> list[SinkOpener]:
        """The camera's web output for open_outputs' `more` (a monitor.runner.CameraOutputs, like MQTT's):
        clips are offered for cameras that record into this view's record_dir."""
        if isinstance(camera, CameraConfig):
            name, url, records = camera.name, camera.url, camera.record
        else:
            name, url, records = str(camera), None, False
        records = records and self.config.record_dir is not None
        return [lambda source: self.sink(name, url=url, records=records)]

    def camera_failed(self, camera: CameraConfig | str, reason: str) -> None:
        """A camera that ended with an error outside its outputs (a monitor.runner.CameraFailed, like MQTT's):
        its tile says failed, with the reason on the events page."""
        if isinstance(camera, CameraConfig):
            feed = self._feed(camera.name, camera.url, camera.record and self.config.record_dir is not None)
        else:
            feed = self._feed(str(camera), None, False)
        sink = WebSink(feed, self.recorder)
        if (feed.last_event or {}).get("type") != "stream_failed":     # the stream said so itself already
            sink.write_event({"event": "stream_failed", "reason": reason})
        sink.abort()

    def _changed(self, feed: CameraFeed) -> None:
        self.state.push.publish({"type": "camera", "camera": feed.row()})

    @property
    def model_stats(self) -> Callable[[], Any] | None:
        return self.state.model_stats

    @model_stats.setter
    def model_stats(self, source: Callable[[], Any] | None) -> None:
        """Where /metrics and /api/stats read the shared model's counters (the monitor's SharedEstimator.stats)."""
        self.state.model_stats = source

    # ------------------------------------------------------------------------------------------ server

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def start(self) -> "WebView":
        from transpose_live.monitor.web.app import build_app  # deferred: FastAPI is only needed with --web
        from transpose_live.monitor.web.server import ServerThread, bind

        sock = bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self._server = ServerThread(build_app(self.state), sock)
        self._server.start()
        log.info("web view at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving (open streams end), finish the queued events, close the store."""
        state = self.state
        state.stopping.set()
        for stream in list(state.streams.values()):
            stream.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.recorder.close()
        state.store.close()

    def __enter__(self) -> "WebView":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["WebView"]
