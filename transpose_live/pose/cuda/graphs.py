"""CUDA graphs for the pose model at fixed batch buckets: launch-free replays for any number of persons.

At batch 1 the model is bound by kernel launches (~5 ms for tp_r_a4 eager on an H100, for well under
1 ms of arithmetic). A CUDA graph records all of a forward pass's kernels once and replays them with one
launch, but only for fixed shapes and fixed buffers, so the batch is padded up to the next bucket
(1, 2, 4, ..., 64) and batches above the largest bucket run in chunks of it. Each bucket is captured
on first use (after a few warm-up passes on a side stream, as PyTorch requires), each in its own
memory pool (so replays may come in any order). Rows are independent in this model (eval-mode
BatchNorm, per-sample attention), so the padding rows never change the real rows' heatmaps.

Only on CUDA; anywhere else `GraphedModel` runs the model eagerly (with `pad=True` it still pads to
the buckets, which is how the bucketing is tested without a GPU).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from torch import nn

from transpose_live.errors import TransposeLiveError

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def check_buckets(buckets: Sequence[int]) -> tuple[int, ...]:
    """Sorted, distinct, positive batch sizes."""
    try:
        out = tuple(sorted({int(b) for b in buckets}))
    except (TypeError, ValueError):
        raise TransposeLiveError(f"batch buckets must be positive integers, got {buckets!r}") from None
    if not out or out[0] < 1:
        raise TransposeLiveError(f"batch buckets must be positive integers, got {buckets!r}")
    return out


def bucket_for(n: int, buckets: Sequence[int]) -> int:
    """The smallest bucket holding n rows (n <= the largest bucket)."""
    for b in buckets:
        if n <= b:
            return b
    raise TransposeLiveError(f"{n} rows exceed the largest batch bucket {buckets[-1]}")


def plan_chunks(n: int, buckets: Sequence[int]) -> list[tuple[int, int, int]]:
    """How n rows run: [(start, stop, bucket)]: full chunks of the largest bucket, then the rest padded
    to the smallest bucket that holds it. plan_chunks(70, (1, 2, 4, 8, 16, 32, 64)) ->
    [(0, 64, 64), (64, 70, 8)]."""
    top = buckets[-1]
    chunks = []
    for start in range(0, n, top):
        stop = min(n, start + top)
        chunks.append((start, stop, bucket_for(stop - start, buckets)))
    return chunks


class _Graph:
    """One captured forward pass at a fixed batch: static input and output buffers."""

    def __init__(self, model: nn.Module, example: torch.Tensor, pool, warmup: int = 3):
        self.input = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):   # cuDNN / cuBLAS pick and allocate their workspaces here, not in the graph
                model(self.input)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: another thread's CUDA work meanwhile (the window's inspector) neither breaks the
        # capture nor is broken by it
        with torch.cuda.graph(self.graph, pool=pool, capture_error_mode="thread_local"), torch.inference_mode():
            self.output = model(self.input)


class GraphedModel:
    """`forward(x)`: (B, 3, H, W) -> heatmaps (B, J, h, w), by CUDA-graph replay at bucketed batch sizes.

    model: the pose model (eval mode, on its device, in its dtype; plain heatmap output, no attention).
    buckets: batch sizes to capture. use_graphs: None = on CUDA only. pad: pad to the buckets also when
    running eagerly (default: only with graphs, where fixed shapes are needed).
    The returned heatmaps are a fresh tensor (the graph's own output buffer is overwritten by the next
    replay). Calls from several threads take turns (the graphs' input and output buffers are shared).
    """

    def __init__(self, model: nn.Module, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 use_graphs: bool | None = None, pad: bool | None = None, warmup: int = 3):
        self.model = model.eval()
        self.buckets = check_buckets(buckets)
        first = next(iter(model.parameters()), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        on_cuda = self.device.type == "cuda"
        if use_graphs and not on_cuda:
            raise TransposeLiveError(f"CUDA graphs need the model on a CUDA device, it is on {self.device}")
        self.use_graphs = on_cuda if use_graphs is None else bool(use_graphs)
        self.pad = self.use_graphs if pad is None else bool(pad)
        self.warmup = int(warmup)
        self._graphs: dict[tuple, _Graph] = {}
        self._lock = threading.Lock()

    @property
    def captured(self) -> list[int]:
        """Batch sizes captured so far."""
        return sorted(key[0] for key in self._graphs)

    def capture(self, image_size_hw: tuple[int, int], buckets: Sequence[int] | None = None) -> None:
        """Capture the given buckets (all by default) now, so that no first call pays for it."""
        with self._lock:
            h, w = image_size_hw
            for b in buckets or self.buckets:
                self._graph(b, (h, w))

    def _graph(self, bucket: int, image_size_hw: tuple[int, int]) -> _Graph:
        key = (bucket, *image_size_hw)
        if key not in self._graphs:
            example = torch.zeros((bucket, 3, *image_size_hw), dtype=self.dtype, device=self.device)
            self._graphs[key] = _Graph(self.model, example, None, self.warmup)   # a private pool each
        return self._graphs[key]

    def _run_bucket(self, x: torch.Tensor, bucket: int) -> torch.Tensor:
        """Rows x (n <= bucket) padded to the bucket, run, and cut back to n rows."""
        n = x.shape[0]
        if self.use_graphs:
            graph = self._graph(bucket, (x.shape[2], x.shape[3]))
            graph.input[:n].copy_(x)
            graph.input[n:].zero_()   # padding rows: zeros (they never touch the real rows)
            graph.graph.replay()
            return graph.output[:n].clone()
        if n < bucket:
            x = torch.cat([x, x.new_zeros((bucket - n, *x.shape[1:]))])
        return self.model(x)[:n]

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise TransposeLiveError(f"GraphedModel needs (B, 3, H, W) input, got {shape}")
        x = x.to(self.device, self.dtype)
        if x.shape[0] == 0:
            return self.model(x)
        if not self.pad:
            return self.model(x)
        with self._lock:
            outs = [self._run_bucket(x[a:b], bucket) for a, b, bucket in plan_chunks(x.shape[0], self.buckets)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    __call__ = forward


__all__ = ["DEFAULT_BUCKETS", "GraphedModel", "bucket_for", "check_buckets", "plan_chunks"]
