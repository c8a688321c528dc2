"""RunSpec: every option of a run in one object, validated once, shared by the API, the CLI and the window.

The field names are the CLI's option names (`--detect-every` is `detect_every`), so
`transpose_live.process_video("in.mp4", out="out.mp4", detect_every=3)` and
`transpose-live video in.mp4 --out out.mp4 --detect-every 3` mean the same run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from transpose_live.detect import parse_detector_spec
from transpose_live.errors import TransposeLiveError
from transpose_live.model.backends import OPENVINO_PRECISIONS, check_backend_name, check_precision_name
from transpose_live.model.config import parse_image_size
from transpose_live.model.device import resolve_device_name

# A person's score is its box score x its mean joint score (as in the COCO evaluation). Below this no
# pose is output by any command: it drops the background crops the detector boxed with low confidence
# (person scores 0.02-0.03 on photos). Measured on coco_mini, default model, SSD boxes, flip test: AP
# 0.2543 at 0 and at 0.05 (117 -> 115 poses), 0.2516 at 0.1, 0.2412 at 0.2 (docs/MODEL_CARD.md).
DEFAULT_MIN_PERSON_SCORE = 0.05
DEFAULT_MIN_JOINT_SCORE = 0.2     # joints drawn and counted at or above this


@dataclass
class RunSpec:
    """What a run does. `model` "default" is the shipped checkpoint; `detector` "ssd" | "none" | "onnx:FILE"."""

    # the model
    model: str = "default"
    weights: str | None = None                  # a checkpoint file for `model`'s preset
    device: str = "auto"                        # auto | cpu | cuda | cuda:N
    backend: str = "auto"                       # auto | torch | onnxruntime | openvino (the forward pass)
    # precision: auto (fp16 on CUDA; CPU: mixed on bf16 CPUs, else fp32) | fp32 | mixed | bf16
    precision: str = "auto"
    image_size: tuple[int, int] | None = None   # (h, w) model input; None: the weights' own
    flip: bool = False                          # flip test: twice the crops, a little more accurate
    # finding persons
    detector: str = "ssd"
    # detector every N frames; poses carry the boxes between. 2: on vtest.avi 95.8 % of the every-frame persons
    # kept (OKS >= 0.5, mean OKS 0.93), fewer ids, the pipeline ~1.2x faster (docs/MODEL_CARD.md, Tracking)
    detect_every: int = 2
    # also detect on N square windows along a wide frame's long side (finds persons far away; N+1 detector
    # calls; detect/tiles.py). 0: the whole frame only
    detect_tiles: int = 0
    # the detector on its own thread beside the pose step; its boxes join a frame or two late (detect_beside.py)
    detect_async: bool = False
    min_person_score: float = DEFAULT_MIN_PERSON_SCORE
    # over time
    smooth: bool = True
    smooth_strength: float = 0.5
    # drawing
    attention: bool = False                     # compute and draw the dependency areas (slower)
    joint: str | None = None                    # only this joint's dependency area (implies attention)
    min_joint_score: float = DEFAULT_MIN_JOINT_SCORE
    boxes: bool = False                         # outline the person boxes
    ids: bool = True                            # track ids next to the persons
    hud: bool = False                           # fps / latency / persons in the corner
    # which frames
    start: float | None = None                  # seconds into a file
    end: float | None = None
    max_frames: int | None = None
    duration: float | None = None               # seconds of running, then the run ends as if the source had
    # the pipeline's inner workings (no CLI option)
    queue_size: int = 4                         # frames waiting between two stages (files; live uses 1)
    follow_min_score: float = 0.3               # a followed person whose mean joint score drops below is lost
    follow_pad: float = 0.1                     # a followed box: the joints' extent grown by this per side

    @classmethod
    def from_options(cls, spec: "RunSpec | None" = None, **options) -> "RunSpec":
        """`spec` (or the defaults) with `options` changed, validated. Unknown names are one clear error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TransposeLiveError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                     f"known: {', '.join(sorted(known))}")
        base = spec if spec is not None else cls()
        return dataclasses.replace(base, **options).validate()

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    def validate(self) -> "RunSpec":
        """Check every option once (cheap: no model is loaded); returns self, normalised."""
        from transpose_live.skeleton import KEYPOINT_NAMES  # deferred: it loads numpy, which --help never needs

        self.model = (self.model or "default").strip()
        if self.weights is not None:
            self.weights = str(self.weights)
            if not Path(self.weights).expanduser().is_file():
                raise TransposeLiveError(f"weights file not found: {self.weights}")
        self.device = resolve_device_name(self.device) if self.device != "auto" else "auto"
        self.backend = check_backend_name(self.backend)
        self.precision = check_precision_name(self.precision)
        if self.precision in OPENVINO_PRECISIONS and self.backend not in ("auto", "openvino"):
            raise TransposeLiveError(f"precision {self.precision} runs on the openvino backend, not {self.backend}")
        parse_detector_spec(self.detector)
        _whole("detect_every", self.detect_every, 1)
        _whole("detect_tiles", self.detect_tiles, 0)
        if self.detect_tiles and parse_detector_spec(self.detector)[0] == "none":
            raise TransposeLiveError("detect_tiles needs a detector (not none)")
        if self.max_frames is not None:
            _whole("max_frames", self.max_frames, 1)
        _whole("queue_size", self.queue_size, 1)
        for name in ("min_person_score", "min_joint_score", "smooth_strength", "follow_min_score"):
            _fraction(name, getattr(self, name))
        if not 0.0 <= self.follow_pad <= 2.0:
            raise TransposeLiveError(f"follow_pad must be between 0 and 2, got {self.follow_pad}")
        if self.image_size is not None:
            self.image_size = parse_image_size(self.image_size)
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise TransposeLiveError(f"duration must be a number of seconds > 0, got {self.duration}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise TransposeLiveError(f"{name} must be a number of seconds >= 0, got {value}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise TransposeLiveError(f"end ({self.end:g} s) must come after start ({self.start:g} s)")
        if self.joint is not None:
            if self.joint not in KEYPOINT_NAMES:
                raise TransposeLiveError(f"joint must be one of {', '.join(KEYPOINT_NAMES)}, got {self.joint!r}")
            self.attention = True
        return self


def _whole(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise TransposeLiveError(f"{name} must be a whole number >= {least}, got {value!r}")


def _fraction(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise TransposeLiveError(f"{name} must be between 0 and 1, got {value!r}")


__all__ = ["RunSpec", "DEFAULT_MIN_PERSON_SCORE", "DEFAULT_MIN_JOINT_SCORE"]
