"""COCO keypoint detection results: the list pycocotools' loadRes reads, written whole when the run ends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from transpose_live.media.records import coco_results
from transpose_live.media.sinks.base import Abortable, Sink
from transpose_live.media.sinks.target import OutputTarget, write_json
from transpose_live.types import FrameResult


class CocoResultsWriter(Sink, Abortable):
    """COCO keypoint detection results (the list pycocotools' loadRes reads), written when closed: per
    person image_id (the frame index unless `image_id_fn` says), category_id 1, keypoints, score."""

    needs_image = False

    def __init__(self, path: str | os.PathLike, image_id_fn: Callable[[FrameResult], int] | None = None):
        self.path = Path(path)
        self._image_id = image_id_fn or (lambda result: int(result.index))
        self._out = OutputTarget(path, "COCO results")
        self.records: list[dict] = []
        self._closed = False

    def write(self, result: FrameResult) -> None:
        self.records += coco_results(result.poses, int(self._image_id(result)))

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        self.write(result)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        write_json(self._out, self.records)

    def abort(self) -> None:
        """After a failure: nothing is written under the final name."""
        self._closed = True
        self._out.discard()

    def __enter__(self) -> "CocoResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CocoResultsWriter"]
