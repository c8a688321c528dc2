"""Benchmarks: model crops/s per preset, batch size, path and device (with a proper warm-up and CUDA sync)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from .models import create_model


@dataclass
class ModelBench:
    preset: str
    device: str
    dtype: str
    batch: int
    attention: bool
    crops_per_s: float
    ms_per_batch: float
    image_size: tuple[int, int]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(preset: str, device: str = "cpu", batch: int = 1, attention: bool = False,
                image_size: tuple[int, int] | None = None, fp16: bool | None = None,
                min_seconds: float = 2.0, warmup: int = 3, model: torch.nn.Module | None = None) -> ModelBench:
    """Time the forward pass alone (inputs already on the device): crops per second."""
    dev = torch.device(device)
    half = (dev.type == "cuda") if fp16 is None else fp16
    dtype = torch.float16 if half else torch.float32
    model = (model or create_model(preset, image_size=image_size)).eval().to(dev, dtype)
    h, w = model.config.image_size
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0)).to(dev, dtype)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x, return_attention=attention)
        _sync(dev)
        n, t0 = 0, time.perf_counter()
        while True:
            model(x, return_attention=attention)
            n += 1
            _sync(dev)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds and n >= 3:
                break
    return ModelBench(preset, dev.type, str(dtype).replace("torch.", ""), batch, attention,
                      n * batch / elapsed, 1000 * elapsed / n, (h, w))


def format_rows(rows: list[ModelBench]) -> str:
    lines = [f"{'model':10} {'input':8} {'device':6} {'dtype':8} {'batch':>5} {'path':9} {'crops/s':>9} {'ms/batch':>9}"]
    for r in rows:
        size = f"{r.image_size[0]}x{r.image_size[1]}"
        lines.append(f"{r.preset:10} {size:8} {r.device:6} {r.dtype:8} {r.batch:5d} "
                     f"{'attention' if r.attention else 'fast':9} {r.crops_per_s:9.1f} {r.ms_per_batch:9.2f}")
    return "\n".join(lines)


def rows_as_dicts(rows: list[ModelBench]) -> list[dict]:
    return [asdict(r) for r in rows]
