"""What the window imports before it shows, so that no worker's thread imports it later.

An import of a compiled library in a worker's thread holds the interpreter for hundreds of ms at a time
(measured: PyAV ~200 ms, OpenVINO ~300 ms), which would freeze the window at the first Start. The imports
inside `preload` are the point of this module: they run when the window is made, not when the module is
imported (the CLI imports the window only once it knows one is wanted)."""

from __future__ import annotations

import gc
import importlib

from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec
from transpose_live.model.backends import resolve_backend
from transpose_live.model.device import resolve_device_name


def preload(config: RunSpec | None = None) -> None:
    """Import what every worker needs, the model's backend runtime too (the one `backend` resolves to on the
    chosen device); then collect once and freeze what exists (see below)."""
    preload_backend(getattr(config, "backend", "auto"), getattr(config, "device", "auto"))
    # deferred to here on purpose (the window's creation, not this module's import): PyAV and the modules
    # below load now, in the GUI thread, so that no worker's thread loads them at the first Start
    import av  # noqa: F401  (FFmpeg's libraries: a dlopen holds the interpreter throughout)

    import transpose_live.detect.beside  # noqa: F401
    import transpose_live.detect.ssd  # noqa: F401
    import transpose_live.detect.whole_frame  # noqa: F401
    import transpose_live.live.pipeline  # noqa: F401
    import transpose_live.live.run  # noqa: F401
    import transpose_live.live.smoothing  # noqa: F401  (filterpy, scipy)
    import transpose_live.live.tracking  # noqa: F401
    import transpose_live.media.sinks  # noqa: F401
    import transpose_live.media.sources  # noqa: F401
    import transpose_live.model.loading  # noqa: F401
    import transpose_live.pose.estimator  # noqa: F401  (its backends, the CUDA path, weight folding)
    import transpose_live.pose.inspector  # noqa: F401

    # A full garbage collection walks every object the process holds (torch, Qt, OpenVINO) with the
    # interpreter held: 130-200 ms, and when a worker's allocations set one off the window froze that long
    # (measured at a model reload). What exists by now lives as long as the window: collected once here,
    # before the window shows, then frozen, the collector leaves it out of every later pass.
    gc.collect()
    gc.freeze()


def preload_backend(backend: object, device: object) -> None:
    """Import the runtime (onnxruntime, openvino) that `backend` resolves to on `device`, and the library's
    module that drives it (with the ONNX export it uses)."""
    try:
        name = resolve_backend(str(backend or "auto"), resolve_device_name(device or "auto"))
    except TransposeLiveError:
        return                   # a bad choice is reported by the worker, in the window
    if name in ("onnxruntime", "openvino"):
        importlib.import_module(name)
        importlib.import_module(f"transpose_live.model.backends.{name}_backend")
