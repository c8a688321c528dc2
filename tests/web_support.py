"""What the web view's test modules share: a view on 127.0.0.1 with a random port, raw HTTP requests (paths sent
as written, `..` included), frames and events fed through a camera's sink, and headless Chromium driven by
Selenium with Debian's chromedriver (skipped, with the reason, when it is not installed; nothing downloads a
browser)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from transpose_live.monitor.web.config import WebConfig
from transpose_live.monitor.web.view import WebView
from transpose_live.types import FrameResult, Pose

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# the machine's network is closed: without these Chromium floods refused connections (updates, sync, QUIC)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900")
USER, PASSWORD = "admin", "correct horse battery"


def make_view(tmp_path: Path, **config) -> WebView:
    """A started view on 127.0.0.1, a free port, events in tmp_path/events (unless given)."""
    config.setdefault("event_dir", tmp_path / "events")
    return WebView(WebConfig(port=0, **config)).start()


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(view: WebView, path: str, headers: dict | None = None, timeout: float = 10.0,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request with `path` sent exactly as written (no normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", view.port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get_json(view: WebView, path: str, headers: dict | None = None):
    status, _, body = get(view, path, headers)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def picture(i: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A BGR frame that changes with i (so each JPEG differs)."""
    w, h = size
    image = np.full((h, w, 3), 40, np.uint8)
    image[:, (3 * i) % w:(3 * i) % w + 12] = (30, 200, 240)
    return image


def standing(track_id: int = 1) -> Pose:
    kp = np.stack([np.full(17, 80.0), np.linspace(10, 110, 17)], 1).astype(np.float32)
    return Pose(kp, np.full(17, 0.9, np.float32), box=(60, 5, 40, 110), track_id=track_id)


def feed_frames(sink, n: int, start: int = 0, persons: int = 0, period: float = 0.0) -> None:
    for i in range(start, start + n):
        poses = [standing(k + 1) for k in range(persons)]
        sink.write_frame(picture(i), FrameResult(i, i / 15.0, poses, (160, 120)))
        if period:
            time.sleep(period)


def wait_for(predicate, timeout: float, step: float = 0.02):
    """Poll until predicate() is truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {getattr(predicate, '__name__', predicate)}")
        time.sleep(step)


class Attention:
    """Stands in for a pipeline's controls: records set_attention calls."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.on = False

    def set_attention(self, on: bool) -> None:
        self.calls.append(on)
        self.on = on


# ------------------------------------------------------------------------------------------------- browser

def chromium_missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"needs {path} (Debian package {package}; .ci/run installs it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install selenium)"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A headless Chromium (fresh profile, no network chatter) under Selenium, closed at the end."""
    why = chromium_missing()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(width, height)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def image_loaded(driver, css: str) -> bool:
    """Whether the <img> matched by `css` shows a decoded picture (naturalWidth > 0)."""
    return bool(driver.execute_script(
        "const i = document.querySelector(arguments[0]); return !!i && i.complete && i.naturalWidth > 0;", css))


# ------------------------------------------------------------------------------------------- real cameras

class Cameras:
    """Real cameras into the view the way `transpose-live monitor --web` runs them: the monitor's engine
    (monitor.runner.Monitor: a pipeline per camera, one shared model, pose events, its JSON log and segments)
    with the view's output opened beside the others (Outputs.more = view.for_camera). `records`: these cameras
    record segments of `segment_minutes` into `record_dir` (the view's, for clips)."""

    def __init__(self, view: WebView, runner, urls: dict[str, str], folder: Path, timeout: float = 1.0,
                 records: tuple[str, ...] = (), segment_minutes: float = 10.0):
        from transpose_live.monitor.cameras import CameraConfig
        from transpose_live.monitor.runner import Monitor, Outputs

        cameras = [CameraConfig(name, url, record=name in records) for name, url in urls.items()]
        outputs = Outputs(folder / "logs", view.config.record_dir, segment_minutes, more=[view.for_camera])
        self.monitor = Monitor(cameras, runner.spec, outputs, {"transport": "tcp", "timeout": timeout,
                                                               "max_retries": None}, runner=runner)
        self.monitor.start()
        view.model_stats = lambda: self.monitor.estimator.stats
        wait_for(lambda: all(c.pipeline is not None for c in self.monitor.cameras), 30)
        self.pipelines = {c.camera.name: c.pipeline for c in self.monitor.cameras}
        # the overlay toggle: each web sink steers its own pipeline (the pipeline does not bind sinks itself)
        from transpose_live.monitor.web.sink import WebSink

        for pipeline in self.pipelines.values():
            for sink in pipeline.sinks:
                if isinstance(sink, WebSink):
                    sink.bind(pipeline)

    def stop(self) -> None:
        self.monitor.stop()
