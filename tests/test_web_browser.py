"""The pages as a person sees them, in a real headless Chromium (Debian's chromium + chromedriver, driven by
Selenium): two cameras on the loopback RTSP test server, each a real pipeline with the tiny model into the web
view. Tiles whose pictures load, a camera's MJPEG and its overlay toggle, an outage seen on the page as it
happens (tile reconnecting and back, the events pushed), Basic auth in the browser, a phone's width."""

from __future__ import annotations

import threading
import time

import pytest
from web_support import PASSWORD, USER, Cameras, chromium, feed_frames, get_json, image_loaded, make_view, wait_for

from transpose_live.live.run import load_runner

import rtsp_server
from rtsp_server import RtspServer

CAM_USER, CAM_SECRET = "cam", "cam-secret-77"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_options, loud_weights):
    """The RTSP server (paths /door and /yard, with a password), the view, the two cameras' pipelines."""
    rtsp_server.require()
    server = RtspServer(paths=("/door", "/yard"), user=CAM_USER, password=CAM_SECRET)
    # the whole frame is the person (no detector); the loud weights make it a confident, tracked one
    runner = load_runner(**{**tiny_options, "weights": str(loud_weights)})
    folder = tmp_path_factory.mktemp("web")
    view = make_view(folder, record_dir=folder / "recordings")
    # the door records in 3-second segments: its events get clips once their footage is in finished segments
    cameras = Cameras(view, runner, {"door": server.url("/door"), "yard": server.url("/yard")}, folder,
                      records=("door",), segment_minutes=0.05)
    try:
        wait_for(lambda: all(r["state"] == "live" and r["frames"] > 3 for r in get_json(view, "/api/cameras")), 30)
        yield server, view, cameras
    finally:
        cameras.stop()
        view.stop()
        server.stop()


def _tile(driver, name: str, what: str):
    return driver.execute_script(
        f"const t = document.querySelector('.tile[data-camera=\"{name}\"]'); return t && {what};")


def test_the_grid_shows_every_camera_live_with_its_newest_frame(world, browser):
    server, view, _ = world
    browser.get(view.url)
    for name in ("door", "yard"):
        wait_for(lambda name=name: image_loaded(browser, f'.tile[data-camera="{name}"] img'), 10)
        wait_for(lambda name=name: _tile(browser, name, "t.querySelector('.state').textContent") == "live", 5)
        fps = _tile(browser, name, "t.querySelector('.figures').textContent")
        assert float(fps.split(" fps")[0]) > 0, fps
    first = _tile(browser, "door", "t.querySelector('img').src")
    wait_for(lambda: _tile(browser, "door", "t.querySelector('img').src") != first, 5)     # it refreshes itself
    assert CAM_SECRET not in browser.page_source
    names = browser.execute_script("return [...document.querySelectorAll('.tile .name')].map(n => n.textContent)")
    assert names == ["door", "yard"]                  # in name order, whichever camera connected first


def test_the_camera_page_plays_mjpeg_and_computes_attention_only_while_asked(world, browser):
    _, view, cameras = world
    pipeline, stream = cameras.pipelines["door"], view.state.streams["door"]
    browser.get(view.url + "camera/door")
    wait_for(lambda: image_loaded(browser, "#live"), 10)
    wait_for(lambda: stream.viewers == 1, 5)
    assert not pipeline.spec.attention
    browser.find_element("id", "attention").click()
    wait_for(lambda: pipeline.spec.attention, 5)
    wait_for(lambda: image_loaded(browser, "#live"), 10)
    browser.find_element("id", "attention").click()
    wait_for(lambda: not pipeline.spec.attention, 5)
    browser.find_element("id", "attention").click()
    wait_for(lambda: pipeline.spec.attention, 5)
    browser.get(view.url + "events")                   # leaving the page ends its stream, and the overlay
    wait_for(lambda: not pipeline.spec.attention and stream.viewers == 0, 5)
    wait_for(lambda: browser.execute_script("return document.querySelectorAll('#events li').length"), 5)


def test_an_outage_is_seen_on_the_pages_as_it_happens(world, browser):
    server, view, _ = world
    browser.get(view.url)
    grid = browser.current_window_handle
    wait_for(lambda: _tile(browser, "door", "t.dataset.state") == "live", 10)
    browser.switch_to.new_window("window")
    events_page = browser.current_window_handle
    browser.get(view.url + "events")
    wait_for(lambda: browser.execute_script("return document.getElementById('link').className") == "link up", 5)
    # the persons found when the cameras started: listed with snapshots that load
    wait_for(lambda: browser.execute_script(
        "return document.querySelectorAll('#events li[data-type=person_appeared]').length") >= 2, 5)
    wait_for(lambda: image_loaded(browser, "#events li[data-type=person_appeared] img"), 5)

    server.kill()                                       # both cameras die at once
    wait_for(lambda: browser.execute_script(
        "return document.querySelectorAll('#events li[data-type=stream_lost]').length") == 2, 15)
    lags = browser.execute_script("return [...document.querySelectorAll('#events li[data-type=stream_lost]')]"
                                  ".map(li => li.dataset.seen - li.dataset.epoch)")
    assert all(0 <= lag < 2.0 for lag in lags), lags    # pushed, no reload: within a second or two
    browser.switch_to.window(grid)
    wait_for(lambda: _tile(browser, "door", "t.dataset.state") == "reconnecting", 5)
    assert _tile(browser, "yard", "t.dataset.state") == "reconnecting"

    server.start()
    wait_for(lambda: _tile(browser, "door", "t.dataset.state") == "live"
             and _tile(browser, "yard", "t.dataset.state") == "live", 30)
    browser.switch_to.window(events_page)
    wait_for(lambda: browser.execute_script(
        "return document.querySelectorAll('#events li[data-type=stream_back]').length") == 2, 5)
    browser.close()
    browser.switch_to.window(grid)
    assert get_json(view, "/api/cameras/door")["reconnects"] >= 1


def test_an_event_of_a_recording_camera_plays_its_clip(world, browser):
    _, view, _ = world
    browser.get(view.url + "events?camera=door&type=person_appeared")
    item = '#events li[data-type=person_appeared][data-camera=door]'
    wait_for(lambda: browser.execute_script(f"return !!document.querySelector('{item} .clip button')"), 10)
    epoch = float(browser.execute_script(f"return document.querySelector('{item}').dataset.epoch"))
    # the clip ends 5 s after the event; it is cut once that footage is in a finished 3-second segment
    time.sleep(max(0.0, epoch + 5 + 3 + 1 - time.time()))
    browser.execute_script(f"document.querySelector('{item} .clip button').click()")
    wait_for(lambda: browser.execute_script(
        f"const v = document.querySelector('{item} .clip video'); return !!v && v.readyState >= 1 && v.duration > 1"),
        20)
    assert browser.execute_script("return document.querySelector('#events li[data-camera=yard]')") is None
    yard = get_json(view, "/api/events?camera=yard&type=person_appeared")[0]
    assert yard["clip"] is None                          # yard does not record: its events say so


def test_a_password_protected_view_works_in_the_browser(tmp_path, browser):
    view = make_view(tmp_path, user=USER, password=PASSWORD)
    sink = view.sink("door")
    stop = threading.Event()

    def camera() -> None:
        i = 0
        while not stop.is_set():
            feed_frames(sink, 1, start=i, persons=1)
            i += 1
            time.sleep(0.05)

    feeder = threading.Thread(target=camera, daemon=True)
    feeder.start()
    try:
        browser.get(f"http://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{view.port}/")
        wait_for(lambda: image_loaded(browser, '.tile[data-camera="door"] img'), 10)
        # the websocket went through with the same credentials: pushed state arrives
        wait_for(lambda: browser.execute_script("return document.getElementById('link').className") == "link up", 5)
        sink.write_event({"event": "person_down", "id": 1, "timestamp": 1.0})
        wait_for(lambda: "person_down" in (_tile(browser, "door", "t.querySelector('.last-event').textContent")
                                           or ""), 5)
    finally:
        stop.set()
        feeder.join(5)
        view.stop()


def test_the_pages_fit_a_phone(world, browser):
    _, view, _ = world
    browser.set_window_size(390, 844)
    try:
        for path in ("", "events", "camera/door"):
            browser.get(view.url + path)
            time.sleep(0.5)
            width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (path, width)
        browser.get(view.url)
        wait_for(lambda: image_loaded(browser, '.tile[data-camera="door"] img'), 10)
        tile = browser.execute_script("return document.querySelector('.tile').getBoundingClientRect().width")
        assert tile >= 300                               # one tile across, the picture at full width
    finally:
        browser.set_window_size(1280, 900)
