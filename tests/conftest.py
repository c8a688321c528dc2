"""Fixtures every test module may ask for (helpers to import are in helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import MOSQUITTO, Mosquitto, Subscriber

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


@pytest.fixture
def broker(tmp_path, request) -> Mosquitto:
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"needs the mosquitto broker at {MOSQUITTO} (Debian package mosquitto; .ci/run installs it)")
    server = Mosquitto(tmp_path)
    request.addfinalizer(server.kill)
    server.start()
    return server


@pytest.fixture
def subscriber(broker, request) -> Subscriber:
    client = Subscriber(broker.port)
    request.addfinalizer(client.close)
    return client
