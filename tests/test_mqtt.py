"""Events and pose summaries on MQTT, against a real mosquitto broker started by the test on a free loopback
port (Debian's mosquitto; the broker tests skip with the reason where it is not installed)."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.monitor.mqtt import Broker, MqttPublisher, parse_broker, topic_name
from transpose_live.types import FrameResult, Pose

from helpers import free_port, wait_until

SECRET = "s3cr3t-pw"


def frame(i: int) -> FrameResult:
    kp = np.full((17, 2), 10.0 + i, np.float32)
    kp[3] = np.nan
    return FrameResult(i, i / 25, [Pose(kp, np.full(17, 0.8, np.float32), box=(0, 0, 50, 100), track_id=7)])


def timed(call, *args) -> float:
    t = time.perf_counter()
    call(*args)
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------------------------
# the broker spec and topics (no broker needed)


def test_broker_specs():
    assert parse_broker("localhost") == Broker("localhost", 1883)
    assert parse_broker("mqtt.local:1884") == Broker("mqtt.local", 1884)
    assert parse_broker("mqtt://10.0.0.5:1885") == Broker("10.0.0.5", 1885)
    assert parse_broker("[::1]:1886") == Broker("::1", 1886)
    b = parse_broker(f"cam-user:{SECRET}%40x@broker:1887")
    assert (b.host, b.port, b.username, b.password) == ("broker", 1887, "cam-user", SECRET + "@x")
    assert SECRET not in str(b) and SECRET not in repr(b) and str(b) == "cam-user:***@broker:1887"


@pytest.mark.parametrize("spec", ["", "host:", "host:0", "host:65536", "host:port", "ho st", "a/b:1883",
                                  "http://host", f"user:{SECRET}@", f"user:{SECRET}@bad host:1",
                                  f":{SECRET}@host", "[::1", "host:1883:1"])
def test_garbage_broker_specs_are_one_clear_error(spec):
    with pytest.raises(TransposeLiveError, match="invalid MQTT broker") as err:
        MqttPublisher(spec)
    assert SECRET not in str(err.value)


def test_camera_names_are_safe_topic_levels():
    assert topic_name("front door") == "front_door"
    assert topic_name("a/b+c#d") == "a_b_c_d"
    assert topic_name("/#/") == "camera"


# ---------------------------------------------------------------------------------------------------------
# a real broker


@pytest.mark.timeout(30)
def test_the_subscriber_receives_exactly_the_events_and_the_summaries(broker, subscriber):
    publisher = MqttPublisher(f"127.0.0.1:{broker.port}", camera="front door")
    assert publisher.needs_image is False
    assert wait_until(lambda: publisher.connected, 5), "never connected"
    written = [{"event": "person_appeared", "id": 7, "timestamp": 0.04},
               {"event": "person_down", "id": 7, "timestamp": 2.5, "since": 0.5, "time": "2026-01-01T00:00:00.000Z"},
               {"event": "stream_lost", "camera": "front door", "timestamp": 3.0}]
    for i in range(10):
        publisher.write_frame(None, frame(i))
        if i % 4 == 1:
            publisher.write_event(written[i // 4])
    t = time.monotonic()
    publisher.close()
    assert time.monotonic() - t < 2.5
    assert wait_until(lambda: len(subscriber.on("/events")) >= 3 and len(subscriber.on("/poses")) >= 10, 5)
    time.sleep(0.2)                                    # nothing more comes
    events = subscriber.on("/events")
    assert [{k: v for k, v in e.items() if k != "time"} for e in events] == \
        [{k: v for k, v in e.items() if k != "time"} for e in written]
    assert all(e["time"].endswith("Z") and e["time"][:2] == "20" for e in events)
    assert events[1]["time"] == "2026-01-01T00:00:00.000Z"            # a given time is kept
    poses = subscriber.on("/poses")
    assert [p["frame"] for p in poses] == list(range(10))
    assert poses[3]["timestamp"] == pytest.approx(0.12)
    person = poses[3]["persons"][0]
    assert person["id"] == 7 and person["keypoints"][3] == [None, None, 0.8]
    assert subscriber.topics() == {"transpose-live/front_door/events", "transpose-live/front_door/poses"}
    assert publisher.frames_sent == 10 and publisher.frames_dropped == 0
    publisher.write_event({"event": "late"})                         # after close: ignored, no error
    publisher.abort()


@pytest.mark.timeout(40)
def test_a_lost_broker_never_blocks_and_queued_events_arrive_after_it_restarts(broker, subscriber, caplog):
    caplog.set_level(logging.INFO, logger="transpose_live.monitor.mqtt")
    publisher = MqttPublisher(f"monitor:{SECRET}@127.0.0.1:{broker.port}", camera="cam1")
    try:
        assert wait_until(lambda: publisher.connected, 5), "never connected"
        for i in range(3):
            publisher.write_event({"event": "e", "n": i})
            publisher.write_frame(None, frame(i))
        assert wait_until(lambda: len(subscriber.on("/events")) == 3, 5)
        time.sleep(0.3)                               # the broker saves the subscriber's session

        broker.kill()
        durations = []
        for i in range(3, 23):                        # one second of frames and events with no broker
            durations.append(timed(publisher.write_frame, None, frame(i)))
            if i % 4 == 0:
                durations.append(timed(publisher.write_event, {"event": "e", "n": i}))
            time.sleep(0.05)
        assert max(durations) < 0.05, f"a write took {max(durations):.3f} s"
        assert not publisher.connected and publisher.frames_dropped > 0 and publisher.queued > 0
        written = [0, 1, 2] + [i for i in range(3, 23) if i % 4 == 0]

        broker.start()                                # the same port
        assert wait_until(lambda: len(subscriber.on("/events")) >= len(written), 15), \
            f"got {[e['n'] for e in subscriber.on('/events')]}"
        time.sleep(0.3)
        got = [e["n"] for e in subscriber.on("/events")]
        assert sorted(got) == written                 # every event once, none lost
        assert publisher.connected and publisher.queued == 0
    finally:
        t = time.monotonic()
        publisher.close()
        assert time.monotonic() - t < 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "transpose_live.monitor.mqtt"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]          # once per outage
    assert any("is back" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text and "monitor:***@127.0.0.1" in caplog.text


@pytest.mark.timeout(30)
@pytest.mark.parametrize("host", ["127.0.0.1", "192.0.2.1"])          # refused; a documentation address
def test_an_unreachable_broker_at_start_is_harmless(host, caplog):
    caplog.set_level(logging.INFO, logger="transpose_live.monitor.mqtt")
    t = time.monotonic()
    publisher = MqttPublisher(f"user:{SECRET}@{host}:{free_port()}", camera="cam")
    assert time.monotonic() - t < 0.5
    durations = []
    for i in range(50):
        durations.append(timed(publisher.write_frame, None, frame(i)))
        durations.append(timed(publisher.write_event, {"event": "person_appeared", "id": i}))
    assert max(durations) < 0.05
    assert publisher.frames_dropped == 50 and publisher.queued == 50 and not publisher.connected
    t = time.monotonic()
    publisher.close()
    assert time.monotonic() - t < 3
    assert SECRET not in caplog.text


def test_the_event_queue_is_bounded_and_keeps_the_newest():
    publisher = MqttPublisher(f"127.0.0.1:{free_port()}", max_queued=5)
    try:
        for i in range(12):
            publisher.write_event({"event": "e", "n": i})
        assert publisher.queued == 5 and publisher.events_dropped == 7
        assert [json.loads(p)["n"] for p in publisher._queue] == [7, 8, 9, 10, 11]
    finally:
        publisher.close()


# ---------------------------------------------------------------------------------------------------------
# the settings of a real broker (no broker needed)


def test_mqtt_settings_from_the_command_line_over_cameras_yaml(tmp_path):
    from transpose_live.monitor.cameras import MqttConfig
    from transpose_live.monitor.publishing import plan_mqtt

    assert plan_mqtt(None) is None and plan_mqtt(None, user="x") is None         # no broker anywhere: no MQTT
    plain = plan_mqtt("broker")
    assert (plain.settings.broker, plain.settings.tls, plain.discovery, plain.prefix) == \
        (Broker("broker", 1883), False, True, "homeassistant")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    file = MqttConfig(host="filehost:1884", user="fileuser", password=SECRET, tls=str(ca), keepalive=7,
                      ha_discovery=False, ha_prefix="ha")
    merged = plan_mqtt(None, file=file)
    assert merged.settings.broker == Broker("filehost", 1884, "fileuser", SECRET)
    assert (merged.settings.tls, merged.settings.ca_file, merged.settings.keepalive) == (True, ca, 7)
    assert (merged.discovery, merged.prefix) == (False, "ha")
    cli = plan_mqtt("clihost", user="cliuser", password="pw2", tls=False, discovery=True, prefix="other", file=file)
    assert cli.settings.broker == Broker("clihost", 1883, "cliuser", "pw2") and not cli.settings.tls
    assert (cli.discovery, cli.prefix) == (True, "other")
    assert plan_mqtt("tlshost", tls=True).settings.broker.port == 8883                   # TLS's own port
    assert plan_mqtt("tlshost", ca_file=ca).settings.ca_file == ca                       # a CA file implies TLS
    assert SECRET not in str(merged.settings) and SECRET not in repr(merged)


@pytest.mark.parametrize("options, message", [
    ({"ca_file": "/nonexistent/ca.pem"}, "CA file not found"),
    ({"password": SECRET}, "needs a user name"),
    ({"user": " "}, "user name is empty"),
    ({"prefix": "home/+"}, "invalid Home Assistant discovery prefix"),
    ({"keepalive": 0}, "keep-alive"),
])
def test_bad_mqtt_settings_are_one_clear_error_without_the_password(options, message):
    from transpose_live.monitor.publishing import plan_mqtt

    with pytest.raises(TransposeLiveError, match=message) as err:
        plan_mqtt("broker", **options)
    assert SECRET not in str(err.value)


def test_the_cli_refuses_a_missing_ca_file_in_one_line_before_loading_anything(monkeypatch, capfd):
    from helpers import main_runner

    run = main_runner(monkeypatch, capfd, "rtsp")
    code, out, err = run(["rtsp://127.0.0.1:1/x", "--mqtt", "127.0.0.1", "--mqtt-ca", "/nonexistent/ca.pem",
                          "--mqtt-user", "u", "--mqtt-password", SECRET])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["error: MQTT TLS: CA file not found: /nonexistent/ca.pem (give the CA that "
                                        "signed the broker's certificate, or no file for the system's CAs)"]
    assert SECRET not in err
