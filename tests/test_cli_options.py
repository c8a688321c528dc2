"""One name per option across commands: the shared run options have the same flags, help and default in
every command's --help; a device that is not there gives the same one line from every command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from transpose_live import __version__
from transpose_live.cli import options
from transpose_live.cli.app import app

from helpers import REPO

# --model names the model everywhere; two commands take it in their own form: bench times several presets
# in one run, train names the preset to build and train (there are no weights to load yet). bench also takes
# several --backend / --precision values; export's --attention adds the maps to the graph's outputs.
SEVERAL = {("bench", "model"), ("bench", "backend"), ("bench", "precision"), ("train", "model"),
           ("export", "attention")}


def all_commands() -> dict:
    group = typer.main.get_command(app)
    found = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):      # a group (typer bundles its own click)
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


def option_rows() -> list[tuple]:
    return [(cmd, p) for cmd, command in all_commands().items() for p in command.params
            if p.param_type_name == "option" and p.name != "help"]


def test_shared_options_have_one_flag_help_and_default_everywhere():
    seen: dict[str, set] = {}
    for cmd, param in option_rows():
        if param.name not in options.OPTIONS or (cmd, param.name) in SEVERAL:
            continue
        shared = options.OPTIONS[param.name]
        flags = tuple(param.opts) + tuple(param.secondary_opts)
        expected = tuple(f for spec in shared.flags for f in spec.split("/"))
        assert flags == expected, f"{cmd}: {param.name} is {flags}, elsewhere {expected}"
        assert param.help == shared.help, f"{cmd}: --{param.name} help differs"
        seen.setdefault(param.name, set()).add(repr(param.default))
    assert seen["device"] == {"'auto'"} and seen["flip"] == {"False"}
    different = {name: defaults for name, defaults in seen.items() if len(defaults) > 1}
    assert not different, f"the same option has different defaults: {different}"


def test_every_flag_means_one_thing():
    """A flag spelled the same in two commands is the same shared option (or one of a few per-command
    output/input flags whose meaning is the command's own: --out, --json, ...)."""
    own_meaning = {"--out", "-o", "--json", "--progress", "--no-progress"}
    by_flag: dict[str, set] = {}
    for _cmd, param in option_rows():
        for flag in param.opts:
            by_flag.setdefault(flag, set()).add(param.name)
    clashes = {flag: names for flag, names in by_flag.items() if len(names) > 1 and flag not in own_meaning}
    assert not clashes
    # the names the issue found spelled two ways are gone
    assert "--draw-boxes" not in by_flag and "--min-score" not in by_flag and "--boxes" in by_flag


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "transpose_live", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


def test_a_missing_gpu_is_the_same_one_line_everywhere(tmp_path):
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    photo = REPO / "docs" / "images" / "sample_attention.jpg"
    runs = [cli("video", "samples/pedestrians.mp4", "--json", str(tmp_path / "p.jsonl"), "--device", "cuda:7"),
            cli("image", str(photo), "--device", "cuda:7"),
            cli("bench", "--device", "cuda:7", "--seconds", "0.1"),
            cli("eval", str(photo), str(tmp_path), "--device", "cuda:7")]
    lines = set()
    for proc in runs:
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        lines.add(proc.stderr.strip())
    assert len(lines) == 1 and "cuda:7" in lines.pop()
    assert list(tmp_path.iterdir()) == []


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"transpose-live {__version__}"
