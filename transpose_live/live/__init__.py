"""Frames over time, from a source to the outputs: the threaded pipeline (capture -> detect -> pose -> track +
smooth -> render -> write), person following between detector calls, tracking with ids, Kalman smoothing (filterpy),
drawing, the run options (spec.RunSpec) and the public run API (run: process_video, annotate_image, open_run,
load_runner).

May use: pose, detect, media, model and the root vocabulary. Never: monitor, train, bench, cli, ui.
"""
