"""Home Assistant over MQTT against a real mosquitto configured here as a real broker is: a password file (no
anonymous clients) and a TLS listener whose CA and server certificate `openssl` makes in the test. Discovery
configs arrive retained and valid and reach a late subscriber; Home Assistant's `online` brings them again; a
removed camera's configs are cleared; the fall sensor follows a lying-then-standing track through the real
event code; a wrong password and an untrusted certificate are one line each; a SIGKILLed monitor is `offline`
on the availability topic (its last will). Skips, saying why, without mosquitto or openssl."""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from transpose_live.media.sinks import OutputDispatcher
from transpose_live.monitor.events import PoseEvents
from transpose_live.monitor.publishing import MqttOutputs, plan_mqtt
from transpose_live.types import FrameResult, Pose

from helpers import MOSQUITTO, REPO, accepting, free_port, wait_until

USER, PASSWORD = "monitor", "pa55-w0rd-xyz"
OPENSSL = shutil.which("openssl")
PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


# ---------------------------------------------------------------------------------------------------------
# the broker: password file + TLS listener, once for this file


class SecureBroker:
    def __init__(self, folder: Path):
        self.folder, self.port, self.tls_port = folder, free_port(), free_port()
        self.ca = folder / "ca.crt"
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def make(self) -> None:
        f = self.folder

        def openssl(*args: str) -> None:
            subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=f)

        # a CA and a server certificate for 127.0.0.1 / localhost that it signed (EC keys: fast to make)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=transpose-live test CA")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
        (f / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
        subprocess.run([PASSWD, "-b", "-c", str(f / "passwd"), USER, PASSWORD], check=True, capture_output=True)
        (f / "mosquitto.conf").write_text(
            f"per_listener_settings false\nallow_anonymous false\npassword_file {f}/passwd\n"
            f"user {getpass.getuser()}\n"                 # as root, stay root (else it cannot read its files)
            f"listener {self.port} 127.0.0.1\n"
            f"listener {self.tls_port} 127.0.0.1\ncafile {f}/ca.crt\ncertfile {f}/server.crt\n"
            f"keyfile {f}/server.key\n")

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf"), "-v"],
                                            stdout=log, stderr=subprocess.STDOUT)
        up = wait_until(lambda: (accepting(self.port) and accepting(self.tls_port)) or self.process.poll() is not None,
                        5.0)
        if not up or self.process.poll() is not None:
            self.kill()
            pytest.fail(f"mosquitto did not start:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture(scope="module")
def secure(tmp_path_factory) -> SecureBroker:
    if not os.access(MOSQUITTO, os.X_OK) or not os.access(PASSWD, os.X_OK):
        pytest.skip(f"needs the mosquitto broker and mosquitto_passwd ({MOSQUITTO}; Debian package mosquitto)")
    if OPENSSL is None:
        pytest.skip("needs openssl to make the test's CA and server certificate")
    broker = SecureBroker(tmp_path_factory.mktemp("secure-broker"))
    broker.make()
    broker.start()
    yield broker
    broker.kill()


class Listener:
    """A client of the test (TLS, the password): every message on `topics` as (topic, payload, retained)."""

    def __init__(self, broker: SecureBroker, *topics: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-listener-{free_port()}")
        self.client.username_pw_set(USER, PASSWORD)
        self.client.tls_set(ca_certs=str(broker.ca))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.tls_port)
        self.client.loop_start()
        assert self.ready.wait(5), "the test listener did not subscribe"

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json(self, topic: str) -> list:
        return [json.loads(p) for p in self.on(topic) if p]

    def configs(self) -> dict[str, dict]:
        """The newest non-empty config per discovery topic."""
        with self._lock:
            return {t: json.loads(p) for t, p, _ in self.messages if t.endswith("/config") and p}

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listen(secure):
    made: list[Listener] = []

    def start(*topics: str) -> Listener:
        made.append(Listener(secure, *topics))
        return made[-1]

    yield start
    for listener in made:
        listener.close()


def tls_plan(secure: SecureBroker, **options):
    return plan_mqtt(f"127.0.0.1:{secure.tls_port}", user=USER, password=PASSWORD, ca_file=secure.ca, **options)


def clear_retained(listen, prefix: str = "homeassistant") -> None:
    """Empty every retained message this file's runs left (the broker lives for the whole file)."""
    listener = listen("transpose-live/#", f"{prefix}/#")
    time.sleep(0.3)
    for topic in {t for t, p, retained in listener.messages if retained and p}:
        listener.publish(topic, b"", retain=True)


ENTITIES = {"binary_sensor/transpose_live_front_door/person", "binary_sensor/transpose_live_front_door/fall",
            "sensor/transpose_live_front_door/persons", "sensor/transpose_live_front_door/fps",
            "sensor/transpose_live_front_door/stream"}


# ---------------------------------------------------------------------------------------------------------
# discovery


@pytest.mark.timeout(30)
def test_discovery_configs_arrive_retained_and_valid_and_a_late_subscriber_gets_them(secure, listen):
    clear_retained(listen)
    with MqttOutputs(tls_plan(secure), ["front door"], model="tp_r_a4") as published:
        assert wait_until(lambda: published.link.connected, 5), "never connected over TLS with the password"
        time.sleep(0.3)
        late = listen("homeassistant/#", "transpose-live/#")          # subscribes after they were published
        assert wait_until(lambda: len(late.configs()) == 5, 5), late.messages
        configs = late.configs()
        assert {t.removeprefix("homeassistant/").removesuffix("/config") for t in configs} == ENTITIES
        assert all(retained for t, _, retained in late.messages if t.endswith("/config"))
        ids = set()
        for topic, config in configs.items():
            entity = topic.split("/")[-2]
            assert config["unique_id"] == f"transpose_live_front_door_{entity}"
            ids.add(config["unique_id"])
            assert config["device"]["identifiers"] == ["transpose_live_front_door"]
            assert config["device"]["name"] == "front door" and "tp_r_a4" in config["device"]["model"]
            assert config["device"]["sw_version"]
            assert config["state_topic"] == f"transpose-live/front_door/{entity}"
            assert config["availability"] == [{"topic": "transpose-live/availability",
                                               "value_template": "{{ value_json.state }}"}]
        assert len(ids) == 5
        assert configs["homeassistant/binary_sensor/transpose_live_front_door/person/config"]["device_class"] \
            == "occupancy"
        assert configs["homeassistant/binary_sensor/transpose_live_front_door/fall/config"]["device_class"] == "safety"
        # the states are retained too: a restarted Home Assistant sees them
        assert late.json("transpose-live/availability") == [{"state": "online"}]
        assert late.json("transpose-live/front_door/stream") == [{"state": "connecting"}]
        assert late.json("transpose-live/front_door/persons") == [0]
        assert late.json("transpose-live/front_door/fall")[0]["state"] == "OFF"
    final = listen("transpose-live/availability")
    assert wait_until(lambda: final.json("transpose-live/availability") == [{"state": "offline"}], 5)


@pytest.mark.timeout(30)
def test_home_assistant_coming_online_makes_the_configs_come_again(secure, listen):
    with MqttOutputs(tls_plan(secure), ["front door"]) as published:
        assert wait_until(lambda: published.link.connected, 5)
        watcher = listen("homeassistant/+/+/+/config")
        assert wait_until(lambda: len(watcher.messages) == 5, 5)              # the retained ones
        watcher.publish("homeassistant/status", b"offline")
        time.sleep(0.3)
        assert len(watcher.messages) == 5                                     # offline: nothing to do
        watcher.publish("homeassistant/status", b"online")
        assert wait_until(lambda: len(watcher.messages) == 10, 5)
        assert not any(retained for _, _, retained in watcher.messages[5:])   # sent live, not replayed
        assert {t for t, _, _ in watcher.messages[5:]} == {t for t, _, _ in watcher.messages[:5]}


@pytest.mark.timeout(30)
def test_a_camera_removed_from_the_list_has_its_configs_and_states_cleared(secure, listen):
    clear_retained(listen)
    with MqttOutputs(tls_plan(secure), ["front door", "garage"], prune=True) as first:
        assert wait_until(lambda: first.link.connected, 5)
        time.sleep(0.3)
    watcher = listen("homeassistant/#", "transpose-live/+/fall")
    assert wait_until(lambda: len(watcher.configs()) == 10, 5)
    with MqttOutputs(tls_plan(secure), ["front door"], prune=True) as second:       # garage left cameras.yaml
        assert wait_until(lambda: second.link.connected, 5)
        garage = [t for t in watcher.configs() if "transpose_live_garage" in t]
        assert wait_until(lambda: all(watcher.on(t)[-1] == b"" for t in garage), 5)
        assert wait_until(lambda: watcher.on("transpose-live/garage/fall")[-1:] == [b""], 5)
        time.sleep(0.3)
    late = listen("homeassistant/#")
    time.sleep(0.5)
    assert {t.split("/")[2] for t, p, _ in late.messages if p} == {"transpose_live_front_door"}


# ---------------------------------------------------------------------------------------------------------
# the fall sensor, through the real event code


T, GROUND = 60.0, 400.0


def body(shoulder, hip, ankle) -> np.ndarray:
    kp = np.empty((17, 2), np.float32)
    kp[[5, 6]], kp[[11, 12]], kp[[15, 16]] = shoulder, hip, ankle
    kp[0:5], kp[[7, 8, 9, 10]], kp[[13, 14]] = shoulder, hip, (np.add(hip, ankle) / 2)
    return kp


STANDING = body((200, GROUND - 2.7 * T), (200, GROUND - 1.7 * T), (200, GROUND))
LYING = body((200, GROUND - 0.15 * T), (200 + T, GROUND - 0.15 * T), (200 + 2.7 * T, GROUND - 0.05 * T))


def feed(outputs: OutputDispatcher, events: PoseEvents, postures: list[tuple[float, np.ndarray | None]],
         fps=10.0):
    """One tracked person (id 7) through `postures` (seconds, keypoints or None: not in the frame), frame by
    frame, then the end."""
    i = 0
    for seconds, kp in postures:
        for _ in range(int(seconds * fps)):
            poses = [] if kp is None else [Pose(kp.copy(), np.full(17, 0.9, np.float32), track_id=7)]
            result = FrameResult(i, i / fps, poses)
            outputs.write_frame(None, result)
            for record in events.update(result):
                outputs.publish(record)
            i += 1
    for record in events.finish((i - 1) / fps):
        outputs.publish(record)


@pytest.mark.timeout(30)
def test_the_fall_sensor_goes_on_at_person_down_and_off_at_person_up(secure, listen):
    watcher = listen("transpose-live/front_door/#")
    with MqttOutputs(tls_plan(secure), ["front door"]) as published:
        assert wait_until(lambda: published.link.connected, 5)
        sinks = [opener(None) for opener in published.for_camera("front door")]
        outputs = OutputDispatcher(sinks)
        feed(outputs, PoseEvents(down_seconds=1.0, up_seconds=0.5),
             [(1.0, STANDING), (2.0, LYING), (1.5, STANDING)])
        outputs.finish(keep=True)
        assert wait_until(lambda: len(watcher.json("transpose-live/front_door/events")) >= 4, 5)
        assert wait_until(lambda: watcher.json("transpose-live/front_door/stream")[-1] == {"state": "stopped"}, 5)
    falls = [(f["state"], f["reason"]) for f in watcher.json("transpose-live/front_door/fall")]
    assert falls[-2:] == [("ON", "person_down"), ("OFF", "person_up")]
    on = [f for f in watcher.json("transpose-live/front_door/fall") if f["state"] == "ON"]
    assert on[0]["id"] == 7 and on[0]["down_ids"] == [7] and on[0]["since"] == pytest.approx(1.0)
    people = [p["state"] for p in watcher.json("transpose-live/front_door/person")]
    assert people[-2:] == ["ON", "OFF"] and watcher.json("transpose-live/front_door/persons")[-2:] == [1, 0]
    streams = [s["state"] for s in watcher.json("transpose-live/front_door/stream")]
    assert streams[-2:] == ["live", "stopped"]
    events = [e["event"] for e in watcher.json("transpose-live/front_door/events")]
    assert events == ["person_appeared", "person_down", "person_up", "person_left"]


@pytest.mark.timeout(30)
def test_the_fall_sensor_goes_off_when_the_person_leaves_or_the_stream_is_lost_and_not_in_an_ignore_zone(
        secure, listen):
    watcher = listen("transpose-live/front_door/fall")
    bed = np.array([[150, 350], [400, 350], [400, 420], [150, 420]], float)    # around the lying torso
    with MqttOutputs(tls_plan(secure), ["front door"]) as published:
        assert wait_until(lambda: published.link.connected, 5)
        camera = published.ha.camera("front door")
        outputs = OutputDispatcher([camera])
        feed(outputs, PoseEvents(down_seconds=1.0), [(2.0, LYING), (1.5, None)])
        outputs.publish({"event": "person_down", "id": 3, "timestamp": 9.0})
        outputs.publish({"event": "stream_lost", "reason": "no answer for 10 s"})
        feed(outputs, PoseEvents(down_seconds=1.0, ignore_down=[bed]), [(3.0, LYING)])     # on the bed: no fall
        assert wait_until(lambda: len(watcher.json("transpose-live/front_door/fall")) >= 5, 5)
        time.sleep(0.3)
    falls = [(f["state"], f["reason"]) for f in watcher.json("transpose-live/front_door/fall")]
    first = falls.index(("ON", "person_down"))
    assert falls[first:first + 4] == [("ON", "person_down"), ("OFF", "person_left"), ("ON", "person_down"),
                                      ("OFF", "stream_lost")]
    assert ("ON", "person_down") not in falls[first + 4:]


# ---------------------------------------------------------------------------------------------------------
# brokers that say no: one line each, monitoring goes on


def one_mqtt_warning(caplog) -> str:
    warnings = [r.getMessage() for r in caplog.records
                if r.name.startswith("transpose_live.monitor") and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    return warnings[0]


@pytest.mark.timeout(30)
def test_a_wrong_password_is_one_line_and_the_publisher_goes_on_without_mqtt(secure, caplog):
    caplog.set_level(logging.INFO, logger="transpose_live.monitor")
    plan = plan_mqtt(f"127.0.0.1:{secure.port}", user=USER, password="not-" + PASSWORD)
    with MqttOutputs(plan, ["cam"]) as published:
        assert wait_until(lambda: published.link.failed is not None, 5)
        publisher = published.for_camera("cam")[0](None)
        for i in range(20):                                       # never raises, never blocks
            publisher.write_frame(None, FrameResult(i, i / 10, []))
            publisher.write_event({"event": "person_appeared", "id": i})
        time.sleep(1.5)                                           # no second attempt, no second line
        publisher.close()
    line = one_mqtt_warning(caplog)
    assert "login as 'monitor' refused" in line and "without MQTT" in line
    assert PASSWORD not in caplog.text


@pytest.mark.timeout(30)
def test_an_untrusted_certificate_is_one_line(secure, caplog):
    caplog.set_level(logging.INFO, logger="transpose_live.monitor")
    plan = plan_mqtt(f"127.0.0.1:{secure.tls_port}", user=USER, password=PASSWORD, tls=True)   # the system's CAs
    with MqttOutputs(plan, ["cam"]) as published:
        assert wait_until(lambda: published.link.failed is not None, 5)
        time.sleep(1.5)
    line = one_mqtt_warning(caplog)
    assert "certificate is not trusted" in line and "--mqtt-ca" in line and "without MQTT" in line
    assert PASSWORD not in caplog.text


# ---------------------------------------------------------------------------------------------------------
# the monitor itself: cameras.yaml's mqtt keys, SIGKILL -> the last will


@pytest.mark.timeout(90)
def test_a_killed_monitor_is_offline_within_the_keepalive(secure, listen, tiny_weights, tmp_path):
    clear_retained(listen)
    (tmp_path / "cameras.yaml").write_text(
        "cameras:\n"
        f"  porch:\n    url: rtsp://127.0.0.1:{free_port()}/none\n"
        "    ignore_down: [[[0, 300], [640, 300], [640, 480], [0, 480]]]\n"
        f"mqtt:\n  host: 127.0.0.1:{secure.tls_port}\n  user: {USER}\n  password: ${{TEST_MQTT_PASSWORD}}\n"
        f"  tls: {secure.ca}\n  keepalive: 2\n")
    watcher = listen("transpose-live/availability", "homeassistant/+/transpose_live_porch/+/config")
    env = {**{k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")},
           "TEST_MQTT_PASSWORD": PASSWORD}
    command = ["monitor", "--config", str(tmp_path / "cameras.yaml"), "--log-dir", str(tmp_path / "logs"),
               "--model", "tp_m_a4", "--weights", str(tiny_weights), "--device", "cpu", "--detector", "none",
               "--timeout", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "transpose_live", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        assert wait_until(lambda: watcher.json("transpose-live/availability")[-1:] == [{"state": "online"}], 30), \
            proc.stderr.read() if proc.poll() is not None else "no online"
        assert wait_until(lambda: len(watcher.configs()) == 5, 5)
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert wait_until(lambda: watcher.json("transpose-live/availability")[-1:] == [{"state": "offline"}], 3 + 1)
        assert time.monotonic() - killed < 1.5 * 2 + 1                # within the broker's keep-alive grace
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert PASSWORD not in err
