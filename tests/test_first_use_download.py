"""A released model named but not cached is downloaded on first use: by any command, by the Python API, and
safely (atomic, checked, locked), against a local HTTP server this module starts (TRANSPOSE_LIVE_HUB_URL points
the registry at it). Nothing reaches outside the machine."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import threading

import cv2
import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.model import hub
from transpose_live.model.download import DownloadCancelled

from helpers import MB, REPO, HubHandler, checkpoint_bytes, main_runner, serve_hub

NAME = "tp_r_a3"                                   # the smallest released model: ~20 MB
FILENAME = "tp_r_256x192_enc3_d256_h1024_mh8.pth"


@pytest.fixture(scope="module")
def released() -> bytes:
    """Stands in for the authors' file: the preset's keys and shapes, random values."""
    return checkpoint_bytes(NAME, 0)


@pytest.fixture(scope="module")
def server():
    with serve_hub() as url:
        yield url


@pytest.fixture()
def hub_at(server, released, tmp_path, monkeypatch):
    """An empty cache; the registry's base URL replaced by the local server's `/<prefix>`; returns a setter."""
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSPOSE_LIVE_OFFLINE", raising=False)
    HubHandler.files.clear()
    HubHandler.files[FILENAME] = released
    HubHandler.requests.clear()

    def point(prefix: str = "hub") -> str:
        monkeypatch.setenv("TRANSPOSE_LIVE_HUB_URL", f"{server}/{prefix}")
        return f"{server}/{prefix}/{FILENAME}"

    point()
    yield point
    HubHandler.files.clear()


@pytest.fixture()
def photo(tmp_path) -> str:
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (240, 180, 3), dtype=np.uint8))
    return str(path)


@pytest.fixture()
def image_cli(monkeypatch, capsys):
    return main_runner(monkeypatch, capsys, "image")


def _home(tmp_path):
    return tmp_path / "home"


def _cache_left(tmp_path) -> list[str]:
    folder = _home(tmp_path) / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _one_error_line(code: int, err: str, *parts: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and lines and lines[-1].startswith("error: "), err
    assert not any(line.startswith("error: ") for line in lines[:-1]) and "Traceback" not in err
    for part in parts:
        assert part in lines[-1], (part, lines[-1])
    return lines[-1]


IMAGE_ARGS = ["--model", NAME, "--detector", "none", "--device", "cpu", "--backend", "torch"]


# ------------------------------------------------------------------------------------------ first use

def test_a_command_downloads_on_first_use_with_progress_then_runs_from_the_cache(tmp_path, hub_at, photo,
                                                                                 image_cli, released):
    out = tmp_path / "poses.json"
    # random values score low: keep every person so the pose shows the model ran
    code, stdout, err = image_cli([photo, *IMAGE_ARGS, "--min-person-score", "0", "--json", out])
    assert code == 0, err
    mb = len(released) / MB
    assert f"downloading {NAME}: {mb:.1f}/{mb:.1f} MB (100%)" in err           # the bar, on stderr
    target = _home(tmp_path) / "checkpoints" / FILENAME
    assert target.read_bytes() == released and _cache_left(tmp_path) == [FILENAME]   # no temp file left
    recorded = json.loads((_home(tmp_path) / "hashes.json").read_text())[NAME]
    assert recorded == {"filename": FILENAME, "sha256": hashlib.sha256(released).hexdigest(),
                        "source": hub_at()}
    (pose,) = json.loads(out.read_text())
    assert len(pose["keypoints"]) == 17 * 3
    assert HubHandler.requests == [f"/hub/{FILENAME}"]

    # Second run: from the cache, checked against the recorded sha256, without the network.
    HubHandler.files.clear()
    code, _, err = image_cli([photo, *IMAGE_ARGS, "--offline", "--json", out])
    assert code == 0, err
    assert "downloading" not in err and len(HubHandler.requests) == 1


def test_the_python_api_downloads_a_name_on_first_use(tmp_path, hub_at, released, capfd):
    from transpose_live import load_runner
    from transpose_live.pose.estimator import PoseEstimator

    runner = load_runner(model=NAME, detector="none", device="cpu", backend="torch")
    assert (_home(tmp_path) / "checkpoints" / FILENAME).read_bytes() == released
    assert runner is not None and f"downloading {NAME}:" in capfd.readouterr().err
    estimator = PoseEstimator(model=NAME, device="cpu")     # cached now: no second request
    assert estimator is not None and len(HubHandler.requests) == 1


def test_load_model_verifies_what_it_downloaded(tmp_path, hub_at, released):
    from transpose_live.model import load_model

    model = load_model(NAME)
    expected = torch.load(io.BytesIO(released), weights_only=True)
    assert torch.equal(model.state_dict()["final_layer.weight"], expected["final_layer.weight"])
    path = _home(tmp_path) / "checkpoints" / FILENAME
    path.write_bytes(released[:-10] + b"0123456789")           # damaged after the download
    with pytest.raises(TransposeLiveError, match="sha256.*corrupted or replaced"):
        load_model(NAME)
    assert len(HubHandler.requests) == 1                          # refused, not silently fetched again


# ------------------------------------------------------------------------------------------ failures

def test_a_cut_off_transfer_is_one_line_and_leaves_nothing(tmp_path, hub_at, photo, image_cli):
    url = hub_at("cut")
    code, _, err = image_cli([photo, *IMAGE_ARGS])
    _one_error_line(code, err, f"could not download {url}", "bytes missing",
                    f"transpose-live weights import FILE --name {NAME}")
    assert _cache_left(tmp_path) == [] and not (_home(tmp_path) / "hashes.json").exists()


def test_a_file_that_changed_since_its_sha256_was_recorded_is_refused(tmp_path, hub_at, photo, image_cli):
    hub.download(NAME, progress=False)                          # pins the sha256 of the first file
    (_home(tmp_path) / "checkpoints" / FILENAME).unlink()       # cache cleared, hashes.json kept
    HubHandler.files[FILENAME] = checkpoint_bytes(NAME, 1)             # the server now serves other values
    code, _, err = image_cli([photo, *IMAGE_ARGS])
    _one_error_line(code, err, f"downloaded {hub_at()} has sha256", "as recorded before",
                    f"weights import FILE --name {NAME}")
    assert _cache_left(tmp_path) == []


def test_a_file_that_does_not_load_strictly_is_not_cached(tmp_path, hub_at, photo, image_cli):
    HubHandler.files[FILENAME] = checkpoint_bytes("tp_r_a4", 0)        # one encoder layer too many for R-A3
    code, _, err = image_cli([photo, *IMAGE_ARGS])
    _one_error_line(code, err, f"downloaded {hub_at()}", "unexpected keys: global_encoder.layers.3")
    assert _cache_left(tmp_path) == [] and not (_home(tmp_path) / "hashes.json").exists()


def test_offline_flag_and_variable_never_touch_the_network(tmp_path, hub_at, photo, image_cli, monkeypatch,
                                                           capsys):
    url = hub_at()
    code, _, err = image_cli([photo, *IMAGE_ARGS, "--offline"])
    _one_error_line(code, err, url, "network access is off", f"weights import FILE --name {NAME}")

    monkeypatch.setenv("TRANSPOSE_LIVE_OFFLINE", "1")
    code, _, err = image_cli([photo, *IMAGE_ARGS])
    _one_error_line(code, err, url, "network access is off")
    code, _, err = main_runner(monkeypatch, capsys, "weights")(["download", NAME])
    _one_error_line(code, err, f"not downloading {url}", f"weights import FILE --name {NAME}")

    monkeypatch.setenv("TRANSPOSE_LIVE_OFFLINE", "0")           # 0 / false / no / off: allowed
    assert hub.offline() is False
    assert HubHandler.requests == [] and _cache_left(tmp_path) == []


def test_a_cancelled_download_leaves_nothing(tmp_path, hub_at):
    """The window's model picker: progress by callback, a Cancel button as an event."""
    hub_at("slow")
    seen, cancel = [], threading.Event()

    def on_bytes(received, total):
        seen.append((received, total))
        if received >= 2 * MB:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="cancelled"):
        hub.download(NAME, progress=False, on_bytes=on_bytes, cancel=cancel)
    assert seen and seen[0][1] == len(HubHandler.files[FILENAME]) and seen[-1][0] < seen[0][1]
    assert _cache_left(tmp_path) == []


# ---------------------------------------------------------------------------------------- concurrency

def test_two_threads_downloading_the_same_name_fetch_it_once(tmp_path, hub_at, released):
    hub_at("slow")
    paths, errors = [], []

    def first_use():
        try:
            paths.append(hub.resolve_weights(NAME, progress=False))
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(paths) == 2 and paths[0] == paths[1]
    assert paths[0].read_bytes() == released and _cache_left(tmp_path) == [FILENAME]
    assert len(HubHandler.requests) == 1                          # the second waited, then found it cached


CHILD = textwrap.dedent("""
    import pathlib, sys, time
    from transpose_live.model import hub
    ready = pathlib.Path(sys.argv[1])
    ready.joinpath(sys.argv[2]).touch()
    while len(list(ready.iterdir())) < 2:      # both processes start the download together
        time.sleep(0.01)
    print(hub.resolve_weights("tp_r_a3"))
""")


def test_two_processes_downloading_the_same_name_at_once(tmp_path, hub_at, released):
    url = hub_at("slow")
    HubHandler.slow_s = 0.1                                       # ~2 s for the file: the runs overlap
    ready = tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        children = [subprocess.Popen([sys.executable, "-c", CHILD, str(ready), str(i)], cwd=tmp_path, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
        results = [child.communicate(timeout=300) for child in children]
    finally:
        HubHandler.slow_s = 0.05
    target = _home(tmp_path) / "checkpoints" / FILENAME
    assert [c.returncode for c in children] == [0, 0], results
    assert [out.strip() for out, _ in results] == [str(target)] * 2
    assert target.read_bytes() == released and _cache_left(tmp_path) == [FILENAME]
    assert json.loads((_home(tmp_path) / "hashes.json").read_text())[NAME]["sha256"] == \
        hashlib.sha256(released).hexdigest()
    # one fetched it (its bar ends at 100%), the other waited for it and took the cached file
    errs = [err for _, err in results]
    assert sum("(100%)" in err for err in errs) == 1
    assert sum(f"waiting for another download of {NAME}" in err for err in errs) == 1
    assert HubHandler.requests == [f"/slow/{FILENAME}"], url


def test_the_cached_file_is_readable_like_any_other(tmp_path, hub_at):
    path = hub.download(NAME, progress=False)
    assert path.stat().st_mode & 0o777 == 0o644          # not the temp file's private 0600
