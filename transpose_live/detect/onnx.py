"""A person detector from a YOLO ONNX export, run by onnxruntime.

Accepted models: one image input (B, 3, H, W) float32 and a first output in one of two layouts
(person = class 0, as in COCO's 80-class order):

- ``yolov8`` (Ultralytics YOLOv8/v11 `export(format="onnx")` without NMS): (1, 4 + C, N), rows
  cx, cy, w, h in input pixels then C class scores already passed through a sigmoid; no objectness.
  (1, N, 4 + C) is read too. Input: RGB scaled to 0..1, letterboxed in the centre with grey 114.
- ``yolox`` (Megvii YOLOX `tools/export_onnx.py`): (1, N, 5 + C), columns cx, cy, w, h, objectness,
  C class scores (both already sigmoid). The export's default is *raw* boxes (decode_in_inference off):
  cx, cy are offsets in grid cells and w, h log sizes over the strides 8, 16, 32, decoded here as
  xy = (xy + grid) * stride, wh = exp(wh) * stride. Exports that decode in the graph (pixels) work as is;
  which one a file is, is told from the values (raw offsets stay within a few cells of 0). Input: BGR 0..255
  without normalisation, letterboxed at the top-left with grey 114 (YOLOX's `preproc`; the legacy
  mean/std-normalised models are not supported). Score = objectness × person score.

`layout="auto"` picks yolov8 for channels-first outputs and tells channels-last ones by their width
(84 → yolov8, 85 → yolox, the 80-class COCO heads); other widths need the layout named
(`--detector yolov8:FILE` / `yolox:FILE`). Exports with NMS in the graph are not accepted.
A fixed input size is read from the model; a dynamic one uses `input_size`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from transpose_live.detect.base import Detections, as_bgr, check_score, nms
from transpose_live.detect.onnx_session import open_onnx_session
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import clip_boxes

LAYOUTS = ("auto", "yolov8", "yolox")
YOLOX_STRIDES = (8, 16, 32)
PAD_VALUE = 114


def letterbox(frame: np.ndarray, size_wh: tuple[int, int], center: bool) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio into a grey (114) canvas; returns (canvas, scale, (pad_x, pad_y))."""
    h, w = frame.shape[:2]
    in_w, in_h = size_wh
    r = min(in_w / w, in_h / h)
    nw, nh = max(1, int(round(w * r))), max(1, int(round(h * r)))
    pad_x, pad_y = ((in_w - nw) // 2, (in_h - nh) // 2) if center else (0, 0)
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, np.uint8)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, r, (pad_x, pad_y)


def yolox_grid(size_wh: tuple[int, int], strides: Sequence[int] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell origins (N, 2) and strides (N, 1) in YOLOX's anchor order (stride by stride, row-major)."""
    grids, steps = [], []
    for s in strides:
        gw, gh = size_wh[0] // s, size_wh[1] // s
        xv, yv = np.meshgrid(np.arange(gw), np.arange(gh))
        grids.append(np.stack([xv, yv], -1).reshape(-1, 2))
        steps.append(np.full((gw * gh, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


class OnnxDetector:
    """Persons from a YOLOv8 or YOLOX ONNX file (see the module docstring for the accepted layouts)."""

    def __init__(
        self,
        path: str | Path,
        layout: str = "auto",
        min_score: float = 0.3,
        nms_iou: float = 0.5,
        input_size: tuple[int, int] = (640, 640),
        min_box_size: float = 4.0,
        providers: Sequence[str] | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise TransposeLiveError(f"ONNX detector file not found: {path}")
        if layout not in LAYOUTS:
            raise TransposeLiveError(f"unknown ONNX detector layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
        self.path = path
        self.layout = layout
        self.min_score = check_score("min_score", min_score)
        self.nms_iou = check_score("nms_iou", nms_iou)
        self.min_box_size = float(min_box_size)
        self.session = open_onnx_session(path, "ONNX detector", providers)
        inp = self.session.get_inputs()[0]
        channels = inp.shape[1] if len(inp.shape) == 4 else None
        if len(inp.shape) != 4 or (isinstance(channels, int) and channels != 3):
            raise TransposeLiveError(f"ONNX detector {path.name}: expected one (B, 3, H, W) input, got {inp.shape}")
        self.input_name = inp.name
        h, w = inp.shape[2], inp.shape[3]
        self.input_size: tuple[int, int] = (w, h) if isinstance(w, int) and isinstance(h, int) \
            else (int(input_size[0]), int(input_size[1]))
        self.dynamic_batch = not isinstance(inp.shape[0], int)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        if self.layout == "auto":
            self.layout = self._guess_layout(self._output_shape())

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        return self.detect_batch([frame_bgr])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        frames = [as_bgr(f) for f in frames]
        # YOLOX places the image at the top-left, Ultralytics in the centre
        boxed = [letterbox(f, self.input_size, center=self.layout == "yolov8") for f in frames]
        groups = [boxed] if self.dynamic_batch else [[b] for b in boxed]
        outputs: list[np.ndarray] = []
        for group in groups:
            if group:
                outputs.extend(self._run([b[0] for b in group]))
        return [self._decode(o, f, b[1], b[2]) for o, f, b in zip(outputs, frames, boxed)]

    def _run(self, canvases: list[np.ndarray]) -> list[np.ndarray]:
        x = np.stack(canvases).astype(np.float32)          # (B, H, W, 3) BGR 0..255
        if self.layout == "yolov8":
            x = x[..., ::-1] / 255.0
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))   # (B, 3, H, W)
        out = np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32)
        if out.ndim != 3:
            raise TransposeLiveError(
                f"ONNX detector {self.path.name}: expected a (B, rows, cols) output, got {out.shape}")
        return list(out)

    def _output_shape(self) -> tuple[int, int]:
        """(rows, cols) of one image's output: from the graph when static, else from one blank run."""
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 3 and all(isinstance(v, int) for v in shape[1:]):
            return shape[1], shape[2]
        if len(shape) != 3:
            raise TransposeLiveError(f"ONNX detector {self.path.name}: expected a (B, rows, cols) output, got {shape}")
        blank = np.full((self.input_size[1], self.input_size[0], 3), PAD_VALUE, np.uint8)
        return self._run([blank])[0].shape

    def _guess_layout(self, shape: tuple[int, int]) -> str:
        a, b = shape
        if a < b:
            return "yolov8"
        if b == 84:
            return "yolov8"
        if b == 85:
            return "yolox"
        raise TransposeLiveError(
            f"ONNX detector {self.path.name}: cannot tell the layout of output (1, {a}, {b}); "
            "name it as yolov8:FILE or yolox:FILE"
        )

    def _decode(self, out: np.ndarray, frame: np.ndarray, scale: float, pad: tuple[int, int]) -> Detections:
        if self.layout == "yolov8":
            rows = out.T if out.shape[0] < out.shape[1] else out   # (N, 4 + C)
            if rows.shape[1] < 5:
                raise TransposeLiveError(f"ONNX detector {self.path.name}: yolov8 output needs 4 + C columns")
            xywh, score = rows[:, :4], rows[:, 4]
        else:
            if out.shape[1] < 6:
                raise TransposeLiveError(f"ONNX detector {self.path.name}: yolox output needs 5 + C columns")
            xywh, score = out[:, :4].copy(), out[:, 4] * out[:, 5]
            if self._is_raw_yolox(out):
                assert self._grid is not None   # made by _is_raw_yolox
                grid, stride = self._grid
                xywh[:, :2] = (xywh[:, :2] + grid) * stride
                xywh[:, 2:] = np.exp(np.minimum(xywh[:, 2:], 20.0)) * stride
        keep = score >= self.min_score
        xywh, score = xywh[keep], score[keep]
        # (cx, cy, w, h) on the letterboxed input → corners in the frame
        x1y1 = (xywh[:, :2] - xywh[:, 2:] / 2 - np.array(pad, np.float32)) / scale
        x2y2 = x1y1 + xywh[:, 2:] / scale
        h, w = frame.shape[:2]
        boxes = clip_boxes(np.concatenate([x1y1, x2y2], axis=1), w, h)
        big = (boxes[:, 2] >= self.min_box_size) & (boxes[:, 3] >= self.min_box_size)
        return nms(boxes[big], score[big], self.nms_iou, self.min_score)

    def _is_raw_yolox(self, out: np.ndarray) -> bool:
        if self._grid is None:
            self._grid = yolox_grid(self.input_size)
        if len(out) != len(self._grid[0]):
            return False
        # raw centres are cell offsets (near 0..1); decoded ones are pixels spread over the input
        return float(np.median(np.abs(out[:, 0]))) < 4.0
