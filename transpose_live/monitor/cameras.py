"""The cameras of `transpose-live monitor`: from URLs on the command line or a Frigate-like YAML file.

    cameras:
      front_door:
        url: rtsp://admin:${FRONT_PASSWORD}@10.0.0.5:554/stream1   # ${VAR}: from the environment
        detect_every: 2          # optional, else the command's --detect-every
        record: true             # optional: segments of the annotated stream (needs --record-dir)
        mask:                    # optional: polygons (frame pixels) where nobody is tracked
          - [[0, 0], [640, 0], [640, 80], [0, 80]]
        ignore_down:             # optional: polygons where lying down is normal (a bed, a sofa): no person_down
          - [[400, 300], [640, 300], [640, 480], [400, 480]]
    mqtt:                        # optional: the broker (command-line options win over these keys)
      host: broker.lan           # HOST[:PORT], like --mqtt
      user: monitor              # --mqtt-user
      password: ${MQTT_PASSWORD} # --mqtt-password
      tls: true                  # --mqtt-tls: true (the system's CAs) or a CA file
      keepalive: 30              # seconds; the broker says "offline" for us 1.5 x this after we vanish
      ha_discovery: true         # --ha-discovery / --no-ha-discovery
      ha_prefix: homeassistant   # --ha-prefix
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources.open import check_stream_url, is_url

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
SECTIONS = ("cameras", "mqtt", "cluster")    # cluster: read by cli/cluster_options.py (monitor --cluster)
CAMERA_KEYS = ("url", "detect_every", "record", "mask", "ignore_down")


@dataclass
class CameraConfig:
    name: str
    url: str
    detect_every: int | None = None
    record: bool = False
    mask: list[np.ndarray] = field(default_factory=list)     # (K, 2) float polygons
    ignore_down: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class MqttConfig:
    """The `mqtt:` keys of cameras.yaml, checked for type only (monitor.publishing merges them with the
    command line and validates the whole)."""

    host: str | None = None
    user: str | None = None
    password: str | None = None
    tls: bool | str | None = None
    keepalive: int | None = None
    ha_discovery: bool | None = None
    ha_prefix: str | None = None


@dataclass
class MonitorConfig:
    """Everything cameras.yaml says."""

    cameras: list[CameraConfig]
    mqtt: MqttConfig | None = None


def camera_name(text: str) -> str:
    """A name usable in file names and MQTT topics."""
    name = _NAME.sub("_", text).strip("_.")
    return name or "camera"


def expand_env(text: str, where: str) -> str:
    """${VAR} from the environment; a missing one is an error that names the variable (never a value)."""
    def value(match: re.Match) -> str:
        found = os.environ.get(match.group(1))
        if found is None:
            raise TransposeLiveError(f"{where}: environment variable {match.group(1)} is not set")
        return found

    return _ENV.sub(value, text)


def from_urls(urls: list[str]) -> list[CameraConfig]:
    """Cameras named cam1, cam2, ... in the order given; a URL no source reads (no host, an unknown scheme)
    is an error here, before anything starts."""
    return [CameraConfig(f"cam{i}", _checked_url(url, f"camera {i}")) for i, url in enumerate(urls, 1)]


def _checked_url(url: str, where: str) -> str:
    """A camera's URL, refused at once when no source could ever read it (it would be retried forever);
    what is not written as a URL (a file, a camera index) is left to open_source."""
    try:
        return check_stream_url(url) if is_url(url) else url
    except TransposeLiveError as exc:
        raise TransposeLiveError(f"{where}: {exc}") from None


def _refuse_unknown(keys: Any, known: tuple[str, ...], where: str, what: str = "setting") -> None:
    """One error naming every key not in `known`, each with the nearest known one when there is one
    (`urll` → did you mean url?), and the known keys."""
    unknown = [str(key) for key in keys if key not in known]
    if not unknown:
        return
    named = []
    for key in unknown:
        near = difflib.get_close_matches(key, known, n=1)
        named.append(f"{key} (did you mean {near[0]}?)" if near else key)
    raise TransposeLiveError(f"{where}: unknown {what}(s) {', '.join(named)}; known: {', '.join(known)}")


def load_config(path: str | os.PathLike) -> list[CameraConfig]:
    """The cameras of a YAML file (see the module's docstring); every problem is one clear error."""
    return load_monitor_config(path).cameras


def load_monitor_config(path: str | os.PathLike) -> MonitorConfig:
    """The cameras and the MQTT settings of a YAML file; every problem is one clear error."""
    import yaml  # deferred: only a --config run parses YAML

    path = Path(path)
    if not path.is_file():
        raise TransposeLiveError(f"camera config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TransposeLiveError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict):
        _refuse_unknown(data, SECTIONS, path.name, "section")      # `camera:` is a misspelt section, not none
    cameras = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cameras, dict) or not cameras:
        raise TransposeLiveError(f"{path}: expected a 'cameras:' mapping of name -> settings")
    mqtt = _mqtt(data.get("mqtt"), f"{path.name}: mqtt") if "mqtt" in data else None
    out, seen = [], set()
    for raw_name, settings in cameras.items():
        where = f"{path.name}: camera {raw_name!r}"
        if isinstance(settings, str):
            settings = {"url": settings}
        if isinstance(settings, dict):
            _refuse_unknown(settings, CAMERA_KEYS, where)          # `urll:` is a misspelt url, not a missing one
        if not isinstance(settings, dict) or not isinstance(settings.get("url"), str):
            raise TransposeLiveError(f"{where} needs a url")
        name = camera_name(str(raw_name))
        if name in seen:
            raise TransposeLiveError(f"{where}: two cameras are named {name!r}")
        seen.add(name)
        every = settings.get("detect_every")
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise TransposeLiveError(f"{where}: detect_every must be a whole number >= 1")
        url = _checked_url(expand_env(settings["url"], where), where)
        out.append(CameraConfig(name, url, every, bool(settings.get("record")),
                                _polygons(settings.get("mask"), where),
                                _polygons(settings.get("ignore_down"), where, "an ignore_down zone")))
    return MonitorConfig(out, mqtt)


_MQTT_KEYS: dict[str, tuple[type, ...]] = {
    "host": (str,), "user": (str,), "password": (str,), "tls": (bool, str), "keepalive": (int,),
    "ha_discovery": (bool,), "ha_prefix": (str,)}


def _mqtt(value: Any, where: str) -> MqttConfig:
    """The mqtt: section: a mapping of the keys above (or just "host[:port]"); ${VAR} in its texts."""
    if isinstance(value, str):
        value = {"host": value}
    if not isinstance(value, dict):
        raise TransposeLiveError(f"{where}: expected a mapping ({', '.join(_MQTT_KEYS)})")
    _refuse_unknown(value, tuple(_MQTT_KEYS), where)
    keys: dict[str, Any] = {}
    for key, item in value.items():
        kinds = _MQTT_KEYS[key]
        if item is None:
            continue
        if not isinstance(item, kinds) or (isinstance(item, bool) and bool not in kinds):
            names = " or ".join("true/false" if k is bool else k.__name__ for k in kinds)
            raise TransposeLiveError(f"{where}: {key} must be {names}")
        keys[key] = expand_env(item, f"{where}.{key}") if isinstance(item, str) else item
    return MqttConfig(**keys)


def _polygons(value: Any, where: str, what: str = "a mask") -> list[np.ndarray]:
    if value is None:
        return []
    polygons = value if isinstance(value, list) and value and isinstance(value[0], list) and value[0] \
        and isinstance(value[0][0], list) else [value]
    out = []
    for polygon in polygons:
        try:
            points = np.asarray(polygon, np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            points = np.zeros((0, 2))
        if len(points) < 3 or not np.isfinite(points).all():
            raise TransposeLiveError(f"{where}: {what} is a list of at least 3 [x, y] points")
        out.append(points)
    return out


__all__ = ["CameraConfig", "MqttConfig", "MonitorConfig", "camera_name", "expand_env", "from_urls", "load_config",
           "load_monitor_config"]
