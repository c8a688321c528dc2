"""Frames in and results out: sources (files and folders through PyAV, RTSP with reconnection, cameras), sinks
(annotated video with its audio, JSON Lines, COCO results), recording in segments, photos, the JSON records of poses,
and the one redactor of passwords in URLs.

May use: the root vocabulary (errors, types, skeleton, geometry, image, progress) and model's cache folder.
Never: pose, detect, live or anything above (media moves frames and records; it does not run the model).
"""
