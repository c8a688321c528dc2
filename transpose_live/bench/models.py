"""Benchmarks of the pose model's forward pass: crops/s and per-call latency per model, backend and batch.

Every row carries `eager_crops_per_s`: the plain eager fp32 torch model with nn.MultiheadAttention
itself (the authors' formulation, not our fused path) on the same inputs, timed in turns of ~0.3 s with
the row's own calls (see `time_calls`), so a speed-up is a ratio of numbers taken under the same load,
never against a number from another day. Warm-up calls come first (one-time set-up: oneDNN
primitives, the backends' first shape), then calls are timed one by one for at least `min_seconds` each.
"""

from __future__ import annotations

import copy
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from transpose_live.model.encoder import EncoderLayer
from transpose_live.model.registry import PAPER_AP
from transpose_live.model.transpose import TransPose


@dataclass
class ModelBench:
    preset: str                       # the name asked for: "default" (shipped weights) or a preset
    image_size: tuple[int, int]       # (h, w) input
    backend: str
    precision: str
    batch: int
    attention: bool                   # the path with the attention maps as outputs
    crops_per_s: float
    latency_p50_ms: float             # one call (one batch)
    latency_p95_ms: float
    eager_crops_per_s: float          # plain eager fp32 torch, nn.MultiheadAttention, same inputs, same run
    device: str
    threads: int
    weights: str = "random"           # what the values were: "released" (cached), "shipped" or "random"
    paper_ap: float | None = None     # the authors' COCO val AP for this architecture (detector boxes)
    paper_ap_gt: float | None = None  # ... with ground-truth boxes

    @property
    def speedup(self) -> float:
        return self.crops_per_s / self.eager_crops_per_s if self.eager_crops_per_s else float("nan")

    @property
    def ms_per_person(self) -> float:
        """Model time per person crop at this batch (1000 / crops per second): what one more person costs."""
        return 1000.0 / self.crops_per_s if self.crops_per_s else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(*fns, device: torch.device, min_seconds: float = 2.0, warmup: int = 3, min_calls: int = 5,
               turn_seconds: float = 0.3) -> list[list[float]]:
    """Seconds of each timed call of each fn. The fns take turns of about `turn_seconds` each (a a a, b b b,
    a a a, ...) until each has min_calls calls and min_seconds, after `warmup` untimed calls each; the
    first call of every turn is not timed. Turns put every fn under the same machine load (their ratio
    holds while a shared machine's load drifts); whole turns rather than single calls, and the untimed
    first call, keep one runtime's thread pool (torch's OpenMP team, OpenVINO's, ONNX Runtime's) from
    still spinning on the cores while the other one's calls are timed.

    Runs on a worker thread, where the pipeline runs the model: on a loaded machine torch's OpenMP team
    on the main thread ran the same calls 8-10x slower (see bench_pipeline), which would flatter every
    backend against the eager baseline."""
    return on_worker_thread(lambda: _time_turns(fns, device, min_seconds, warmup, min_calls, turn_seconds),
                            "transpose-live-bench-model")


def on_worker_thread(fn, name: str):
    """fn() run on a fresh thread (where the pipeline's stages run), its result or its exception here."""
    box: dict = {}

    def work():
        try:
            box["result"] = fn()
        except BaseException as exc:   # noqa: BLE001 - raised again in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name=name)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _time_turns(fns, device: torch.device, min_seconds: float, warmup: int, min_calls: int,
                turn_seconds: float) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        for fn in fns:
            for _ in range(warmup):
                fn()
        _sync(device)
        while any(len(own) < min_calls or sum(own) < min_seconds for own in times):
            for fn, own in zip(fns, times):
                fn()                                    # settles the cores after the other runtime
                _sync(device)
                turn = time.perf_counter()
                while True:
                    t = time.perf_counter()
                    fn()
                    _sync(device)
                    own.append(time.perf_counter() - t)
                    if time.perf_counter() - turn >= turn_seconds:
                        break
    return times


def eager_baseline(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A copy of `model` as the authors ran it: fp32, eager, every layer through nn.MultiheadAttention."""
    eager = copy.deepcopy(model).float().to(device).eval()
    for layer in eager.modules():
        if isinstance(layer, EncoderLayer):
            layer.fused = False
    return eager


def bench_model(name: str, model: TransPose, device: str = "cpu", batch: int = 1, attention: bool = False,
                backend: str = "torch", min_seconds: float = 2.0, warmup: int = 3,
                precision: str = "auto", weights: str = "random") -> ModelBench:
    """Time `model` (a TransPose, any weights: `weights` says which, for the row) on `backend`, in turns with
    the eager fp32 baseline. The row carries the paper's AP for the model's architecture, where there is one."""
    from transpose_live.model.backends import create_backend

    dev = torch.device(device)
    net = model.eval().to(dev)
    if dev.type == "cuda" and backend in ("auto", "torch") and precision == "auto":
        net = net.half()            # as the estimator runs it on CUDA
    runner = create_backend(backend, net, dev, precision=precision)
    h, w = net.config.image_size
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))    # (B, 3, H, W)
    x_dev = x.to(dev, next(net.parameters()).dtype)
    eager = eager_baseline(net, dev)
    x32 = x.to(dev)
    eager_fn = (lambda: eager(x32, return_attention=True)) if attention else (lambda: eager(x32))
    times, eager_times = time_calls(lambda: runner(x_dev, attention), eager_fn, device=dev,
                                    min_seconds=min_seconds, warmup=warmup)
    seconds = np.array(times)
    p50, p95 = np.percentile(seconds, (50, 95)) * 1000
    # mixed runs the maps' graph at fp32 (backends/openvino_backend.py): the row says what ran
    ran = "fp32" if attention and runner.precision == "mixed" else runner.precision
    paper = PAPER_AP.get(net.config.name)
    return ModelBench(name, (h, w), runner.name, ran, batch, attention,
                      batch * len(seconds) / seconds.sum(), float(p50), float(p95),
                      batch * len(eager_times) / sum(eager_times), dev.type,
                      getattr(runner, "threads", torch.get_num_threads()), weights,
                      paper.detector if paper else None, paper.gt if paper else None)


def environment(device: str = "cpu") -> dict:
    """What the numbers depend on: versions, threads, the CPU / GPU."""
    import cv2  # deferred: OpenCV loads on first use

    versions: dict[str, str | None] = {"torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
                "python": platform.python_version()}
    for package in ("onnxruntime", "openvino"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = None
    env = {"versions": versions, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "cpu": _cpu_name(), "device": str(device), "platform": platform.platform()}
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ap(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_rows(rows: list[ModelBench]) -> str:
    """The table: speed (crops/s, ms per person, call latency, against eager) next to the paper's AP."""
    lines = [f"{'model':10} {'input':8} {'backend':11} {'prec':5} {'batch':>5} {'path':9} {'crops/s':>9} "
             f"{'ms/person':>9} {'p50 ms':>8} {'p95 ms':>8} {'eager/s':>9} {'x eager':>7} {'weights':8} "
             f"{'AP':>5} {'AP(gt)':>6}"]
    for r in rows:
        size = f"{r.image_size[0]}x{r.image_size[1]}"
        lines.append(f"{r.preset:10} {size:8} {r.backend:11} {r.precision:5} {r.batch:5d} "
                     f"{'attention' if r.attention else 'fast':9} {r.crops_per_s:9.1f} {r.ms_per_person:9.2f} "
                     f"{r.latency_p50_ms:8.2f} {r.latency_p95_ms:8.2f} {r.eager_crops_per_s:9.1f} "
                     f"{r.speedup:7.2f} {r.weights:8} {_ap(r.paper_ap):>5} {_ap(r.paper_ap_gt):>6}")
    return "\n".join(lines)


def rows_as_dicts(rows: list[ModelBench]) -> list[dict]:
    return [asdict(r) | {"speedup": round(r.speedup, 3), "ms_per_person": round(r.ms_per_person, 3)} for r in rows]


__all__ = ["ModelBench", "bench_model", "eager_baseline", "time_calls", "environment", "format_rows",
           "rows_as_dicts"]
