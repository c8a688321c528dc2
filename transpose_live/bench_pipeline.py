"""`transpose-live bench --pipeline VIDEO`: each stage alone, then the threaded pipeline on the same frames.

A pipeline of overlapping stages can at best reach 1 / (slowest stage) frames per second; the ratio of
the measured end-to-end fps to that bound says how much the threads cost (GIL contention, CPU cores
shared between stages). Every stage alone runs with the settings the pipeline uses (default config); the
slowest one, the model, is timed before and after the pipeline run and the mean taken, as the load of a
shared machine drifts.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TransposeLiveError
from .pipeline import Pipeline, PipelineConfig, PersonFollower, build_detector, build_estimator
from .types import FrameResult

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

    @property
    def slowest(self) -> str:
        return max(self.stage_ms, key=self.stage_ms.get)

    @property
    def bound_fps(self) -> float:
        """1 / (slowest stage alone): what perfectly overlapped stages would reach."""
        return 1000.0 / self.stage_ms[self.slowest]

    @property
    def ratio(self) -> float:
        return self.pipeline_fps / self.bound_fps

    def as_dict(self) -> dict:
        return {"video": self.video, "frames": self.frames, "device": self.device, "stage_ms": self.stage_ms,
                "slowest": self.slowest, "bound_fps": self.bound_fps, "pipeline_fps": self.pipeline_fps,
                "ratio": self.ratio, "pipeline_stage_ms": self.pipeline_stage_ms,
                "detector_calls": self.detector_calls, "persons_per_frame": self.persons_per_frame}


def _timed(fn, items) -> tuple[list, float]:
    """[fn(item)...] and the mean ms per item."""
    out, t0 = [], time.perf_counter()
    for item in items:
        out.append(fn(item))
    return out, 1000.0 * (time.perf_counter() - t0) / max(len(items), 1)


def bench_pipeline(video_path, max_frames: int = 100, device: str = "cpu",
                   config: PipelineConfig | None = None, estimator=None, detector=None) -> PipelineBench:
    """Per-stage ms/frame (each stage alone, on the same frames) and the threaded pipeline's fps."""
    from .render import draw_frame
    from .sinks import VideoWriter
    from .smoothing import PoseSmoother
    from .sources import FileSource
    from .tracking import Tracker

    if max_frames < 1:
        raise TransposeLiveError(f"--max-frames must be >= 1, got {max_frames}")
    config = (config or PipelineConfig(device=device)).validate()
    path = Path(video_path)
    estimator = estimator if estimator is not None else build_estimator(config)
    detector = detector if detector is not None else build_detector(config.detector)

    # capture alone: decode into memory (the other stages then run on these very frames)
    with FileSource(path) as source:
        fps, time_base, size = source.fps, source.time_base, source.size
        frames, t0 = [], time.perf_counter()
        for frame in source:
            frames.append(frame)
            if len(frames) >= max_frames:
                break
        capture_ms = 1000.0 * (time.perf_counter() - t0) / len(frames)

    def model_alone():
        follower = PersonFollower(detector, estimator, config.detect_every, config.follow_min_score,
                                  config.follow_pad, config.attention)
        return _timed(lambda f: follower(f.image), frames)

    # model alone; a warm-up frame first so lazy initialisation is not timed (the pipeline gets it warm too)
    PersonFollower(detector, estimator)(frames[0].image)
    poses, model_ms = model_alone()

    tracker = Tracker()
    smoother = PoseSmoother(config.smooth_strength) if config.smooth else None

    def track(pair):
        frame, found = pair
        found = tracker.update(found)
        if smoother is not None:
            for track_id in tracker.lost_ids:
                smoother.reset(track_id)
            found = smoother.smooth(found, frame.timestamp)
        return FrameResult(frame.index, frame.timestamp, found, size)

    results, track_ms = _timed(track, list(zip(frames, poses)))

    with tempfile.TemporaryDirectory(prefix="transpose-live-bench-") as tmp:
        writer = VideoWriter(Path(tmp) / "alone.mp4", *size, fps=fps, time_base=time_base)

        def render(pair):
            frame, result = pair
            writer.write(draw_frame(frame.image, result, draw_boxes=config.draw_boxes, draw_ids=config.draw_ids,
                                    attention=config.attention), frame.timestamp)

        t0 = time.perf_counter()
        _timed(render, list(zip(frames, results)))
        writer.close()       # flushing the encoder is part of encoding
        render_ms = 1000.0 * (time.perf_counter() - t0) / len(frames)

        # the whole pipeline on the same frames, read from the file again (capture included)
        with FileSource(path) as source:
            sink = VideoWriter(Path(tmp) / "pipeline.mp4", *size, fps=fps, time_base=time_base)
            run_config = PipelineConfig(**{**config.__dict__, "max_frames": len(frames)})
            stats = Pipeline(source, run_config, [sink], estimator=estimator, detector=detector).run()

    # the model alone once more: on a shared machine the load drifts, the mean of before and after is fairer
    model_ms = (model_ms + model_alone()[1]) / 2

    return PipelineBench(
        video=str(path), frames=len(frames), device=str(estimator.device),
        stage_ms={"capture": capture_ms, "model": model_ms, "track": track_ms, "render": render_ms},
        pipeline_fps=stats.fps, pipeline_stage_ms=dict(stats.stage_ms), detector_calls=stats.detector_calls,
        persons_per_frame=sum(len(p) for p in poses) / len(poses),
    )


def format_bench(b: PipelineBench) -> str:
    lines = [f"{Path(b.video).name}: {b.frames} frames on {b.device}, "
             f"{b.persons_per_frame:.1f} persons/frame, detector on {b.detector_calls} frames",
             f"{'stage':20} {'alone ms':>9} {'fps':>8} {'in pipeline ms':>15}"]
    for name, label in STAGE_LABELS.items():
        ms = b.stage_ms[name]
        lines.append(f"{label:20} {ms:9.1f} {1000.0 / ms if ms else float('inf'):8.1f} "
                     f"{b.pipeline_stage_ms.get(name, float('nan')):15.1f}")
    lines.append(f"bound: 1 / slowest stage ({STAGE_LABELS[b.slowest]}) = {b.bound_fps:.2f} fps")
    lines.append(f"pipeline end to end: {b.pipeline_fps:.2f} fps")
    lines.append(f"ratio end-to-end / bound: {b.ratio:.2f}")
    return "\n".join(lines)


def bench_pipeline_cli(video_path, max_frames: int = 100, device: str = "cpu", json_out=None) -> PipelineBench:
    """What `transpose-live bench --pipeline` runs: print the table, optionally write it as JSON."""
    import typer

    from .sinks import AtomicPath

    if json_out is not None:
        AtomicPath(json_out, "json").discard()     # an unwritable path fails now, not after the run
    bench = bench_pipeline(video_path, max_frames=max_frames, device=device)
    typer.echo(format_bench(bench))
    if json_out is not None:
        try:
            Path(json_out).write_text(json.dumps(bench.as_dict(), indent=2) + "\n")
        except OSError as exc:
            raise TransposeLiveError(f"cannot write {json_out}: {exc.strerror}") from None
    return bench


__all__ = ["PipelineBench", "bench_pipeline", "bench_pipeline_cli", "format_bench"]
