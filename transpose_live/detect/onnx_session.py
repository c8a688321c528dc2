"""open_onnx_session: one ONNX Runtime session for a detector file, with the same quiet log and one-line errors
for every ONNX detector (the YOLO files of onnx.py and the shipped RTMDet)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transpose_live.errors import TransposeLiveError


def open_onnx_session(path: Path, what: str, providers: Sequence[str] | None = None, threads: int | None = None):
    """An `onnxruntime.InferenceSession` for `path`; `what` names the detector in the errors ("ONNX detector",
    "the rtmdet detector"). A missing onnxruntime or a file it cannot load is one TransposeLiveError line."""
    try:
        import onnxruntime as ort  # deferred: loaded only when an ONNX detector is made
    except ImportError:
        raise TransposeLiveError(
            f"{what} needs the Python package 'onnxruntime' (pip install onnxruntime)") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3   # keep onnxruntime's warnings off the console
    if threads:
        opts.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise TransposeLiveError(f"cannot load {what} {path}: {str(exc).strip().splitlines()[0]}") from None


__all__ = ["open_onnx_session"]
