"""What a new user ran into (issue 23, item 6): a stream URL with no host or an unknown scheme retried
forever, a photo's progress labelled by its class name, OpenCV's own warning printed before ours for a
broken picture, and a misspelt key in cameras.yaml reported as a missing one."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.media.photos import read_photo
from transpose_live.media.redact import source_label
from transpose_live.media.sources import ImageFolderSource, RtspSource, check_stream_url, open_source
from transpose_live.monitor.cameras import from_urls, load_monitor_config

from helpers import main_runner

SECRET = "hunter2-Secret"


def console(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`transpose-live ARGS` in a fresh process, as a user types it."""
    return subprocess.run([sys.executable, "-m", "transpose_live", *args], capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------------------------------------------------
# 1. URLs no source can read are refused at once


@pytest.mark.parametrize("url, message", [
    ("rtsp://", "names no host"),
    ("rtsp:///stream", "names no host"),
    (f"rtsp://admin:{SECRET}@/stream", "names no host"),
    ("http://:8080/video", "names no host"),
    ("RTSPS://?x=1", "names no host"),
    ("udp://", "names no host"),                        # a listening udp:// needs its port at least
    ("ftp://host/clip.mp4", "no source reads ftp://"),
    (f"rtp://admin:{SECRET}@cam/x", "no source reads rtp://"),
    ("file:///tmp/clip.mp4", "no source reads file://"),
    ("cam.local/stream", "not a stream URL"),
])
def test_urls_no_source_reads_are_one_clear_error_without_the_password(monkeypatch, url, message):
    monkeypatch.setattr(RtspSource, "__init__", lambda self, *a, **k: pytest.fail("must not connect"))
    for check in (check_stream_url, open_source):
        if check is open_source and message == "not a stream URL":
            continue                                    # open_source reads it as a (missing) file instead
        with pytest.raises(TransposeLiveError, match=message) as err:
            check(url)
        assert SECRET not in str(err.value)


@pytest.mark.parametrize("url", [
    "rtsp://cam/live", "rtsps://cam.local:322/x", "HTTP://host/x.m3u8", "https://host:8443/mjpeg?action=stream",
    "rtmp://10.0.0.2/live/key", f"rtsp://admin:{SECRET}@10.0.0.5:554/stream1", "rtsp://[::1]:8554/live",
    "rtsp://user:p@ss@cam/stream",                      # an @ in the password: the host is after the last @
    "udp://@:1234", "udp://239.0.0.1:1234", "srt://:9000?mode=listener", "srt://host:9000",
])
def test_urls_a_source_reads_still_open(monkeypatch, url):
    seen = []
    monkeypatch.setattr(RtspSource, "__init__", lambda self, url, **options: seen.append(url))
    assert check_stream_url(url) == url
    assert isinstance(open_source(url), RtspSource) and seen == [url]


def test_files_folders_and_cameras_are_no_urls(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "one.png"), np.full((8, 8, 3), 90, np.uint8))
    assert isinstance(open_source(tmp_path), ImageFolderSource)
    assert isinstance(open_source(tmp_path / "one.png"), ImageFolderSource)
    with pytest.raises(TransposeLiveError, match="not found"):
        open_source(str(tmp_path / "gone.mp4"))


def test_rtsp_command_without_a_host_stops_at_once_in_one_line():
    done = console("rtsp", "rtsp://", "--json", "-", timeout=60)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == ["error: the URL names no host: 'rtsp://' "
                                                "(e.g. rtsp://camera.local:554/stream)"], done.stderr


def test_monitor_cameras_with_unreadable_urls_are_refused_when_read(tmp_path):
    with pytest.raises(TransposeLiveError, match="camera 2: the URL names no host"):
        from_urls(["rtsp://cam/1", "rtsp://"])
    path = tmp_path / "cameras.yaml"
    path.write_text(f"cameras:\n  door:\n    url: gopher://admin:{SECRET}@cam/1\n")
    with pytest.raises(TransposeLiveError, match="camera 'door': no source reads gopher://") as err:
        load_monitor_config(path)
    assert SECRET not in str(err.value)


# ---------------------------------------------------------------------------------------------------------
# 2. a photo's progress carries the photo's name


def test_image_sources_are_labelled_by_their_file_or_folder(tmp_path):
    for name in ("photo.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), 90, np.uint8))
    assert source_label(open_source(tmp_path / "photo.png")) == "photo.png"
    assert source_label(open_source(tmp_path)) == tmp_path.name
    assert source_label(ImageFolderSource([tmp_path / "photo.png", tmp_path / "b.png"])) == "2 image(s)"
    assert ImageFolderSource([tmp_path / "photo.png"]).path is None      # no video file to copy audio from
    (tmp_path / "123").mkdir()
    cv2.imwrite(str(tmp_path / "123" / "a.png"), np.full((8, 8, 3), 90, np.uint8))
    assert source_label(ImageFolderSource(tmp_path / "123")) == "123"     # a folder, not camera 123


def test_video_on_a_photo_shows_the_photos_name(tmp_path, tiny_weights, monkeypatch, capsys):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 90, np.uint8))
    run = main_runner(monkeypatch, capsys, "video")
    code, out, err = run([photo, "--json", "-", "--model", "tp_m_a4", "--weights", tiny_weights, "--device", "cpu",
                          "--detector", "none"])
    assert code == 0, err
    assert json.loads(out)["frame"] == 0
    assert "ImageFolderSource" not in err and "photo.png" in err, err


# ---------------------------------------------------------------------------------------------------------
# 3. a broken picture: our one line, not OpenCV's warning first


def truncated_png(path):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(data.tobytes()[: len(data) // 2])
    return path


def test_a_truncated_png_reads_as_one_clear_error(tmp_path):
    with pytest.raises(TransposeLiveError, match="cannot read"):
        read_photo(truncated_png(tmp_path / "cut.png"))


@pytest.mark.parametrize("command", ["image", "video"])
def test_a_truncated_png_on_the_console_is_one_line(tmp_path, command):
    photo = truncated_png(tmp_path / "cut.png")
    done = console(command, str(photo), "--json", "-")
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cut.png" in lines[0], done.stderr
    assert "WARN" not in done.stderr


def test_decoding_leaves_opencvs_log_level_as_it_was(tmp_path):
    api = cv2.utils.logging
    before = api.getLogLevel()
    with pytest.raises(TransposeLiveError):
        read_photo(truncated_png(tmp_path / "cut.png"))
    assert api.getLogLevel() == before


# ---------------------------------------------------------------------------------------------------------
# 4. cameras.yaml: unknown keys named, with the nearest known one


@pytest.mark.parametrize("text, message", [
    ("cameras:\n  door:\n    urll: rtsp://cam/1\n",
     "camera 'door': unknown setting(s) urll (did you mean url?); known: url, detect_every, record, mask, "
     "ignore_down"),
    ("cameras:\n  door:\n    url: rtsp://cam/1\n    detect_evry: 2\n    colour: red\n",
     "unknown setting(s) detect_evry (did you mean detect_every?), colour; known:"),
    ("camera:\n  door: rtsp://cam/1\n", "unknown section(s) camera (did you mean cameras?); known: cameras, mqtt"),
    ("cameras:\n  door: rtsp://cam/1\nmqt:\n  host: broker\n", "unknown section(s) mqt (did you mean mqtt?)"),
    ("cameras:\n  door: rtsp://cam/1\nmqtt:\n  hots: broker\n",
     "mqtt: unknown setting(s) hots (did you mean host?); known: host, user, password"),
    ("cameras:\n  door: rtsp://cam/1\nmqtt:\n  ha_prefx: ha\n", "ha_prefx (did you mean ha_prefix?)"),
])
def test_misspelt_keys_are_named_with_the_nearest_known_one(tmp_path, text, message):
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    with pytest.raises(TransposeLiveError) as err:
        load_monitor_config(path)
    assert message in str(err.value), err.value
    assert "needs a url" not in str(err.value)
