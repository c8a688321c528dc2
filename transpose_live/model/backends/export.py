"""One ONNX export of a TransPose model, and its on-disk cache.

Two graphs per model: the fast one (heatmaps only, the fused attention path) and the attention one
(heatmaps + every encoder layer's head-averaged map, the authors' nn.MultiheadAttention path) — the maps
come out of the graph as extra outputs `attention_0..attention_{L-1}`. The batch axis is dynamic, so
all persons of a frame go through in one call.

The cache (`<cache dir>/onnx/`) is keyed by what decides the graph: the weights' identity (a file's
sha256 with the config, or the state dict's hash for a module in memory: source.py), the input size, the graph
kind, the opset, the torch version that traces it (read from its package metadata: finding a cached graph
imports no torch) and the code's hash. Precision and the runtime's version are not in the key: OpenVINO and
ONNX Runtime compile the same ONNX file at load time. Files are written to a temporary name
and renamed into place (a crash never leaves half a file under the real name); a cached file that does
not load is deleted and exported again (`cached_onnx(..., rebuild=True)`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from transpose_live.errors import TransposeLiveError
from transpose_live.model.backends.source import ModelSource, as_source, weights_hash
from transpose_live.model.cache import cache_dir

if TYPE_CHECKING:
    from transpose_live.model.transpose import TransPose

OPSET = 17
INPUT_NAME = "input"          # (B, 3, H, W) float32, normalised RGB crops
HEATMAPS_NAME = "heatmaps"    # (B, J, H/4, W/4) float32


def attention_names(n_layers: int) -> list[str]:
    return [f"attention_{i}" for i in range(n_layers)]   # each (B, N, N), head-averaged


def _graph(model, attention: bool):
    """What is traced: heatmaps, plus the maps as separate outputs on the attention graph (held as `.model`:
    the node names openvino_split.py cuts at start with /model/)."""
    from torch import nn  # deferred: only an export needs torch

    class _Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.attention = model, attention

        def forward(self, x):
            if not self.attention:
                return self.model(x)
            heatmaps, maps = self.model(x, return_attention=True)
            return (heatmaps, *maps)

    _Graph.__qualname__ = "_Graph"   # as when it was defined at module level: the traced scopes name it
    return _Graph()


def export_onnx(model: TransPose, path: str | os.PathLike, attention: bool = False, dynamic_batch: bool = True,
                opset: int = OPSET, batch: int = 1) -> Path:
    """Write `model` (a TransPose, fp32) as ONNX to `path`, atomically; returns the path.

    dynamic_batch: the batch axis is free (else fixed to `batch`). The model's train/eval mode and
    device are left as they were (the exporter would otherwise leave it in training mode)."""
    import torch  # deferred: only an export needs torch

    path = Path(path)
    config = model.config
    h, w = config.image_size
    first = next(model.parameters())
    graph = _graph(model, attention).eval()
    was_training = model.training
    outputs = [HEATMAPS_NAME] + (attention_names(config.n_layers) if attention else [])
    axes = {name: {0: "batch"} for name in [INPUT_NAME, *outputs]} if dynamic_batch else None
    x = torch.zeros(max(batch, 1), 3, h, w, dtype=torch.float32, device=first.device)
    model.eval()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")      # tracer warnings about Python ints from shapes
            # the TorchScript exporter: tried and exact on both attention paths (heatmaps ~1e-6 apart)
            torch.onnx.export(graph, (x,), tmp, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=outputs, dynamic_axes=axes, do_constant_folding=True)
        os.chmod(tmp, 0o644)          # mkstemp makes it private; a cache file is an ordinary file
        os.replace(tmp, path)
        tmp = None
    except Exception as exc:
        raise TransposeLiveError(f"ONNX export to {path.parent} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if tmp is not None:           # failed or interrupted (Ctrl-C too): no half-written file stays behind
            Path(tmp).unlink(missing_ok=True)
        model.train(was_training)
    return path


# the files that define what the network computes (not the hub, loading or the runtimes)
_NETWORK_FILES = ("config.py", "encoder.py", "folding.py", "hrnet_s.py", "mobilenet_s.py", "resnet_s.py",
                  "transpose.py")


@functools.lru_cache(maxsize=1)
def model_code_hash() -> str:
    """sha256 of the network's source (the presets and modules in transpose_live/model/ and this exporter): a
    release that changes what forward computes must not keep running a graph exported from the old code."""
    digest = hashlib.sha256()
    model_dir = Path(__file__).resolve().parents[1]
    for source in [model_dir / f for f in _NETWORK_FILES] + [Path(__file__).resolve()]:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


@functools.lru_cache(maxsize=1)
def torch_version() -> str:
    """The installed torch's version, without importing it (torch.__version__ without the local +tag)."""
    return importlib.metadata.version("torch").split("+")[0]


def cached_onnx(model: TransPose | ModelSource, attention: bool = False, opset: int = OPSET,
                rebuild: bool = False) -> Path:
    """The model's ONNX file (dynamic batch) from the cache, exported there first when absent (only then is a
    ModelSource's module built). rebuild=True replaces the cached file (the caller found it corrupt)."""
    source = as_source(model)
    h, w = source.config.image_size
    kind = "attention" if attention else "fast"
    name = (f"{source.config.name}-{h}x{w}-{kind}-opset{opset}-torch{torch_version()}-"
            f"{source.identity()[:20]}-code{model_code_hash()[:8]}.onnx")
    path = onnx_cache_dir() / name
    if rebuild or not path.is_file() or path.stat().st_size == 0:
        export_onnx(source.module(), path, attention=attention, dynamic_batch=True, opset=opset)
    return path


def open_cached(model: TransPose | ModelSource, attention: bool, make):
    """make(path) on the cached export; a cached file that does not load (cut short, corrupt) is exported
    again once."""
    path = cached_onnx(model, attention)
    try:
        return make(path)
    except Exception:   # noqa: BLE001 - any load failure of a cached file means: rebuild it
        path = cached_onnx(model, attention, rebuild=True)
        try:
            return make(path)
        except Exception as exc:
            raise TransposeLiveError(f"cannot load the ONNX export {path}: {type(exc).__name__}: {exc}") from exc


__all__ = ["torch_version", "OPSET", "INPUT_NAME", "HEATMAPS_NAME", "attention_names", "export_onnx", "cached_onnx",
           "weights_hash", "onnx_cache_dir", "open_cached"]
