"""Events and per-frame pose summaries on MQTT (paho-mqtt): one connection per process (`MqttLink`) and one
pipeline sink per camera (`MqttPublisher`).

Topics: `transpose-live/<camera>/poses` (one JSON summary per frame, records.frame_record, QoS 0) and
`transpose-live/<camera>/events` (the event records, with a wall-clock "time", QoS 1); every payload under
`transpose-live/` is one JSON document. The broker is someone else's machine: losing it, or never reaching it,
must not stop or slow the monitoring. So nothing here waits on the network and nothing raises into the
pipeline: paho's own thread connects and reconnects (1 s doubling to 30 s); while it is disconnected, summaries
are dropped (counted) and the newest `max_queued` events wait in a bounded queue, sent when the broker is back.
One warning per outage, one info line when it ends. Events are delivered at least once (QoS 1); across an
outage, the few written before the client noticed the loss (paho resends those) may arrive after the queued
ones: each carries its timestamp and time.

A broker that refuses the login (wrong user or password) or a TLS handshake that fails (an untrusted or wrong
certificate) will not get better by retrying: that is one warning line, the link stops, and the monitoring
goes on without MQTT. With `availability`, the link keeps `transpose-live/availability` retained at
{"state": "online"} while connected, and leaves {"state": "offline"} as its last will (the broker publishes
it when the process dies or loses the network) and on a clean close. A password is never logged or shown.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import secrets
import ssl
import sys
import threading
import time
from typing import Any, Callable, Protocol

import numpy as np
import paho.mqtt.client as mqtt

from transpose_live.media.records import frame_record
from transpose_live.media.sinks.base import Abortable, Event, EventSink, Sink
from transpose_live.media.sinks.jsonl import wall_clock
from transpose_live.media.sinks.outputs import SinkOpener
from transpose_live.monitor.broker import DEFAULT_PORT, Broker, MqttSettings, mqtt_settings, parse_broker
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

TOPIC_ROOT = "transpose-live"
AVAILABILITY_TOPIC = f"{TOPIC_ROOT}/availability"
ONLINE = b'{"state":"online"}'
OFFLINE = b'{"state":"offline"}'
# CONNACK reason codes that no retry can fix: bad user name or password, not authorized, bad authentication method
_LOGIN_REFUSED = (134, 135, 140)

# a message that arrived on a subscribed topic: (topic, payload, retained)
MessageHandler = Callable[[str, bytes, bool], None]


def topic_name(camera: str) -> str:
    """A camera name as one MQTT topic level: no wildcards (+ #), separators (/), control characters or
    spaces; empty → "camera"."""
    name = re.sub(r"[+#/\s\x00-\x1f\x7f]+", "_", str(camera)).strip("_")
    return name or "camera"


def json_payload(record: Any) -> bytes | None:
    """A record as compact JSON (numpy scalars as numbers); None, with a warning, when it is not JSON."""
    try:
        return json.dumps(record, allow_nan=False, separators=(",", ":"), default=_json_default).encode()
    except (TypeError, ValueError) as exc:
        log.warning("MQTT: a message that is not JSON was dropped (%s)", exc)
        return None


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)          # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class LinkUser(Protocol):
    """Something that publishes through a link and has work to do each time it connects (again)."""

    def link_up(self) -> tuple[int, int]:
        """Called in paho's thread once connected: (queued events sent, pose summaries dropped meanwhile)."""
        ...


class MqttLink:
    """One connection to the broker, shared by every camera's publisher and Home Assistant (so there is one
    availability, one outage warning and one login). Publishing never blocks; see the module docstring."""

    def __init__(self, settings: MqttSettings | str, client_id: str | None = None, *, availability: bool = False,
                 connect_timeout_s: float = 3.0):
        self.settings = settings if isinstance(settings, MqttSettings) else mqtt_settings(settings)
        self.broker = self.settings.broker
        self.availability_topic = AVAILABILITY_TOPIC if availability else None
        self._lock = threading.Lock()          # the users, the subscriptions and the state below
        self._users: list[LinkUser] = []
        self._handlers: dict[str, MessageHandler] = {}
        self._connected = False
        self._ever_connected = False
        self._outage_since: float | None = None    # monotonic start of the outage being reported
        self._failed: str | None = None            # why the link gave up for good
        self._closed = False

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"transpose-live-{secrets.token_hex(3)}")
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.settings.tls:
            # certificate and host name checked; no CA file: the system's trusted CAs
            client.tls_set(ca_certs=str(self.settings.ca_file) if self.settings.ca_file else None)
        if self.availability_topic is not None:
            client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.connect_timeout = connect_timeout_s
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        client.connect_async(self.broker.host, self.broker.port, self.settings.keepalive)
        client.loop_start()

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def ever_connected(self) -> bool:
        return self._ever_connected

    @property
    def failed(self) -> str | None:
        """Why the link gave up (a refused login, a failed TLS handshake), or None."""
        return self._failed

    def add_user(self, user: LinkUser) -> None:
        with self._lock:
            self._users.append(user)
        if self._connected:
            user.link_up()

    def remove_user(self, user: LinkUser) -> None:
        with self._lock:
            if user in self._users:
                self._users.remove(user)

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Call handler(topic, payload, retained) for each message on `topic` (wildcards allowed), from paho's
        thread; subscribed again after every reconnection."""
        with self._lock:
            self._handlers[topic] = handler
        if self._connected:
            self._client.subscribe(topic, qos=1)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> mqtt.MQTTMessageInfo | None:
        """Hand one message to paho; None when it did not go out (QoS 1 while reconnecting is kept by paho)."""
        if self._failed is not None or (self._closed and topic != self.availability_topic):
            return None
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except Exception as exc:       # never into the pipeline
            log.debug("MQTT publish failed: %s", exc)
            return None
        ok = info.rc == mqtt.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == mqtt.MQTT_ERR_NO_CONN)
        return info if ok else None

    # -- paho's thread. on_connect may take the users' locks: paho holds none of its message locks around it
    # (publish() from their side takes those after theirs, never the other way round)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            if reason_code.value in _LOGIN_REFUSED:
                name = self.broker.username
                self._give_up(f"login as {name!r} refused ({reason_code}): check the MQTT user and password"
                              if name else f"login refused ({reason_code}): it needs a user and password")
            else:
                self._lost(f"refused the connection: {reason_code}")
            return
        with self._lock:
            self._connected = True
            users, topics = list(self._users), list(self._handlers)
        if self.availability_topic is not None:
            client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        for topic in topics:
            client.subscribe(topic, qos=1)
        sent = dropped = 0
        for user in users:
            try:
                s, d = user.link_up()
            except Exception:           # one user's bug must not keep the others from the broker
                log.exception("MQTT: %s failed on connecting", type(user).__name__)
                continue
            sent, dropped = sent + s, dropped + d
        outage, self._outage_since = self._outage_since, None
        if outage is not None:
            log.info("MQTT broker %s is back after %.1f s: %d queued events sent, %d pose summaries dropped",
                     self.settings, time.monotonic() - outage, sent, dropped)
        elif not self._ever_connected:
            log.info("MQTT: connected to %s", self.settings)
        self._ever_connected = True

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        failure = sys.exception()       # paho calls this inside its `except OSError:` around the attempt
        if isinstance(failure, ssl.SSLCertVerificationError):
            self._give_up(f"TLS handshake refused: the broker's certificate is not trusted "
                          f"({failure.verify_message}); give the CA that signed it with --mqtt-ca CA_FILE "
                          "(tls: CA_FILE in cameras.yaml)")
        elif isinstance(failure, ssl.SSLError) and not isinstance(failure, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            self._give_up(f"TLS handshake failed ({failure.reason or failure}): is TLS on at port "
                          f"{self.broker.port}?")
        else:
            self._lost("is unreachable")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._lost("connection lost")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            handlers = [h for topic, h in self._handlers.items() if mqtt.topic_matches_sub(topic, message.topic)]
        for handler in handlers:
            try:
                handler(message.topic, bytes(message.payload), bool(message.retain))
            except Exception:           # never out into paho's thread (it would end it)
                log.exception("MQTT: handling a message on %s failed", message.topic)

    def _lost(self, why: str) -> None:
        self._connected = False
        if self._closed or self._failed is not None or self._outage_since is not None:
            return                              # one warning per outage
        self._outage_since = time.monotonic()
        log.warning("MQTT broker %s %s; retrying in the background (events are queued meanwhile)",
                    self.settings, why)

    def _give_up(self, why: str) -> None:
        with self._lock:
            if self._failed is not None or self._closed:
                return
            self._failed, self._connected = why, False
        log.warning("MQTT broker %s: %s; monitoring goes on without MQTT", self.settings, why)
        try:
            self._client.disconnect()           # ends paho's loop: no more attempts
        except Exception:
            pass

    # -- the end --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Say "offline" (when connected and keeping availability), disconnect, stop paho's thread; returns
        within about 1.5 s whatever the broker does."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.availability_topic is not None and self._connected:
            info = self.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            if info is not None:
                try:
                    info.wait_for_publish(timeout=1.0)
                except (RuntimeError, ValueError):  # the connection went meanwhile: the will says it
                    pass
        try:
            self._client.disconnect()
        except Exception:        # already gone
            pass
        # loop_stop joins paho's thread, which may sit in a connect() to a dead host: wait for it a while only
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(timeout=0.5)


class MqttPublisher(Sink, EventSink, Abortable):
    """A pipeline sink that publishes on `transpose-live/<camera>/poses` and `.../events` through a link:
    the process's shared one (`link=`), else one of its own to `broker` (closed with the publisher).

    needs_image is False; write_frame / write_event never block on the network and never raise for a
    broker that is down; close() sends what is pending for up to `flush_s`. Counters: frames_sent,
    frames_dropped, events_sent (handed to the client), events_dropped (queue overflow), `connected`,
    `queued` (events waiting for the broker).
    """

    needs_image = False

    def __init__(self, broker: str | MqttSettings | None = None, camera: str = "camera", client_id: str | None = None,
                 *, link: MqttLink | None = None, max_queued: int = 1000, max_pending_frames: int = 100,
                 keepalive: int = 30, flush_s: float = 2.0, connect_timeout_s: float = 3.0):
        if link is None:
            if broker is None:
                raise ValueError("MqttPublisher needs a broker or a link")
            settings = broker if isinstance(broker, MqttSettings) else mqtt_settings(broker, keepalive=keepalive)
            client_id = client_id or f"transpose-live-{topic_name(camera)}-{secrets.token_hex(3)}"
            link = MqttLink(settings, client_id, connect_timeout_s=connect_timeout_s)
            self._owns_link = True
        else:
            self._owns_link = False
        self._link = link
        self.broker: Broker = link.broker
        self.camera = topic_name(camera)
        self.poses_topic = f"{TOPIC_ROOT}/{self.camera}/poses"
        self.events_topic = f"{TOPIC_ROOT}/{self.camera}/events"
        self.flush_s = float(flush_s)
        self.max_pending_frames = int(max_pending_frames)
        self.frames_sent = self.frames_dropped = 0
        self.events_sent = self.events_dropped = 0

        self._lock = threading.Lock()          # the queue and the in-flight lists
        self._queue: collections.deque[bytes] = collections.deque(maxlen=max(1, int(max_queued)))
        self._frames_in_flight: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()   # oldest first
        self._events_in_flight: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()
        self._outage_frames = 0
        self._closed = False
        link.add_user(self)

    # -- state -----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def queued(self) -> int:
        return len(self._queue)

    def link_up(self) -> tuple[int, int]:
        """Connected (again): queued events go out; a reconnect dropped the unsent QoS 0 summaries."""
        with self._lock:
            self._frames_in_flight.clear()
            sent = self._send_queued()
            dropped, self._outage_frames = self._outage_frames, 0
        return sent, dropped

    # -- sink interface ----------------------------------------------------------------------------------

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        """The frame's summary on .../poses, or dropped (counted) when the broker is away or behind."""
        payload = json_payload(frame_record(result))
        with self._lock:
            _prune(self._frames_in_flight)
            if payload is None or self._closed or not self._link.connected:
                self.frames_dropped += 1
                self._outage_frames += 1
                return
            if len(self._frames_in_flight) >= self.max_pending_frames:    # connected, but the broker lags
                self.frames_dropped += 1
                return
            info = self._link.publish(self.poses_topic, payload, qos=0)
            if info is None:
                self.frames_dropped += 1
                return
            self._frames_in_flight.append(info)
            self.frames_sent += 1

    def write_event(self, record: Event) -> None:
        """One event on .../events with its wall-clock "time"; queued while the broker is away."""
        payload = json_payload({**record, "time": record.get("time") or wall_clock()})
        if payload is None:
            return
        with self._lock:
            if self._closed:
                return
            if len(self._queue) == self._queue.maxlen:
                self.events_dropped += 1        # the oldest goes
            self._queue.append(payload)
            if self._link.connected:
                self._send_queued()

    def close(self) -> None:
        """Send what is pending for up to flush_s (when the broker was ever reached), then let go of the link
        (closing it when it is this publisher's own); returns within about flush_s + 1.5 s."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._link.ever_connected and self._link.failed is None:
            deadline = time.monotonic() + self.flush_s
            while time.monotonic() < deadline:
                with self._lock:
                    if self._link.connected:
                        self._send_queued()
                    _prune(self._events_in_flight)
                    if not self._queue and not self._events_in_flight:
                        break
                time.sleep(0.02)
        with self._lock:
            _prune(self._events_in_flight)
            lost = len(self._queue) + len(self._events_in_flight)
        if lost and self._link.failed is None:
            log.warning("MQTT broker %s: %d events were not delivered", self.broker, lost)
        self._link.remove_user(self)
        if self._owns_link:
            self._link.close()

    def abort(self) -> None:
        self.close()

    def __enter__(self) -> "MqttPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers (the lock held) -------------------------------------------------------------------------

    def _send_queued(self) -> int:
        """Hand queued events to paho (QoS 1: paho keeps them until acknowledged, across reconnects)."""
        sent = 0
        while self._queue and self._link.connected and len(self._events_in_flight) < (self._queue.maxlen or 1):
            info = self._link.publish(self.events_topic, self._queue[0], qos=1)
            if info is None:
                break
            self._queue.popleft()
            self._events_in_flight.append(info)
            self.events_sent += 1
            sent += 1
        _prune(self._events_in_flight)
        return sent


def publisher_opener(broker: str, camera: str) -> SinkOpener:
    """An MqttPublisher with a link of its own, for open_outputs' `more`; a bad broker spec is an error now,
    before any output opens (monitor.publishing.MqttOutputs shares one link between cameras instead)."""
    parse_broker(broker)
    return lambda source: MqttPublisher(broker, camera=camera)


def _prune(in_flight: collections.deque[mqtt.MQTTMessageInfo]) -> None:
    """Drop the delivered messages from the front of an in-flight list."""
    while in_flight and in_flight[0].is_published():
        in_flight.popleft()


__all__ = ["MqttLink", "MqttPublisher", "LinkUser", "MessageHandler", "publisher_opener", "topic_name",
           "json_payload", "Broker", "parse_broker", "TOPIC_ROOT", "AVAILABILITY_TOPIC", "ONLINE", "OFFLINE",
           "DEFAULT_PORT"]
