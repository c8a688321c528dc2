"""One person's pose from one frame: box -> crop (preprocess), the model's forward pass (estimator, on any
backend of transpose_live.model), heatmaps -> keypoints with DARK and the flip test (decode), the attention maps as
dependency areas (attention, inspector), crops of many callers in one batch (batching); cuda/ is the GPU path
(crops, decoding and CUDA graphs on the device).

May use: transpose_live.model and the root vocabulary (errors, types, skeleton, geometry, image, progress).
Never: detect, media, live or anything above (pose knows nothing of frames over time or where boxes come from).
"""
