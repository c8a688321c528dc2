"""One OpenVINO Core per process, for the pose model's backend and the OpenVINO detector alike."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def shared_core():
    """One OpenVINO Core for the process. Each Core starts its own CPU-plugin engine, which swaps the thread's
    signal stack and puts the previous one back when it goes: engines dropped first-made-first left a freed
    stack in place, and the next Python signal handler (Ctrl-C, the window's SIGINT) died with SIGSEGV."""
    import openvino as ov  # deferred: the optional package loads only when something runs on it

    return ov.Core()


__all__ = ["shared_core"]
