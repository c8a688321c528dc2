"""Shared test fixtures: the optional ../shared folder beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSPOSE_LIVE_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test (with the reason) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {Path('shared').joinpath(*parts)} beside the checkout (absent here)")
    return path


# Set at import, before any fixture: pytest-qt's session QApplication may be made before the autouse
# fixture below runs, and without a display Qt's default xcb plugin would abort the process.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _offscreen_qt(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A random TransPose-M-A4 checkpoint at 64x48 input: the real loading and running code paths, at a
    fraction of the shipped model's cost. Use as `--model tp_m_a4 --weights FILE` (or model=, weights=)."""
    import torch

    from transpose_live.model import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny_tp_m_a4.pth"
    torch.save(create_model("tp_m_a4", image_size=(64, 48)).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_options(tiny_weights) -> dict:
    """Run options for the tiny model, the whole frame as the person (no detector to load)."""
    return {"model": "tp_m_a4", "weights": str(tiny_weights), "device": "cpu", "detector": "none"}


def synthetic_clip(path: Path, frames: int = 12, size: tuple[int, int] = (96, 64), fps: int = 10) -> Path:
    """A small H.264 clip of moving colour blocks (PyAV)."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            image = np.zeros((h, w, 3), np.uint8)
            image[:, (4 * i) % w:(4 * i) % w + 16] = (40 * i % 255, 120, 200)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def loud_weights(tiny_weights, tmp_path_factory) -> Path:
    """The tiny checkpoint with its heatmaps shifted: joints 0-5 peak above 1 (scores clipped to 1), 6-11
    near 0.5 (confident: smoothed, drawn), 12-16 below 0 (score 0); person score ~0.53."""
    import torch

    state = torch.load(tiny_weights, map_location="cpu")
    bias = state["final_layer.bias"].clone()
    bias[:6] += 1.5
    bias[6:12] += 0.5
    bias[12:] -= 1.0
    state["final_layer.bias"] = bias
    path = tmp_path_factory.mktemp("loud") / "loud_tp_m_a4.pth"
    torch.save(state, path)
    return path


def main_runner(monkeypatch, capture, command: str):
    """run(args) -> (exit code, stdout, stderr) of `transpose-live COMMAND ARGS` through cli.app:main, as
    the console script runs it; `capture` is pytest's capsys or capfd."""
    import sys

    from transpose_live.cli import app as app_module

    def run(args):
        monkeypatch.setattr(sys, "argv", ["transpose-live", command, *map(str, args)])
        code = 0
        try:
            app_module.main()
        except SystemExit as stop:
            code = stop.code
        out = capture.readouterr()
        return code, out.out, out.err

    return run


def wait_until(predicate, timeout: float, step: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass (then one last look)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
