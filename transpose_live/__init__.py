"""transpose-live: real-time human pose estimation with TransPose."""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: `import transpose_live` stays cheap for the CLI's --help
    if name == "create_model":
        from .models.transpose import create_model

        return create_model
    if name == "PoseEstimator":
        from .estimator import PoseEstimator

        return PoseEstimator
    raise AttributeError(name)


__all__ = ["create_model", "PoseEstimator", "__version__"]
