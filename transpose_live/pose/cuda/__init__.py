"""The CUDA path of the estimator: the frame uploaded once and every crop cut by one grid_sample (crops), the
forward pass replayed from CUDA graphs per batch bucket (graphs), argmax + DARK on the device (decode), put together
in estimate.DeviceEstimator, which pose.estimator uses on CUDA for plain frames (docs/gpu.md).

May use: the rest of transpose_live.pose, transpose_live.model and the root vocabulary.
"""
