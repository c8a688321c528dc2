"""`transpose-live gui` from the command line, in a fresh process as a user runs it: the headless check
(--frames/--screenshot, offscreen) and the one-line refusal when Qt's xcb plugin lacks system libraries."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtCore")

W, H = 160, 120


def gui(args, **env):
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **env}
    return subprocess.run([sys.executable, "-m", "transpose_live", "gui", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=environment)


def picture(path):
    import cv2

    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a picture"
    return image


def test_headless_check_writes_screenshots_that_show_the_overlay(tmp_path, tiny_options):
    from helpers import synthetic_clip

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=8, size=(W, H), fps=10)
    tiny = [f"--{k}={v}" for k, v in tiny_options.items()] + ["--min-person-score", "0"]
    plain, inspected = tmp_path / "plain.png", tmp_path / "wrist.png"
    run = gui([clip, "--frames", 5, "--screenshot", plain, *tiny])
    assert run.returncode == 0, run.stderr
    assert f"wrote {plain}" in run.stderr and run.stdout == ""
    run = gui([clip, "--frames", 5, "--screenshot", inspected, "--attention", "--joint", "left_wrist", "--layer", 2,
               *tiny])
    assert run.returncode == 0, run.stderr
    a, b = picture(plain), picture(inspected)
    assert a.shape[0] > H and a.shape[1] > W                 # the whole window, not just the frame
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 50
    assert a.shape != b.shape or np.abs(a.astype(int) - b).mean() > 1   # the overlay and the inspector show


def test_headless_check_needs_both_options_and_a_playable_source(tmp_path):
    run = gui([tmp_path / "nothing.mp4", "--frames", 3])
    assert run.returncode == 2 and "--frames and --screenshot go together" in run.stderr
    run = gui([tmp_path / "nothing.mp4", "--frames", 3, "--screenshot", tmp_path / "x.png"])
    assert run.returncode == 2 and "nothing.mp4" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "x.png").exists()


def test_missing_xcb_libraries_are_one_line_and_exit_2_not_a_crash():
    from transpose_live.ui.app import missing_platform_libraries

    missing = missing_platform_libraries("xcb")
    if not missing:
        pytest.skip("this machine has every library of Qt's xcb plugin (the refusal is unit-tested in test_ui)")
    run = gui([], QT_QPA_PLATFORM="xcb", DISPLAY=":0")
    assert run.returncode == 2, run.stderr                  # not 134 (SIGABRT)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "sudo apt-get install" in lines[0] and missing[0] in lines[0]


def test_headless_check_on_a_real_x_server(tmp_path, tiny_options):
    """The same check on Xvfb with Qt's xcb plugin (what a desktop user gets), not the offscreen plugin."""
    import shutil

    from transpose_live.ui.app import missing_platform_libraries

    if shutil.which("xvfb-run") is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb xauth)")
    missing = missing_platform_libraries("xcb")
    if missing:
        pytest.skip(f"Qt's xcb plugin misses {', '.join(missing)} here")
    from helpers import synthetic_clip

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=6, size=(W, H), fps=10)
    shot = tmp_path / "x11.png"
    tiny = [f"--{k}={v}" for k, v in tiny_options.items()] + ["--min-person-score", "0"]
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m", "transpose_live",
                          "gui", str(clip), "--frames", "4", "--screenshot", str(shot), *tiny],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    image = picture(shot)
    assert image.shape[0] > H and image.shape[1] > W
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50


def test_without_any_display_the_check_draws_offscreen_and_the_window_says_what_to_do(tmp_path, tiny_options):
    """A server with no screen and no QT_QPA_PLATFORM: the headless check still runs (offscreen); the window
    itself refuses in one line that names Xvfb and the headless check."""
    from helpers import synthetic_clip

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=6, size=(W, H), fps=10)
    shot = tmp_path / "noscreen.png"
    tiny = [f"--{k}={v}" for k, v in tiny_options.items()] + ["--min-person-score", "0"]
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "transpose_live", "gui", *map(str, args)], capture_output=True,
                              text=True, timeout=300, env=env)

    done = run(clip, "--frames", 3, "--screenshot", shot, *tiny)
    assert done.returncode == 0, done.stderr
    assert picture(shot).shape[0] > H
    refused = run(clip, *tiny)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "no display" in lines[0] and "Xvfb" in lines[0] and "--frames N --screenshot FILE" in lines[0]
