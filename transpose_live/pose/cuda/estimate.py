"""The GPU path assembled: frame + person boxes -> Poses with every per-pixel step on the device.

    upload the uint8 frame once (pinned, non-blocking)  -> gpu_crops.crop_frame (one grid_sample for all persons)
    -> the model at a bucketed batch (gpu_graphs.GraphedModel: CUDA-graph replays on CUDA)
    -> gpu_decode.get_final_preds (argmax + DARK + back to the image, batched)
    -> one copy of (K, 17, 2) keypoints and (K, 17) peaks to the host

`DeviceEstimator` wraps a `PoseEstimator` (which keeps owning the model, its device, dtype and config)
and answers `estimate(frame, boxes, box_scores)` with the same Poses, so `following.PersonFollower`
and the pipeline can use either. Attention maps and the flip test go to the wrapped estimator's own
path (they are off by default and cost more than the crops do).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from transpose_live.model.folding import fold_batchnorm
from transpose_live.pose.cuda.crops import FrameUploader, crop_frame
from transpose_live.pose.cuda.decode import get_final_preds
from transpose_live.pose.cuda.graphs import DEFAULT_BUCKETS, GraphedModel
from transpose_live.types import Pose, box_tuple


class DeviceEstimator:
    """`PoseEstimator.estimate` with crops, batching and decoding on the estimator's device.

    estimator: a PoseEstimator. graphs: None = CUDA graphs on CUDA, eager elsewhere. buckets: the batch
    sizes graphs are captured for (more persons run in chunks of the largest).
    """

    def __init__(self, estimator, graphs: bool | None = None, buckets=DEFAULT_BUCKETS, warm_up=()):
        self.estimator = estimator       # PoseEstimator passes a weakref.proxy of itself: no reference cycle
        self.device = torch.device(estimator.device)
        self.dtype = estimator.dtype
        with self._on_device():
            # batch norms folded into the convolutions: 20 % of tp_r_a4's fp16 GPU time were BN kernels
            self.model = GraphedModel(fold_batchnorm(estimator.model)[0], buckets, use_graphs=graphs)
            self.uploader = FrameUploader(self.device)
        now = [b for b in warm_up if b in self.model.buckets]   # the buckets to capture now, the rest on first use
        if now:
            self.warm_up(now)

    def _on_device(self):
        """CUDA work on this estimator's GPU, not the current one (cuda:1 while cuda:0 is current: streams,
        events and graph captures would go to the wrong device)."""
        return torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()

    @property
    def config(self):
        return self.estimator.config

    def warm_up(self, buckets=None) -> None:
        """Capture the CUDA graphs now (a few seconds), so that no frame waits for a capture."""
        if self.model.use_graphs:
            with self._on_device():
                self.model.capture(self.config.image_size, buckets)

    @torch.inference_mode()
    def keypoints(self, frame_bgr: np.ndarray, centers: np.ndarray, scales: np.ndarray):
        """(K, 2) centers/scales -> keypoints (K, J, 2) float32 image px and raw peaks (K, J) float32 (numpy)."""
        in_h, in_w = self.config.image_size
        with self._on_device():
            x = crop_frame(self.uploader.upload(frame_bgr), centers, scales, (in_w, in_h), self.dtype)  # (K, 3, H, W)
            hm = self.model(x)                                                # (K, J, h, w)
            preds, peaks = get_final_preds(hm, centers, scales)               # on the device
            return preds.cpu().numpy(), peaks[..., 0].cpu().numpy()         # the one sync of the step

    def estimate(self, frame_bgr: np.ndarray, boxes=None, box_scores=None, attention: bool = False) -> list[Pose]:
        """Same contract as `PoseEstimator.estimate` (boxes (K, 4) x, y, w, h; None = the whole frame)."""
        if attention or self.estimator.flip:
            return self.estimator.estimate(frame_bgr, boxes, box_scores, attention)
        persons = self.estimator.prepare(frame_bgr, boxes, box_scores)
        if len(persons) == 0:
            return []
        preds, peaks = self.keypoints(persons.frame, persons.centers, persons.scales)
        return [
            Pose(keypoints=preds[i], scores=np.clip(peaks[i], 0.0, 1.0).astype(np.float32),
                 box=box_tuple(box), box_score=float(score))
            for i, (box, score) in enumerate(zip(persons.boxes, persons.box_scores))
        ]


__all__ = ["DeviceEstimator"]
