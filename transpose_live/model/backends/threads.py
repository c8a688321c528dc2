"""The graph runtimes' default thread count, without importing torch."""

from __future__ import annotations

import sys


def default_threads() -> int:
    """torch's intra-op thread count where torch is loaded (as before); else 0, the runtime's own default
    (both take the CPU's physical cores)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0


__all__ = ["default_threads"]
