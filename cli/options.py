"""The run options every command shares, defined once: the same name, help and default everywhere.

A command takes them with `@with_spec("model", "detect", ...)`: the decorator adds the options to the
command's signature (Typer reads it) and hands the command one validated `RunSpec` as `spec`. Defaults come
from RunSpec itself, so the library and the CLI cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional

import typer

from transpose_live.spec import RunSpec


@dataclass(frozen=True)
class SharedOption:
    flags: tuple[str, ...]
    annotation: Any
    help: str


OPTIONS: dict[str, SharedOption] = {
    # the model
    "model": SharedOption(("--model",), str, "Model: 'default' (the shipped one), a weights name from "
                          "`weights list`, or a preset for --weights."),
    "weights": SharedOption(("--weights",), Optional[str], "Checkpoint file for --model's preset."),
    "device": SharedOption(("--device",), str, "auto (CUDA when present), cpu, cuda or cuda:N."),
    "flip": SharedOption(("--flip/--no-flip",), bool, "Flip test: also run the mirrored crop and average "
                         "(a little more accurate, half the speed)."),
    # finding persons
    "detector": SharedOption(("--detector",), str, "Person detector: ssd, none (the whole frame is one "
                             "person) or onnx:FILE (a YOLOv8/YOLOX export)."),
    "detect_every": SharedOption(("--detect-every",), int, "Run the detector every N frames; in between "
                                 "follow each person from their previous pose."),
    "min_person_score": SharedOption(("--min-person-score",), float, "Leave out persons scoring below this "
                                     "(box score x mean joint score, 0..1)."),
    # over time
    "smooth": SharedOption(("--smooth/--no-smooth",), bool, "Kalman smoothing of the joints over time."),
    "smooth_strength": SharedOption(("--smooth-strength",), float, "Smoothing from 0 (none) to 1 (heaviest)."),
    # drawing
    "attention": SharedOption(("--attention",), bool, "Draw the dependency areas: the model's last-layer "
                              "attention at each joint (slower)."),
    "joint": SharedOption(("--joint",), Optional[str], "Only this joint's dependency area, e.g. left_wrist "
                          "(implies --attention)."),
    "min_joint_score": SharedOption(("--min-joint-score",), float, "Draw and count joints scoring at least "
                                    "this (0..1)."),
    "boxes": SharedOption(("--boxes",), bool, "Outline the person boxes."),
    "ids": SharedOption(("--ids/--no-ids",), bool, "Show each person's track id."),
    "hud": SharedOption(("--hud",), bool, "Show fps, latency and persons in the corner."),
    # which frames
    "start": SharedOption(("--start",), Optional[float], "Start at this second of the input (files)."),
    "end": SharedOption(("--end",), Optional[float], "Stop at this second of the input (files)."),
    "max_frames": SharedOption(("--max-frames",), Optional[int], "Process at most this many frames."),
    "duration": SharedOption(("--duration",), Optional[float], "Stop after this many seconds of running "
                             "(outputs finished, exit 0)."),
}

GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("model", "weights", "device", "flip"),
    "detect": ("detector", "detect_every", "min_person_score"),
    "smooth": ("smooth", "smooth_strength"),
    "draw": ("attention", "joint", "min_joint_score", "boxes", "ids", "hud"),
    "frames": ("start", "end", "max_frames", "duration"),
}

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunSpec)}


def option(name: str, default: Any = dataclasses.MISSING):
    """A fresh Typer option for one shared name (the default: RunSpec's)."""
    shared = OPTIONS[name]
    value = _DEFAULTS[name] if default is dataclasses.MISSING else default
    return typer.Option(value, *shared.flags, help=shared.help, show_default=True)


def expand(names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for name in names:
        for field in GROUPS.get(name, (name,)):
            if field not in OPTIONS:
                raise KeyError(f"no shared option {field!r}")
            if field not in out:
                out.append(field)
    return out


def with_spec(*names: str) -> Callable[[Callable], Callable]:
    """Add the shared options `names` (option names or GROUPS) to a command; it gets `spec=RunSpec`."""
    fields = expand(names)

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        own = [p for p in signature.parameters.values() if p.name != "spec"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option(name),
                                   annotation=OPTIONS[name].annotation) for name in fields]

        @functools.wraps(fn)
        def command(**kwargs):
            values = {name: kwargs.pop(name) for name in fields}
            return fn(spec=RunSpec.from_options(**values), **kwargs)

        command.__signature__ = signature.replace(parameters=own + added)
        return command

    return decorate


def say(message: str) -> None:
    """A message for the person at the terminal: stderr, so that stdout carries only results."""
    typer.echo(message, err=True)


__all__ = ["OPTIONS", "GROUPS", "option", "with_spec", "say"]
