"""transpose-live: real-time human pose estimation with TransPose.

    import transpose_live as tl
    summary = tl.process_video("in.mp4", out="out.mp4", json="poses.jsonl")
    poses = tl.annotate_image("photo.jpg")
    with tl.open_run(0) as run:
        for frame in run: ...

See transpose_live.live.run for the options (the CLI's, by the same names).
"""

__version__ = "0.1.0"

# lazy: `import transpose_live` (and the CLI's --help) stays cheap; torch loads on first use
_LAZY = {
    "process_video": "live.run", "annotate_image": "live.run", "open_run": "live.run", "load_runner": "live.run",
    "PoseRunner": "live.run", "RunSummary": "live.run", "Interrupted": "live.run",
    "RunSpec": "live.spec", "Pose": "types", "FrameResult": "types", "TransposeLiveError": "errors",
    "PoseEstimator": "pose.estimator", "create_model": "model",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'transpose_live' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [*_LAZY, "__version__"]
