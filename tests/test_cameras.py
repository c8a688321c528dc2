"""The camera list of `monitor`: YAML config (Frigate-like), ${ENV} credentials, masks."""

from __future__ import annotations

import numpy as np
import pytest

from transpose_live.detect import Detections
from transpose_live.detect.masked import MaskedDetector
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import inside
from transpose_live.monitor.cameras import camera_name, from_urls, load_config

CONFIG = """
cameras:
  front door:
    url: rtsp://admin:${CAM1_PASSWORD}@10.0.0.5:554/stream1
    detect_every: 2
    record: true
    mask:
      - [[0, 0], [100, 0], [100, 50], [0, 50]]
  yard: rtsp://10.0.0.6/live
"""


def test_config_with_env_credentials_and_masks(tmp_path, monkeypatch):
    monkeypatch.setenv("CAM1_PASSWORD", "s3cret")
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG)
    front, yard = load_config(path)
    assert front.name == "front_door" and front.url == "rtsp://admin:s3cret@10.0.0.5:554/stream1"
    assert front.detect_every == 2 and front.record is True and len(front.mask) == 1
    assert yard.name == "yard" and yard.url == "rtsp://10.0.0.6/live" and not yard.record and yard.mask == []


@pytest.mark.parametrize("text, message", [
    ("cameras: {}", "expected a 'cameras:' mapping"),
    ("nope: 1", "unknown section(s) nope; known: cameras, mqtt"),
    ("cameras:\n  a:\n    detect_every: 2", "needs a url"),
    ("cameras:\n  a:\n    url: rtsp://x/y\n    colour: red", "unknown setting(s) colour"),
    ("cameras:\n  a:\n    url: rtsp://x/y\n    detect_every: 0", "detect_every must be a whole number"),
    ("cameras:\n  a:\n    url: rtsp://x/y\n    mask: [[0, 0], [1, 1]]", "at least 3 [x, y] points"),
    ("cameras:\n  a b: rtsp://x/1\n  a_b: rtsp://x/2", "two cameras are named 'a_b'"),
    ("cameras:\n  a:\n    url: rtsp://u:${NOT_SET_ANYWHERE}@x/y", "environment variable NOT_SET_ANYWHERE is not set"),
    ("cameras: [", "is not valid YAML"),
])
def test_bad_configs_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(TransposeLiveError) as err:
        load_config(path)
    assert message in str(err.value)


def test_missing_env_var_error_never_shows_other_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("CAM1_PASSWORD", "s3cret")
    path = tmp_path / "c.yaml"
    path.write_text("cameras:\n  a:\n    url: rtsp://u:${CAM1_PASSWORD}@x/${MISSING_PATH}\n")
    with pytest.raises(TransposeLiveError) as err:
        load_config(path)
    assert "MISSING_PATH" in str(err.value) and "s3cret" not in str(err.value)


def test_urls_become_numbered_cameras_and_names_are_safe():
    assert [c.name for c in from_urls(["rtsp://a/1", "rtsp://b/2"])] == ["cam1", "cam2"]
    assert camera_name("Front door/#1+") == "Front_door_1" and camera_name("///") == "camera"


def test_point_in_polygon_and_masked_detections():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    points = np.array([[5, 5], [15, 5], [-1, 5], [9.9, 9.9]], float)
    assert inside(points, square).tolist() == [True, False, False, True]

    class Two:
        def detect(self, frame):
            return Detections(np.array([[0, 0, 8, 8], [50, 50, 20, 40]]), np.array([0.9, 0.8]))

    kept = MaskedDetector(Two(), [square]).detect(None)          # the first box's centre (4, 4) is masked
    assert kept.boxes.tolist() == [[50, 50, 20, 40]] and kept.scores.tolist() == pytest.approx([0.8])
    assert len(MaskedDetector(Two(), []).detect(None)) == 2


def test_ignore_down_zones_and_the_mqtt_section(tmp_path, monkeypatch):
    from transpose_live.monitor.cameras import load_monitor_config

    monkeypatch.setenv("MQTT_SECRET", "s3cret")
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  bedroom:\n    url: rtsp://cam/1\n    ignore_down:\n"
                    "      - [[0, 0], [10, 0], [10, 10]]\n"
                    "mqtt:\n  host: broker.lan:8883\n  user: monitor\n  password: ${MQTT_SECRET}\n  tls: true\n"
                    "  keepalive: 5\n  ha_discovery: false\n  ha_prefix: ha\n")
    settings = load_monitor_config(path)
    (camera,) = settings.cameras
    assert len(camera.ignore_down) == 1 and camera.ignore_down[0].shape == (3, 2) and camera.mask == []
    mqtt = settings.mqtt
    assert (mqtt.host, mqtt.user, mqtt.password, mqtt.tls, mqtt.keepalive, mqtt.ha_discovery, mqtt.ha_prefix) == \
        ("broker.lan:8883", "monitor", "s3cret", True, 5, False, "ha")
    assert load_monitor_config(path).cameras[0].name == "bedroom"
    for text, message in [("mqtt:\n  hots: x\n", "unknown setting"),
                          ("mqtt:\n  keepalive: yes\n", "keepalive must be int"),
                          ("mqtt:\n  tls: 3\n", "tls must be true/false or str"), ("extra: 1\n", "unknown section"),
                          ("    ignore_down: [[0, 0], [1, 1]]\n", "an ignore_down zone is a list of at least 3")]:
        path.write_text("cameras:\n  c:\n    url: rtsp://cam/1\n" + text)
        with pytest.raises(TransposeLiveError, match=message):
            load_monitor_config(path)
