"""The wheel a user installs: every subpackage and the shipped weights inside it (packages are found, not listed),
and a non-editable install that runs the README's main job from another directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import REPO

# what a wheel is built from (a copy: building in the checkout would leave build/ and *.egg-info there)
SOURCES = ("pyproject.toml", "setup.py", "README.md", "transpose_live", "cli", "ui")
PACKAGE_DATA = ("transpose_live/assets/default.pt", "transpose_live/assets/default.json", "transpose_live/py.typed",
                "transpose_live/monitor/web/static/index.html", "transpose_live/monitor/web/static/app.js")


def _packages() -> set[str]:
    """Every folder with an __init__.py, as the installed package path inside the wheel."""
    found = set()
    for top, installed in (("transpose_live", "transpose_live"), ("cli", "transpose_live/cli"),
                           ("ui", "transpose_live/ui")):
        for init in (REPO / top).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                found.add(str(Path(installed) / init.parent.relative_to(REPO / top)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(out)], cwd=src, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    wheels = list(out.glob("transpose_live-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_holds_every_subpackage_and_the_shipped_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = _packages()
    assert {"transpose_live", "transpose_live/cli", "transpose_live/ui", "transpose_live/model/backends",
            "transpose_live/pose/cuda"} <= packages      # the finder sees the nested ones too
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert missing == []
    assert [d for d in PACKAGE_DATA if d not in names] == []
    # nothing of the checkout beside the packages
    assert not [n for n in names if n.startswith(("tests/", "tools/", "cli/", "ui/", "samples/"))]


@pytest.mark.slow
def test_installed_wheel_runs_the_main_job_from_another_directory(wheel, tmp_path):
    """pip install of the wheel (into a folder of its own, dependencies from this environment), then
    `transpose-live video samples/pedestrians.mp4 --json -` run from elsewhere: the installed copy answers."""
    target = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                          str(wheel)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target), PYTHONDONTWRITEBYTECODE="1",
               TRANSPOSE_LIVE_HOME=str(tmp_path / "cache"))
    where = subprocess.run([sys.executable, "-c", "import transpose_live.cli.app as a; print(a.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    script = target / "bin" / "transpose-live"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "transpose_live"]
    video = subprocess.run([*command, "video", str(REPO / "samples" / "pedestrians.mp4"), "--json", "-",
                            "--max-frames", "4", "--no-progress"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert video.returncode == 0, video.stderr[-3000:]
    frames = [json.loads(line) for line in video.stdout.splitlines() if line.strip()]
    assert len(frames) == 4 and all("persons" in f for f in frames)
    assert sum(len(f["persons"]) for f in frames) > 0          # the shipped weights and detector found walkers
