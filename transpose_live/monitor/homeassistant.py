"""Home Assistant sees every camera by itself: MQTT discovery (retained configs under
`<prefix>/<component>/transpose_live_<camera>/<entity>/config`), one device per camera, and the states of its
entities on their own topics under `transpose-live/<camera>/`, each one JSON document:

    entity            component      topic                          payload                                  retained
    Person            binary_sensor  transpose-live/<cam>/person   {"state": "ON"|"OFF", "ids": [...]}         yes
    Fall              binary_sensor  transpose-live/<cam>/fall     {"state": "ON"|"OFF", "reason", "id", ...}  yes
    Persons           sensor         transpose-live/<cam>/persons  2                                           yes
    FPS               sensor         transpose-live/<cam>/fps      9.8                                         no
    Stream            sensor (enum)  transpose-live/<cam>/stream   {"state": "live"|..., "reason"}             yes

Every entity is available while the process's link says {"state": "online"} on `transpose-live/availability`
(its last will says "offline"). Fall's device class is `safety` (on means unsafe: Home Assistant shows
"Unsafe" / "Safe"), not `problem`, which Home Assistant uses for devices that malfunction.

What turns them on and off: Person is on while anyone is tracked (person_appeared ... person_left, so a
person unseen for less than the tracker's grace keeps it on) and Persons counts them; Fall is on at a
person_down and off at that person's person_up, or when they leave, or when the stream is lost, fails or the
run stops (the reason is in its attributes); FPS comes with the pipeline's periodic stats event; Stream is
connecting until the first frame, then live / reconnecting / failed, and stopped at the end.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Sequence

import numpy as np

from transpose_live import __version__
from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks.base import Abortable, Event, EventSink, Sink
from transpose_live.media.sinks.jsonl import wall_clock
from transpose_live.monitor.mqtt import AVAILABILITY_TOPIC, TOPIC_ROOT, MqttLink, json_payload, topic_name
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "homeassistant"
NODE_PREFIX = "transpose_live_"
STREAM_STATES = ("connecting", "live", "reconnecting", "failed", "stopped")
FPS_EXPIRE_S = 60          # the FPS sensor turns unavailable when no stats event came for this long
_PREFIX = re.compile(r"[^\s+#]+(/[^\s+#]+)*")


def check_prefix(prefix: str) -> str:
    """A discovery prefix: topic levels without wildcards or spaces (Home Assistant's default: homeassistant)."""
    text = str(prefix).strip()
    if not _PREFIX.fullmatch(text):
        raise TransposeLiveError(f"invalid Home Assistant discovery prefix {prefix!r}: one or more topic levels "
                                 "without + # or spaces, e.g. homeassistant")
    return text


def object_id(camera: str) -> str:
    """A camera name as Home Assistant's node and object ids want it: letters, digits, _ and -."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(camera)).strip("_") or "camera"


class HomeAssistant:
    """The process's side of discovery, over one link: announces the entities of every camera (retained), again
    each time the link connects and whenever Home Assistant says `online` on `<prefix>/status`, and keeps the last
    state of each entity to say it again after a reconnection. prune: clear the retained configs (and states)
    of transpose-live cameras that are not in `cameras` (a camera removed from cameras.yaml)."""

    def __init__(self, link: MqttLink, cameras: Sequence[str], prefix: str = DEFAULT_PREFIX,
                 model: str = "default", prune: bool = False):
        self.link = link
        self.prefix = check_prefix(prefix)
        self.model = model
        self._lock = threading.Lock()        # the cameras and the last states
        self._states: dict[str, bytes] = {}  # retained state topic -> last payload
        self._cameras: dict[str, HomeAssistantCamera] = {}
        for name in cameras:
            self.camera(name)
        link.subscribe(f"{self.prefix}/status", self._on_status)
        if prune:
            link.subscribe(f"{self.prefix}/+/+/+/config", self._on_config)
        link.add_user(self)

    def camera(self, name: str) -> HomeAssistantCamera:
        """The sink of one camera (made once: the same object for every run of that camera)."""
        node = NODE_PREFIX + object_id(name)
        with self._lock:
            camera = self._cameras.get(node)
            if camera is None:
                camera = self._cameras[node] = HomeAssistantCamera(self, name)
                fresh = True
            else:
                fresh = False
        if fresh and self.link.connected:
            self._announce([camera])
        return camera

    # -- the link's side --------------------------------------------------------------------------------------

    def link_up(self) -> tuple[int, int]:
        with self._lock:
            cameras = list(self._cameras.values())
        self._announce(cameras)
        return 0, 0

    def _announce(self, cameras: Sequence[HomeAssistantCamera]) -> None:
        """Configs first (Home Assistant subscribes to the state topics they name), then the last states."""
        for camera in cameras:
            for topic, config in camera.configs():
                self.link.publish(topic, json.dumps(config, separators=(",", ":")).encode(), qos=1, retain=True)
            camera.announce_states()

    def _on_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip().lower() == b"online":         # Home Assistant (re)started: say everything again
            log.info("Home Assistant is online: sending the discovery configs again")
            self.link_up()

    def _on_config(self, topic: str, payload: bytes, retained: bool) -> None:
        """A discovery config on the broker: one of a transpose-live camera no longer configured is cleared."""
        levels = topic[len(self.prefix) + 1:].split("/")
        if len(levels) != 4 or not payload or not levels[1].startswith(NODE_PREFIX):
            return
        with self._lock:
            ours = levels[1] in self._cameras
        if ours:
            return
        log.info("Home Assistant: clearing %s (a camera no longer configured)", topic)
        self.link.publish(topic, b"", qos=1, retain=True)
        try:
            config = json.loads(payload)
        except ValueError:
            return
        for key in ("state_topic", "json_attributes_topic"):
            state = config.get(key) if isinstance(config, dict) else None
            if isinstance(state, str) and state.startswith(f"{TOPIC_ROOT}/"):
                self.link.publish(state, b"", qos=1, retain=True)

    # -- states ---------------------------------------------------------------------------------------------------

    def publish_state(self, topic: str, payload: bytes, retain: bool = True) -> None:
        """One entity's state: kept (retained ones) and sent now when connected, else at the next connection."""
        if retain:
            with self._lock:
                self._states[topic] = payload
        if self.link.connected:
            self.link.publish(topic, payload, qos=1 if retain else 0, retain=retain)

    def last_state(self, topic: str) -> bytes | None:
        with self._lock:
            return self._states.get(topic)


class HomeAssistantCamera(Sink, EventSink, Abortable):
    """One camera's entities: a pipeline sink that turns frames and events into their states (see the module
    docstring). Events may come from two threads (the last stage, the stream's reader): one lock."""

    needs_image = False

    def __init__(self, ha: HomeAssistant, camera: str):
        self.ha = ha
        self.name = str(camera)
        self.node = NODE_PREFIX + object_id(camera)
        base = f"{TOPIC_ROOT}/{topic_name(camera)}"
        self.topics = {entity: f"{base}/{entity}" for entity in ("person", "fall", "persons", "fps", "stream")}
        self._lock = threading.Lock()
        self._present: set[int] = set()
        self._down: dict[int, Event] = {}          # id -> its person_down
        self._stream = "connecting"
        self._stream_reason: str | None = None
        self._fall: dict[str, Any] = {"state": "OFF", "reason": "started"}
        self._closed = False

    # -- discovery ----------------------------------------------------------------------------------------------

    def configs(self) -> list[tuple[str, dict[str, Any]]]:
        """(config topic, config) for each entity."""
        device = {"identifiers": [self.node], "name": self.name, "manufacturer": "transpose-live",
                  "model": f"TransPose pose monitor ({self.ha.model})", "sw_version": __version__}
        common = {"device": device, "origin": {"name": "transpose-live", "sw_version": __version__},
                  "availability": [{"topic": AVAILABILITY_TOPIC, "value_template": "{{ value_json.state }}"}]}
        t = self.topics
        json_state = {"value_template": "{{ value_json.state }}"}
        entities: list[tuple[str, str, dict[str, Any]]] = [
            ("binary_sensor", "person", {"name": "Person", "device_class": "occupancy", "state_topic": t["person"],
                                         **json_state, "json_attributes_topic": t["person"],
                                         "payload_on": "ON", "payload_off": "OFF"}),
            ("binary_sensor", "fall", {"name": "Fall", "device_class": "safety", "state_topic": t["fall"],
                                       **json_state, "json_attributes_topic": t["fall"],
                                       "payload_on": "ON", "payload_off": "OFF"}),
            ("sensor", "persons", {"name": "Persons", "state_topic": t["persons"], "state_class": "measurement",
                                   "icon": "mdi:account-multiple"}),
            ("sensor", "fps", {"name": "FPS", "state_topic": t["fps"], "state_class": "measurement",
                               "unit_of_measurement": "fps", "suggested_display_precision": 1,
                               "entity_category": "diagnostic", "expire_after": FPS_EXPIRE_S}),
            ("sensor", "stream", {"name": "Stream", "device_class": "enum", "options": list(STREAM_STATES),
                                  "state_topic": t["stream"], **json_state, "json_attributes_topic": t["stream"],
                                  "entity_category": "diagnostic", "icon": "mdi:cctv"}),
        ]
        return [(f"{self.ha.prefix}/{component}/{self.node}/{entity}/config",
                 {**config, "unique_id": f"{self.node}_{entity}", **common})
                for component, entity, config in entities]

    def announce_states(self) -> None:
        """Every state as it is now (the link connected: Home Assistant may have missed them)."""
        with self._lock:
            self._send_presence()
            self._send_fall()
            self._send_stream()

    # -- the sink -------------------------------------------------------------------------------------------------

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        with self._lock:
            if self._stream == "connecting" and not self._closed:      # the first frame: the stream is live
                self._stream, self._stream_reason = "live", None
                self._send_stream()

    def write_event(self, record: Event) -> None:
        kind, track_id = record.get("event"), record.get("id")
        with self._lock:
            if self._closed:
                return
            if kind == "person_appeared" and isinstance(track_id, int):
                self._present.add(track_id)
                self._send_presence()
            elif kind == "person_left" and isinstance(track_id, int):
                self._present.discard(track_id)
                self._send_presence()
                if self._down.pop(track_id, None) is not None:
                    self._fall_changed("person_left", record)
            elif kind == "person_down" and isinstance(track_id, int):
                self._down[track_id] = record
                self._fall_changed("person_down", record)
            elif kind == "person_up" and isinstance(track_id, int):
                if self._down.pop(track_id, None) is not None:
                    self._fall_changed("person_up", record)
            elif kind in ("stream_lost", "stream_failed"):
                self._stream = "reconnecting" if kind == "stream_lost" else "failed"
                self._stream_reason = str(record.get("reason", "")) or None
                self._send_stream()
                if self._down:
                    self._down.clear()
                    self._fall_changed(kind, record)
            elif kind == "stream_back":
                self._stream, self._stream_reason = "live", None
                self._send_stream()
            elif kind == "stats" and record.get("fps") is not None:
                payload = json_payload(record["fps"])
                if payload is not None:
                    self.ha.publish_state(self.topics["fps"], payload, retain=False)

    def set_stream(self, state: str, reason: str | None = None) -> None:
        """The stream's state from outside the pipeline (a camera that failed before any frame)."""
        if state not in STREAM_STATES:
            raise ValueError(f"stream state must be one of {STREAM_STATES}, got {state!r}")
        with self._lock:
            self._stream, self._stream_reason = state, reason
            self._send_stream()

    def close(self) -> None:
        """The run has ended: nobody is tracked, nobody is down, the stream is stopped (failed: abort)."""
        self._end("stopped")

    def abort(self) -> None:
        self._end("failed")

    def _end(self, stream: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._present:                  # nobody is tracked once the run is over
                self._present.clear()
                self._send_presence()
            if self._down:
                self._down.clear()
                self._fall_changed(stream, {})
            if self._stream != "failed":
                self._stream, self._stream_reason = stream, None
            self._send_stream()

    # -- states (the lock held) ------------------------------------------------------------------------------

    def _fall_changed(self, reason: str, record: Event) -> None:
        """Fall is on while anyone is down; the attributes say why it last changed."""
        fall: dict[str, Any] = {"state": "ON" if self._down else "OFF", "reason": reason, "time": wall_clock()}
        for key in ("id", "timestamp", "since"):
            if record.get(key) is not None:
                fall[key] = record[key]
        fall["down_ids"] = sorted(self._down)
        self._fall = fall
        self._send_fall()

    def _send_presence(self) -> None:
        ids = sorted(self._present)
        self.ha.publish_state(self.topics["person"], _encode({"state": "ON" if ids else "OFF", "ids": ids}))
        self.ha.publish_state(self.topics["persons"], _encode(len(ids)))

    def _send_fall(self) -> None:
        self.ha.publish_state(self.topics["fall"], _encode(self._fall))

    def _send_stream(self) -> None:
        state: dict[str, Any] = {"state": self._stream}
        if self._stream_reason:
            state["reason"] = self._stream_reason
        self.ha.publish_state(self.topics["stream"], _encode(state))


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


__all__ = ["HomeAssistant", "HomeAssistantCamera", "check_prefix", "object_id", "DEFAULT_PREFIX", "NODE_PREFIX",
           "STREAM_STATES", "FPS_EXPIRE_S"]
