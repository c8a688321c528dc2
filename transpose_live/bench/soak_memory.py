"""Where a monitor's resident memory goes, measured two ways:

- `rss_by_mapping(pid)`: a running process's RSS summed per mapping in /proc/PID/smaps, grouped by what is
  mapped (torch's, OpenVINO's, FFmpeg's, OpenCV's libraries ... and anonymous memory: heaps, arenas, weights,
  buffers). The soak reports it for the monitor at its end.
- `stages()`: a fresh process loading what `monitor` loads, step by step, with its RSS after each step (the
  imports, the detector, the pose model, its forward passes through a SharedEstimator on 1, 4, 16 and 32
  persons or `--sizes`, a detector pass, then N loopback cameras running on one shared model like the
  monitor's).

`python -m transpose_live.bench.soak_memory --cameras 2` prints both as JSON; `--cameras 0 --sizes
1,2,3,4,5,6,7,8,10,12,16 --rounds 2 [--no-padding]` measures the pose model's working memory alone.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

# (group, substrings of the mapped path); the first match wins; anonymous mappings have no path
LIBRARY_GROUPS = (
    ("CUDA libraries (torch's)", ("/nvidia/", "libtorch_cuda", "/cuda/bindings", "libcudnn", "/triton/")),
    ("torch", ("/torch/", "/torch.libs/", "libgomp")),
    ("OpenVINO", ("/openvino/", "/openvino.libs/", "libtbb")),
    ("ONNX Runtime", ("onnxruntime",)),
    ("FFmpeg (PyAV)", ("/av.libs/", "/av/")),
    ("OpenCV", ("/cv2/", "/opencv", "libopencv")),
    ("numpy, scipy", ("/numpy", "/scipy")),
    ("python", ("libpython", "/bin/python")),
)


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def group_of(path: str) -> str:
    if not path or path.startswith("[anon") or path == "[heap]":
        return "anonymous (heaps, weights, buffers)"
    if path.startswith("["):
        return "stacks and kernel"
    for name, parts in LIBRARY_GROUPS:
        if any(p in path for p in parts):
            return name
    return "other libraries and files"


def rss_by_mapping(pid: int | str = "self") -> dict[str, float]:
    """RSS in MB per group of mappings, largest first (Linux /proc/PID/smaps)."""
    groups: dict[str, float] = {}
    current = "anonymous (heaps, weights, buffers)"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            current = group_of(" ".join(fields[5:]) if len(fields) > 5 else "")     # a mapping's header
        elif fields and fields[0] == "Rss:":
            groups[current] = groups.get(current, 0.0) + int(fields[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}


def stages(cameras: int = 2, seconds: float = 30.0, options: dict | None = None,
           video: str | None = None, sizes: tuple[int, ...] = (1, 4, 16, 32), rounds: int = 1,
           padding: bool = True, torch_step: bool = True, warm_up: bool = False) -> list[dict]:
    """RSS of this process after each step of what `monitor` loads: [{"step", "rss_mb", "delta_mb", ...}].
    sizes: the persons of the forward passes run one after another (`rounds` times over); padding=False
    runs them unpadded (what every batch size cost before pose/padding.py). torch_step=False: torch is not
    imported as a step of its own but where the run first needs it (see torch_loaded). warm_up: the model warmed at
    every padded size first, as `monitor` does (PoseEstimator.warm_up). Meant for a fresh process
    (python -m transpose_live.bench.soak_memory)."""
    rows: list[dict] = []

    def note(step: str, **facts) -> None:
        now = rss_mb()
        rows.append({"step": step, "rss_mb": round(now, 1),
                     "delta_mb": round(now - rows[-1]["rss_mb"], 1) if rows else None, **facts})

    def loaded() -> dict:
        return {"torch_loaded": "torch" in sys.modules, "openvino_loaded": "openvino" in sys.modules}

    note("python, numpy, transpose_live", **loaded())
    # deferred on purpose: each import is one measured step of the memory table
    import av  # noqa: F401  (measured: what the imports alone hold)
    import cv2  # noqa: F401

    note("+ PyAV (FFmpeg), OpenCV", **loaded())
    if torch_step:
        import torch  # noqa: F401  (the pose model loads it anyway: its share, apart)

        note("+ import torch", **loaded())
    import openvino  # noqa: F401

    note("+ import openvino", **loaded())
    from transpose_live.detect import create_detector
    from transpose_live.live.run import load_estimator
    from transpose_live.live.spec import RunSpec
    from transpose_live.model.device import resolve_device_name

    spec = RunSpec.from_options(None, **(options or {}))
    detector = create_detector(spec.detector, device=resolve_device_name(spec.device), tiles=spec.detect_tiles)
    note(f"+ detector ({spec.detector})", **loaded())
    estimator = load_estimator(spec)
    if not padding:
        estimator.batch_sizes = None
    note(f"+ pose model ({spec.model}, backend {spec.backend})", **loaded())
    if warm_up:
        estimator.warm_up()
        note("+ warm-up: a pass at each padded batch size", **loaded())
    # the model's working memory is a high-water mark: it grows with each new batch size the runtime sees
    picture = np.zeros((576, 768, 3), np.uint8)
    # through a SharedEstimator as the monitor runs it: one pass of up to 32 crops (estimate alone cuts 16)
    from transpose_live.pose.batching import SharedEstimator

    with SharedEstimator(estimator) as shared:
        for round_ in range(rounds):
            for persons in sizes:
                shared.estimate(picture, [[10.0 + 20 * i, 10.0, 100.0, 200.0] for i in range(persons)])
                note(f"+ a forward pass of {persons} person(s)" + (f", round {round_ + 1}" if rounds > 1 else ""))
    detector.detect(picture)
    note("+ a detector pass")
    if cameras:
        _run_cameras(cameras, seconds, spec, estimator, detector, note, video)
    return rows


def _run_cameras(cameras: int, seconds: float, spec, estimator, detector, note, video: str | None) -> None:
    """`cameras` loopback test cameras on one shared model for `seconds`, as the monitor runs them (the
    test pattern at 768x576, or `video` in a loop)."""
    import tempfile

    from transpose_live.bench.soak_server import RtspServer, video_frames
    from transpose_live.detect.locked import LockedDetector
    from transpose_live.live.pipeline import Pipeline
    from transpose_live.media.sinks.jsonl import JsonlWriter
    from transpose_live.media.sources import RtspSource
    from transpose_live.pose.batching import SharedEstimator

    shared = SharedEstimator(estimator)
    work = tempfile.TemporaryDirectory(prefix="transpose-live-memory-")
    frames, fps = video_frames(video, work.name) if video else (None, 10.0)
    servers = [RtspServer(paths=(f"/cam{i}",), size=(768, 576), fps=int(round(fps)), frames=frames)
               for i in range(cameras)]
    pipelines, threads = [], []
    try:
        for server in servers:
            source = RtspSource(server.url(), timeout=3.0)
            pipeline = Pipeline(source, spec, [JsonlWriter(os.devnull, live=True)], estimator=shared,
                                detector=LockedDetector(detector), stats_every=None)
            thread = threading.Thread(target=pipeline.run, daemon=True)
            thread.start()
            pipelines.append(pipeline)
            threads.append(thread)
        time.sleep(seconds)
        note(f"+ {cameras} cameras running {seconds:g} s ({Path(video).name if video else 'test pattern'})",
             frames=[p.stats_snapshot().frames_processed for p in pipelines])
    finally:
        for pipeline in pipelines:
            pipeline.stop()
            pipeline.source.close()
        for thread in threads:
            thread.join(5)
        shared.close()
        for server in servers:
            server.stop()
        work.cleanup()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Where the monitor's memory goes: RSS per loading step and "
                                     "per mapping group, as JSON.")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--video", help="served in a loop by the cameras (default: the test pattern)")
    parser.add_argument("--sizes", default="1,4,16,32",
                        help="persons per forward pass, run one after another (e.g. 1,2,3,4,5,6,7,8,10,12,16)")
    parser.add_argument("--rounds", type=int, default=1, help="times over --sizes")
    parser.add_argument("--no-torch-step", action="store_true",
                        help="no 'import torch' step: torch loads where the run first needs it")
    parser.add_argument("--warm-up", action="store_true",
                        help="warm the model at every padded batch size first, as monitor does")
    parser.add_argument("--no-padding", action="store_true",
                        help="run the forward passes unpadded (to compare with the padded default)")
    args = parser.parse_args(argv)
    try:
        sizes = tuple(int(n) for n in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes wants whole numbers separated by commas, got {args.sizes!r}")
    rows = stages(args.cameras, args.seconds, {"backend": args.backend}, args.video, sizes=sizes,
                  rounds=args.rounds, padding=not args.no_padding, torch_step=not args.no_torch_step,
                  warm_up=args.warm_up)
    sys.stdout.write(json.dumps({"stages": rows, "by_mapping": rss_by_mapping()}, indent=1) + "\n")


if __name__ == "__main__":
    main()


__all__ = ["rss_mb", "rss_by_mapping", "group_of", "stages", "LIBRARY_GROUPS"]
