"""ModelSource: a TransPose known by its config and what identifies its weights, built only when needed.

The graph runtimes run a cached export (export.py). Finding it needs only the config and an identity of the
weights; building the torch module (which imports torch, ~0.5 GB of RSS) is needed only for the first export,
a torch backend, the attention inspector or training. A module passed in is a source whose module exists.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable

from transpose_live.model.config import ModelConfig


class ModelSource:
    """config: what the module computes; identity(): a hash of its weights (and config), computed once;
    module(): the torch module, built on first call (thread-safe) and kept."""

    def __init__(self, config: ModelConfig, identity: Callable[[], str], build: Callable[[], Any],
                 module: Any = None):
        self.config = config
        self._identity_fn = identity
        self._identity: str | None = None
        self._build = build
        self._module: Any = module     # given: built already
        self._lock = threading.Lock()

    @classmethod
    def of_module(cls, model) -> ModelSource:
        """A module in memory (e.g. in training): identified by its state dict, as before."""
        return cls(model.config, lambda: weights_hash(model), lambda: model, module=model)

    @property
    def built(self) -> bool:
        return self._module is not None

    def identity(self) -> str:
        if self._identity is None:
            self._identity = self._identity_fn()
        return self._identity

    def module(self):
        with self._lock:
            if self._module is None:
                self._module = self._build()
            return self._module


def weights_hash(model) -> str:
    """sha256 over the state dict (names, shapes, dtypes, bytes) and the config: what the graph holds."""
    import torch  # deferred: a module in memory means torch is loaded

    digest = hashlib.sha256(repr(model.config).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()


def as_source(model) -> ModelSource:
    """A ModelSource as it is; a torch module (with .config) as a source around it."""
    return model if isinstance(model, ModelSource) else ModelSource.of_module(model)


__all__ = ["ModelSource", "as_source", "weights_hash"]
