"""Events and per-frame pose summaries on MQTT (paho-mqtt), as a sink of the pipeline.

Topics: `transpose-live/<camera>/poses` (one JSON summary per frame, records.frame_record, QoS 0) and
`transpose-live/<camera>/events` (the event records, with a wall-clock "time", QoS 1). The broker is
someone else's machine: losing it, or never reaching it, must not stop or slow the monitoring. So nothing
here waits on the network and nothing raises into the pipeline: paho's own thread connects and reconnects
(1 s doubling to 30 s); while it is disconnected, summaries are dropped (counted) and the newest
`max_queued` events wait in a bounded queue, sent when the broker is back. One warning per outage, one
info line when it ends. Events are delivered at least once (QoS 1); across an outage, the few written
before the client noticed the loss (paho resends those) may arrive after the queued ones: each carries
its timestamp and time. A password in the broker spec (user:password@host:port) is never logged or shown.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np
import paho.mqtt.client as mqtt

from transpose_live.errors import TransposeLiveError
from transpose_live.media.records import frame_record
from transpose_live.media.redact import redact_url
from transpose_live.media.sinks.base import Abortable, Event, EventSink, Sink
from transpose_live.media.sinks.jsonl import wall_clock
from transpose_live.media.sinks.outputs import SinkOpener
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
TOPIC_ROOT = "transpose-live"
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")


@dataclass(frozen=True)
class Broker:
    """Where to publish: host, port and optional credentials (never part of str())."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = "" if self.username is None else f"{self.username}:***@" if self.password else f"{self.username}@"
        return f"{user}{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Broker({str(self)!r})"


def parse_broker(spec: str) -> Broker:
    """"host[:port]", "user:password@host[:port]" (percent-encoded where needed), "[::1]:1883", optionally
    with mqtt://. Anything else is a TransposeLiveError that shows the spec without its password."""
    text = str(spec).strip()
    shown = redact_url(text, bare=True)

    def bad(why: str) -> TransposeLiveError:
        return TransposeLiveError(f"invalid MQTT broker {shown!r}: {why} (expected HOST[:PORT], e.g. "
                                  f"localhost:1883, optionally USER:PASSWORD@HOST[:PORT])")

    if text.lower().startswith("mqtt://"):
        text = text[len("mqtt://"):]
    elif "://" in text:
        raise bad("only mqtt:// is supported")
    text = text.rstrip("/")
    username = password = None
    if "@" in text:
        userinfo, _, text = text.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user), (unquote(secret) if colon else None)
        if not username:
            raise bad("empty user name")
    port_text = None
    if text.startswith("["):                               # [IPv6]:port
        host, close, tail = text[1:].partition("]")
        if not close or not _IPV6.fullmatch(host) or (tail and not tail.startswith(":")):
            raise bad("bad IPv6 address")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text = text.partition(":")
        port_text = port_text if colon else None
        if not _HOST.fullmatch(host or ""):
            raise bad("bad host name" if host else "no host")
    port = DEFAULT_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise bad("the port must be a number from 1 to 65535")
        port = int(port_text)
    return Broker(host, port, username, password)


def topic_name(camera: str) -> str:
    """A camera name as one MQTT topic level: no wildcards (+ #), separators (/), control characters or
    spaces; empty → "camera"."""
    name = re.sub(r"[+#/\s\x00-\x1f\x7f]+", "_", str(camera)).strip("_")
    return name or "camera"


def _json_default(value):
    item = getattr(value, "item", None)          # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class MqttPublisher(Sink, EventSink, Abortable):
    """A pipeline sink that publishes on `transpose-live/<camera>/poses` and `.../events`.

    needs_image is False; write_frame / write_event never block on the network and never raise for a
    broker that is down; close() sends what is pending for up to `flush_s`, then disconnects. Counters:
    frames_sent, frames_dropped, events_sent (handed to the client), events_dropped (queue overflow),
    `connected`, `queued` (events waiting for the broker).
    """

    needs_image = False

    def __init__(self, broker: str, camera: str = "camera", client_id: str | None = None, *,
                 max_queued: int = 1000, max_pending_frames: int = 100, keepalive: int = 30,
                 flush_s: float = 2.0, connect_timeout_s: float = 3.0):
        self.broker = parse_broker(broker)
        self.camera = topic_name(camera)
        self.poses_topic = f"{TOPIC_ROOT}/{self.camera}/poses"
        self.events_topic = f"{TOPIC_ROOT}/{self.camera}/events"
        self.flush_s = float(flush_s)
        self.max_pending_frames = int(max_pending_frames)
        self.frames_sent = self.frames_dropped = 0
        self.events_sent = self.events_dropped = 0

        self._lock = threading.Lock()          # the queue, the connected flag, the in-flight lists
        self._queue: collections.deque[bytes] = collections.deque(maxlen=max(1, int(max_queued)))
        self._frames_in_flight: collections.deque = collections.deque()   # MQTTMessageInfo, oldest first
        self._events_in_flight: collections.deque = collections.deque()
        self._connected = False
        self._ever_connected = False
        self._outage_since: float | None = None   # monotonic start of the outage being reported
        self._outage_frames = 0
        self._closed = False

        client_id = client_id or f"transpose-live-{self.camera}-{secrets.token_hex(3)}"
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.broker.username is not None:
            self._client.username_pw_set(self.broker.username, self.broker.password)
        self._client.reconnect_delay_set(1, 30)
        self._client.connect_timeout = connect_timeout_s
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_async(self.broker.host, self.broker.port, keepalive)
        self._client.loop_start()

    # -- state -----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued(self) -> int:
        return len(self._queue)

    # paho's thread. on_connect may take our lock: paho holds none of its message locks around it
    # (publish() from our side takes those after ours, never the other way round)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._lost(f"refused the connection: {reason_code}")
            return
        with self._lock:
            self._frames_in_flight.clear()     # a reconnect drops unsent QoS 0 packets
            self._connected = True
            sent = self._send_queued()
            outage, dropped = self._outage_since, self._outage_frames
            self._outage_since, self._outage_frames = None, 0
        if outage is not None:
            log.info("MQTT broker %s is back after %.1f s: %d queued events sent, %d pose summaries dropped",
                     self.broker, time.monotonic() - outage, sent, dropped)
        elif not self._ever_connected:
            log.info("MQTT: publishing on %s/%s/... at %s", TOPIC_ROOT, self.camera, self.broker)
        self._ever_connected = True

    def _on_connect_fail(self, client, userdata) -> None:
        self._lost("is unreachable")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._lost("connection lost")

    def _lost(self, why: str) -> None:
        self._connected = False
        if self._closed or self._outage_since is not None:
            return                              # one warning per outage
        self._outage_since = time.monotonic()
        log.warning("MQTT broker %s %s; retrying in the background (events are kept, up to %d)",
                    self.broker, why, self._queue.maxlen)

    # -- sink interface ----------------------------------------------------------------------------------

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        """The frame's summary on .../poses, or dropped (counted) when the broker is away or behind."""
        payload = self._encode(frame_record(result))
        with self._lock:
            _prune(self._frames_in_flight)
            if payload is None or self._closed or not self._connected:
                self.frames_dropped += 1
                self._outage_frames += 1
                return
            if len(self._frames_in_flight) >= self.max_pending_frames:    # connected, but the broker lags
                self.frames_dropped += 1
                return
            info = self._publish(self.poses_topic, payload, qos=0)
            if info is None:
                self.frames_dropped += 1
                return
            self._frames_in_flight.append(info)
            self.frames_sent += 1

    def write_event(self, record: Event) -> None:
        """One event on .../events with its wall-clock "time"; queued while the broker is away."""
        payload = self._encode({**record, "time": record.get("time") or wall_clock()})
        if payload is None:
            return
        with self._lock:
            if self._closed:
                return
            if len(self._queue) == self._queue.maxlen:
                self.events_dropped += 1        # the oldest goes
            self._queue.append(payload)
            if self._connected:
                self._send_queued()

    def close(self) -> None:
        """Send what is pending for up to flush_s (when a broker was ever reached), then disconnect and
        stop the client's thread; returns within about flush_s + 0.5 s whatever the broker does."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._ever_connected:
            deadline = time.monotonic() + self.flush_s
            while time.monotonic() < deadline:
                with self._lock:
                    if self._connected:
                        self._send_queued()
                    _prune(self._events_in_flight)
                    if not self._queue and not self._events_in_flight:
                        break
                time.sleep(0.02)
        with self._lock:
            _prune(self._events_in_flight)
            lost = len(self._queue) + len(self._events_in_flight)
        if lost:
            log.warning("MQTT broker %s: %d events were not delivered", self.broker, lost)
        try:
            self._client.disconnect()
        except Exception:        # already gone
            pass
        # loop_stop joins paho's thread, which may sit in a connect() to a dead host: wait for it a while only
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(timeout=0.5)

    def abort(self) -> None:
        self.close()

    def __enter__(self) -> "MqttPublisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers (the lock held) -------------------------------------------------------------------------

    def _send_queued(self) -> int:
        """Hand queued events to paho (QoS 1: paho keeps them until acknowledged, across reconnects)."""
        sent = 0
        while self._queue and self._connected and len(self._events_in_flight) < self._queue.maxlen:
            info = self._publish(self.events_topic, self._queue[0], qos=1)
            if info is None:
                break
            self._queue.popleft()
            self._events_in_flight.append(info)
            self.events_sent += 1
            sent += 1
        _prune(self._events_in_flight)
        return sent

    def _publish(self, topic: str, payload: bytes, qos: int):
        try:
            info = self._client.publish(topic, payload, qos=qos)
        except Exception as exc:       # never into the pipeline
            log.debug("MQTT publish failed: %s", exc)
            return None
        # QoS 1 with NO_CONN is kept by paho and sent on reconnect; anything else did not go out
        ok = info.rc == mqtt.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == mqtt.MQTT_ERR_NO_CONN)
        return info if ok else None

    @staticmethod
    def _encode(record: dict) -> bytes | None:
        try:
            return json.dumps(record, allow_nan=False, separators=(",", ":"), default=_json_default).encode()
        except (TypeError, ValueError) as exc:
            log.warning("MQTT: an event that is not JSON was dropped (%s)", exc)
            return None


def publisher_opener(broker: str, camera: str) -> SinkOpener:
    """An MqttPublisher for open_outputs' `more`; a bad broker spec is an error now, before any output opens."""
    parse_broker(broker)
    return lambda source: MqttPublisher(broker, camera=camera)


def _prune(in_flight: collections.deque) -> None:
    """Drop the delivered messages from the front of an in-flight list."""
    while in_flight and in_flight[0].is_published():
        in_flight.popleft()


__all__ = ["MqttPublisher", "publisher_opener", "Broker", "parse_broker", "topic_name", "TOPIC_ROOT", "DEFAULT_PORT"]
