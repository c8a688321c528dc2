"""The SSD's engines side by side: ms a call on the same frames, the same boxes, and the pipeline with each.

    python tools/measure/measure_ssd_engines.py [VIDEO] [--frames 100] [--rounds 2] [--engines opencv,openvino]
                                        [--no-pipeline] [--json OUT|-]

VIDEO defaults to ../shared/data/videos/vtest.avi. Per engine: the detector alone on every 3rd of the first
--frames frames (ms a call, median and p95, after one untimed call) and whether its persons are the first
engine's (count equal, each box within 0.5 px); then `transpose-live bench --pipeline`'s measurement
(transpose_live.bench.pipeline) with each engine's detector in turns, --rounds times, the rest of the run
the same loaded model (the machine's load drifts, so compare within a round).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from report import emit_report

DEFAULT_VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos" / "vtest.avi"


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    from transpose_live.media.sources import FileSource

    frames = []
    with FileSource(path) as source:
        for frame in source:
            frames.append(frame.image)
            if len(frames) >= count:
                break
    return frames


def same_persons(a, b, tol: float = 0.5) -> bool:
    if len(a) != len(b):
        return False
    return all(len(b) and np.abs(b.boxes - box).max(axis=1).min() <= tol for box in a.boxes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--engines", default="opencv,openvino")
    ap.add_argument("--no-pipeline", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not args.video.is_file():
        print(f"error: video not found: {args.video}", file=sys.stderr)
        return 2

    from transpose_live.bench.pipeline import bench_pipeline
    from transpose_live.detect.ssd import SSDDetector
    from transpose_live.errors import TransposeLiveError
    from transpose_live.live.run import load_runner
    from transpose_live.live.spec import RunSpec

    try:
        detectors = {name: SSDDetector(engine=name) for name in args.engines.split(",")}
    except TransposeLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    frames = read_frames(args.video, args.frames)[::3]
    first = next(iter(detectors))
    reference = [detectors[first].detect(f) for f in frames]
    rows = {}
    for name, detector in detectors.items():
        detector.detect(frames[0])
        times, agree = [], 0
        for frame, ref in zip(frames, reference):
            t = time.perf_counter()
            d = detector.detect(frame)
            times.append(1000 * (time.perf_counter() - t))
            agree += same_persons(ref, d)
        rows[name] = {"engine": name, "call_ms_p50": float(np.median(times)),
                      "call_ms_p95": float(np.percentile(times, 95)), "frames": len(frames),
                      f"frames_with_{first}s_persons": agree}
        print(f"{name:9} {rows[name]['call_ms_p50']:6.1f} ms a call (p95 {rows[name]['call_ms_p95']:.1f}), "
              f"{agree}/{len(frames)} frames with {first}'s persons", file=sys.stderr, flush=True)

    pipeline = []
    if not args.no_pipeline:
        spec = RunSpec(max_frames=args.frames)
        runner = load_runner(spec)
        for round_ in range(args.rounds):
            for name, detector in detectors.items():
                b = bench_pipeline(args.video, spec, runner=dataclasses.replace(runner, detector=detector))
                row = {"round": round_ + 1, "engine": name, "detect_estimate_alone_ms": b.stage_ms["model"],
                       "pipeline_fps": b.pipeline_fps, "slowest_stage_fps": b.bound_fps,
                       "latency_p50_ms": b.latency_p50_ms, "latency_p95_ms": b.latency_p95_ms}
                pipeline.append(row)
                print(f"round {round_ + 1} {name:9} detect+estimate alone {row['detect_estimate_alone_ms']:6.1f} ms, "
                      f"pipeline {row['pipeline_fps']:.2f} fps", file=sys.stderr, flush=True)
    emit_report({"video": str(args.video), "detector": list(rows.values()), "pipeline": pipeline}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
