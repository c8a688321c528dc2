"""The cameras of `transpose-live monitor`: from URLs on the command line or a Frigate-like YAML file.

    cameras:
      front_door:
        url: rtsp://admin:${FRONT_PASSWORD}@10.0.0.5:554/stream1   # ${VAR}: from the environment
        detect_every: 2          # optional, else the command's --detect-every
        record: true             # optional: segments of the annotated stream (needs --record-dir)
        mask:                    # optional: polygons (frame pixels) where nobody is tracked
          - [[0, 0], [640, 0], [640, 80], [0, 80]]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transpose_live.errors import TransposeLiveError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class CameraConfig:
    name: str
    url: str
    detect_every: int | None = None
    record: bool = False
    mask: list[np.ndarray] = field(default_factory=list)     # (K, 2) float polygons


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
    """Cameras named cam1, cam2, ... in the order given."""
    return [CameraConfig(f"cam{i}", url) for i, url in enumerate(urls, 1)]


def load_config(path: str | os.PathLike) -> list[CameraConfig]:
    """The cameras of a YAML file (see the module's docstring); every problem is one clear error."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise TransposeLiveError(f"camera config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TransposeLiveError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    cameras = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cameras, dict) or not cameras:
        raise TransposeLiveError(f"{path}: expected a 'cameras:' mapping of name -> settings")
    out, seen = [], set()
    for raw_name, settings in cameras.items():
        where = f"{path.name}: camera {raw_name!r}"
        if isinstance(settings, str):
            settings = {"url": settings}
        if not isinstance(settings, dict) or not isinstance(settings.get("url"), str):
            raise TransposeLiveError(f"{where} needs a url")
        unknown = set(settings) - {"url", "detect_every", "record", "mask"}
        if unknown:
            raise TransposeLiveError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        name = camera_name(str(raw_name))
        if name in seen:
            raise TransposeLiveError(f"{where}: two cameras are named {name!r}")
        seen.add(name)
        every = settings.get("detect_every")
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise TransposeLiveError(f"{where}: detect_every must be a whole number >= 1")
        out.append(CameraConfig(name, expand_env(settings["url"], where), every, bool(settings.get("record")),
                                _polygons(settings.get("mask"), where)))
    return out


def _polygons(value, where: str) -> list[np.ndarray]:
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
            raise TransposeLiveError(f"{where}: a mask is a list of at least 3 [x, y] points")
        out.append(points)
    return out


__all__ = ["CameraConfig", "camera_name", "expand_env", "from_urls", "load_config"]
