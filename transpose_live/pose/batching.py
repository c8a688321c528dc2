"""SharedEstimator: one model for many camera pipelines, their person crops batched per forward pass.

Each caller (a pipeline's model thread) validates its boxes and crops its persons in its own thread,
hands the input tensor to ONE forward worker thread, and decodes its own poses from the slice of
heatmaps it gets back; only the forward pass is shared:

    caller:  prepare -> crop_inputs -> submit ........................ wait -> decode -> Poses
    worker:                      gather (max_wait_ms, max_batch crops) -> forward -> hand out slices

Requests that want attention maps and requests that don't are batched separately (the maps take the
slower, non-fused attention path, and its heatmaps differ in the last float bits), and so are
requests made with and without the flip test. A caller's crops are never split across forward
passes except to respect max_batch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.model.config import ModelConfig
from transpose_live.pose.estimator import BoxesLike, PoseEstimator, ScoresLike
from transpose_live.types import Pose

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class BatchStats:
    """Counters since the SharedEstimator was made: forward passes run, requests and crops they served, the
    seconds spent in them; and the requests waiting for the worker now."""

    forwards: int = 0
    requests: int = 0
    crops: int = 0
    waiting: int = 0
    busy_s: float = 0.0

    @property
    def mean_batch(self) -> float:
        """Crops per forward pass (0.0 before the first)."""
        return self.crops / self.forwards if self.forwards else 0.0


class _Request:
    """One caller's crops (B, 3, H, W) waiting for the worker; `result()` blocks until answered. The arrays are
    of the estimator's type (`PoseEstimator.arrays`: numpy on the graph runtimes, torch tensors on torch)."""

    __slots__ = ("x", "key", "submitted", "_done", "_hm", "_attn", "_error")

    def __init__(self, x: Any, key: tuple[bool, bool]):
        self.x = x
        self.key = key                      # (attention, flip): only equal keys share a forward pass
        self.submitted = time.monotonic()
        self._done = threading.Event()
        self._hm: Any = None
        self._attn: Any = None
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def finish(self, hm: Any, attn: Any) -> None:
        self._hm, self._attn = hm, attn
        self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    def result(self) -> tuple[Any, Any]:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._hm is not None   # the event is set by finish() (heatmaps) or fail() (an error)
        return self._hm, self._attn


class SharedEstimator:
    """A PoseEstimator shared by many threads; `estimate` has PoseEstimator.estimate's signature and results.

    max_batch: most crops in one forward pass (the flip test doubles what the model sees);
    max_wait_ms: how long the worker waits after the first request of a batch for others to join.
    `close()` stops the worker (callers still waiting get a TransposeLiveError); the worker is a
    daemon thread, so a forgotten close never keeps the process alive.
    """

    def __init__(self, estimator: PoseEstimator, max_batch: int = 32, max_wait_ms: float = 5.0):
        if not isinstance(estimator, PoseEstimator):
            raise TransposeLiveError(f"SharedEstimator wraps a PoseEstimator, got {type(estimator).__name__}")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise TransposeLiveError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not max_wait_ms >= 0:
            raise TransposeLiveError(f"max_wait_ms must be >= 0, got {max_wait_ms!r}")
        self.estimator = estimator
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._cond = threading.Condition()
        self._pending: list[_Request] = []   # FIFO; guarded by _cond
        self._closed = False
        self._stats = BatchStats()
        self._thread = threading.Thread(target=self._work, name="transpose-live-forward", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the PoseEstimator face

    @property
    def config(self) -> ModelConfig:
        return self.estimator.config

    @property
    def device(self) -> torch.device:
        return self.estimator.device

    @property
    def dtype(self) -> torch.dtype:
        return self.estimator.dtype

    @property
    def model(self) -> torch.nn.Module:
        return self.estimator.model

    @property
    def flip(self) -> bool:
        return self.estimator.flip

    @flip.setter
    def flip(self, value: bool) -> None:
        self.estimator.flip = bool(value)

    @property
    def stats(self) -> BatchStats:
        with self._cond:
            return replace(self._stats, waiting=len(self._pending))

    @property
    def closed(self) -> bool:
        return self._closed

    def estimate(self, frame_bgr: np.ndarray, boxes: BoxesLike = None, box_scores: ScoresLike = None,
                 attention: bool = False) -> list[Pose]:
        """PoseEstimator.estimate, with the forward pass shared with the other callers of this object."""
        with self.estimator.arrays.inference():
            return self._estimate(frame_bgr, boxes, box_scores, attention)

    def _estimate(self, frame_bgr: np.ndarray, boxes: BoxesLike, box_scores: ScoresLike,
                  attention: bool) -> list[Pose]:
        if self._closed:
            raise TransposeLiveError("the shared estimator is closed")
        est = self.estimator
        persons = est.prepare(frame_bgr, boxes, box_scores)
        key = (bool(attention), est.flip)   # the flip setting at call time, whatever others set later
        parts = [persons[i:i + self.max_batch] for i in range(0, len(persons), self.max_batch)]
        requests = [self._submit(est.crop_inputs(part), key) for part in parts]   # crop, submit, crop...
        poses: list[Pose] = []
        for part, request in zip(parts, requests):
            hm, attn = request.result()
            poses.extend(est.decode(part, hm, attn))
        return poses

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker; callers still waiting get a TransposeLiveError. Idempotent.

        Waits up to `timeout` s for a forward pass in flight (its callers still get their results).
        """
        with self._cond:
            self._closed = True
            pending, self._pending = self._pending, []
            self._cond.notify_all()
        for request in pending:
            request.fail(TransposeLiveError("the shared estimator was closed while waiting"))
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> SharedEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------- the worker

    def _submit(self, x: Any, key: tuple[bool, bool]) -> _Request:
        request = _Request(x, key)
        with self._cond:
            if self._closed:
                raise TransposeLiveError("the shared estimator is closed")
            self._pending.append(request)
            self._cond.notify()
        return request

    def _gather(self) -> list[_Request] | None:
        """The next batch: the oldest request and the later ones with its key, up to max_batch crops,
        once max_batch is reached or max_wait has passed since the oldest arrived. None when closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                if not self._pending:
                    self._cond.wait()
                    continue
                key = self._pending[0].key
                waiting = sum(len(r) for r in self._pending if r.key == key)
                left = self._pending[0].submitted + self.max_wait - time.monotonic()
                if waiting >= self.max_batch or left <= 0:
                    break
                self._cond.wait(left)
            batch, rest, n, full = [], [], 0, False
            for r in self._pending:   # arrival order: one that does not fit waits, and so do later ones
                full = full or (r.key == key and n + len(r) > self.max_batch)
                if r.key == key and not full:
                    batch.append(r)
                    n += len(r)
                else:
                    rest.append(r)
            self._pending = rest
            return batch

    def _run(self, batch: list[_Request]) -> None:
        attention, flip = batch[0].key
        started = time.perf_counter()
        try:
            x = self.estimator.arrays.cat([r.x for r in batch]) if len(batch) > 1 else batch[0].x   # (B, 3, H, W)
            hm, attn = self.estimator.forward(x, attention, flip=flip)
        except BaseException as err:   # the callers raise it in their own threads
            for r in batch:
                r.fail(err)
            if not isinstance(err, Exception):
                raise
            return
        with self._cond:
            s = self._stats
            self._stats = BatchStats(s.forwards + 1, s.requests + len(batch), s.crops + len(x),
                                     busy_s=s.busy_s + time.perf_counter() - started)
        start = 0
        for r in batch:
            rows = slice(start, start + len(r))
            r.finish(hm[rows], None if attn is None else attn[rows])
            start = rows.stop

    def _work(self) -> None:
        try:
            with self.estimator.arrays.inference():
                while (batch := self._gather()) is not None:
                    self._run(batch)
        finally:   # however the worker ends, nobody is left waiting
            with self._cond:
                self._closed = True
                pending, self._pending = self._pending, []
            for request in pending:
                request.fail(TransposeLiveError("the shared estimator's worker stopped"))
