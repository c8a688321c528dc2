"""`transpose-live bench --pipeline VIDEO`: each stage alone, then the threaded pipeline on the same frames.

A pipeline of overlapping stages can at best reach 1 / (slowest stage) frames per second; the ratio of
the measured end-to-end fps to that bound says how much the threads cost (GIL contention, CPU cores
shared between stages). Every stage alone runs with the run's own settings and the very parts the
pipeline uses (PersonFollower, TrackSmoother, the renderer, the video writer); the slowest one, the model,
is timed before and after the pipeline run and the mean taken, as the load of a shared machine drifts.

Why a stage "alone" once measured slower than inside the pipeline (2.29x, and 6.5x on a loaded machine),
and what the timing does about it:
- it ran on the main thread, the pipeline's stages on worker threads. torch's 2-thread OpenMP team on the
  main thread ran the pose model 8-10x slower than the very same calls on a fresh thread when the cores
  were oversubscribed (2.1 s vs 0.22 s per frame, 2 threads; 0.25 s with 1 thread; measured alternately
  in one process), so every stage alone now runs on its own worker thread, as in the pipeline;
- one-time set-up is paid per input shape — oneDNN's primitives for each new number of persons per frame
  (torch), a new batch size's shape inference (ONNX Runtime, OpenVINO), the SSD net's first frame size —
  so the model stage alone is timed only after one untimed pass over the same frames.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from transpose_live.bench.models import on_worker_thread
from transpose_live.live.following import PersonFollower, TrackSmoother
from transpose_live.live.run import load_runner, process_video
from transpose_live.live.spec import RunSpec
from transpose_live.media import sources  # sources.open_source: what every command calls (a test may stand in)
from transpose_live.media.sinks import VideoWriter
from transpose_live.types import FrameResult

STAGE_LABELS = {
    "capture": "capture (decode)",
    "model": "detect + estimate",
    "track": "track + smooth",
    "render": "render + encode",
}


@dataclass
class PipelineBench:
    video: str
    frames: int
    device: str
    stage_ms: dict[str, float]             # each stage alone, ms per frame
    pipeline_fps: float
    pipeline_stage_ms: dict[str, float] = field(default_factory=dict)   # the same stages inside the pipeline
    detector_calls: int = 0
    persons_per_frame: float = 0.0
    backend: str = "torch"
    precision: str = "fp32"
    latency_p50_ms: float = 0.0            # capture -> written, end to end in the pipeline
    latency_p95_ms: float = 0.0

    @property
    def slowest(self) -> str:
        return max(self.stage_ms, key=lambda stage: self.stage_ms[stage])

    @property
    def bound_fps(self) -> float:
        """1 / (slowest stage alone): what perfectly overlapped stages would reach."""
        return 1000.0 / self.stage_ms[self.slowest]

    @property
    def ratio(self) -> float:
        return self.pipeline_fps / self.bound_fps

    def as_dict(self) -> dict:
        return {"video": self.video, "frames": self.frames, "device": self.device, "backend": self.backend,
                "precision": self.precision, "stage_ms": self.stage_ms, "slowest": self.slowest,
                "slowest_stage_fps": self.bound_fps, "bound_fps": self.bound_fps, "pipeline_fps": self.pipeline_fps,
                "ratio": self.ratio, "pipeline_stage_ms": self.pipeline_stage_ms,
                "latency_p50_ms": self.latency_p50_ms, "latency_p95_ms": self.latency_p95_ms,
                "detector_calls": self.detector_calls, "persons_per_frame": self.persons_per_frame}


def _timed(fn, items) -> tuple[list, float]:
    """[fn(item)...] and the mean ms per item, on a worker thread as the pipeline's stages run."""
    def work():
        out, t0 = [], time.perf_counter()
        for item in items:
            out.append(fn(item))
        return out, 1000.0 * (time.perf_counter() - t0) / max(len(items), 1)

    return on_worker_thread(work, "transpose-live-bench-stage")


def bench_pipeline(video_path, spec: RunSpec | None = None, runner=None) -> PipelineBench:
    """Per-stage ms/frame (each stage alone, on the same frames) and the threaded pipeline's fps.
    spec.max_frames frames (100 when unset) of the video are used."""
    max_frames = (spec.max_frames if spec else None) or 100
    spec = (spec or RunSpec()).replace(max_frames=max_frames).validate()
    runner = runner.with_options(**vars(spec)) if runner is not None else load_runner(spec)
    path = Path(video_path)

    # capture alone: decode into memory (the other stages then run on these very frames)
    with sources.FileSource(path) as source:
        fps, time_base, size = source.fps, source.time_base, source.size
        frames, t0 = [], time.perf_counter()
        for frame in source:
            frames.append(frame)
            if len(frames) >= max_frames:
                break
        capture_ms = 1000.0 * (time.perf_counter() - t0) / len(frames)

    def model_alone():
        follower = PersonFollower.from_spec(runner.detector, runner.estimator, spec)
        return _timed(lambda f: follower(f.image), frames)

    # model alone, after one untimed pass: every shape's one-time set-up done (see the module's note)
    model_alone()
    poses, model_ms = model_alone()

    tracks = TrackSmoother(spec.smooth, spec.smooth_strength)
    results, track_ms = _timed(lambda pair: FrameResult(pair[0].index, pair[0].timestamp,
                                                        tracks(pair[1], pair[0].timestamp), size),
                               list(zip(frames, poses)))

    with tempfile.TemporaryDirectory(prefix="transpose-live-bench-") as tmp:
        writer = VideoWriter(Path(tmp) / "alone.mp4", *size, fps=fps, time_base=time_base)
        t0 = time.perf_counter()
        _timed(lambda pair: writer.write_frame(runner.draw(pair[0].image, pair[1].poses), pair[1]),
               list(zip(frames, results)))
        writer.close()       # flushing the encoder is part of encoding
        render_ms = 1000.0 * (time.perf_counter() - t0) / len(frames)

        # the whole pipeline on the same frames, read from the file again (capture included)
        with sources.FileSource(path) as source:
            sink = VideoWriter(Path(tmp) / "pipeline.mp4", *size, fps=fps, time_base=time_base)
            stats = runner.with_options(max_frames=len(frames)).pipeline(source, [sink]).run()

    # the model alone once more: on a shared machine the load drifts, the mean of before and after is fairer
    model_ms = (model_ms + model_alone()[1]) / 2

    backend = getattr(runner.estimator, "backend", None)
    return PipelineBench(
        video=str(path), frames=len(frames), device=str(runner.estimator.device),
        stage_ms={"capture": capture_ms, "model": model_ms, "track": track_ms, "render": render_ms},
        pipeline_fps=stats.fps, pipeline_stage_ms=dict(stats.stage_ms), detector_calls=stats.detector_calls,
        persons_per_frame=sum(len(p) for p in poses) / len(poses),
        backend=getattr(backend, "name", "torch"), precision=getattr(backend, "precision", "fp32"),
        latency_p50_ms=stats.latency_p50_ms, latency_p95_ms=stats.latency_p95_ms,
    )


def bench_stream(url: str, spec: RunSpec, runner=None, **source_options) -> dict:
    """A live stream through the whole pipeline for spec.duration seconds (20 when unset): frames/s and the
    capture -> rendered latency each frame really had (percentiles), drops and reconnects."""
    spec = spec.replace(duration=spec.duration or 20.0).validate()
    with sources.open_source(url, **source_options) as source:
        summary = process_video(source, runner=runner, **vars(spec))
        reconnects = getattr(source, "reconnects", 0)
    stats = summary.stats
    assert stats is not None   # process_video's summary carries the run's stats
    return {"source": summary.source, "seconds": round(stats.wall_s, 2), "frames": stats.frames_processed,
            "fps": round(summary.fps, 2), "dropped": stats.frames_dropped, "reconnects": reconnects,
            "latency_p50_ms": round(stats.latency_p50_ms, 1), "latency_p95_ms": round(stats.latency_p95_ms, 1),
            "latency_max_ms": round(stats.max_latency_ms, 1), "model_ms": round(stats.stage_ms["model"], 1)}


def format_stream(row: dict) -> str:
    return (f"{row['source']}: {row['frames']} frames in {row['seconds']} s ({row['fps']} fps), "
            f"{row['dropped']} dropped, {row['reconnects']} reconnects\n"
            f"latency capture -> rendered: p50 {row['latency_p50_ms']} ms, p95 {row['latency_p95_ms']} ms, "
            f"max {row['latency_max_ms']} ms (model stage {row['model_ms']} ms per frame)")


def format_bench(b: PipelineBench) -> str:
    lines = [f"{Path(b.video).name}: {b.frames} frames on {b.device} (backend {b.backend} {b.precision}), "
             f"{b.persons_per_frame:.1f} persons/frame, detector on {b.detector_calls} frames",
             f"{'stage':20} {'alone ms':>9} {'fps':>8} {'in pipeline ms':>15}"]
    for name, label in STAGE_LABELS.items():
        ms = b.stage_ms[name]
        lines.append(f"{label:20} {ms:9.1f} {1000.0 / ms if ms else float('inf'):8.1f} "
                     f"{b.pipeline_stage_ms.get(name, float('nan')):15.1f}")
    lines.append(f"bound: 1 / slowest stage ({STAGE_LABELS[b.slowest]}) = {b.bound_fps:.2f} fps")
    lines.append(f"pipeline end to end: {b.pipeline_fps:.2f} fps, latency p50 {b.latency_p50_ms:.0f} ms, "
                 f"p95 {b.latency_p95_ms:.0f} ms")
    lines.append(f"ratio end-to-end / bound: {b.ratio:.2f}")
    return "\n".join(lines)


__all__ = ["PipelineBench", "bench_pipeline", "bench_stream", "format_bench", "format_stream"]
