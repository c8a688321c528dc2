"""The run options every command shares, defined once: the same name, help and default everywhere.

A command takes them with `@with_spec("model", "detect", ...)`: the decorator adds the options to the
command's signature (Typer reads it) and hands the command one validated `RunSpec` as `spec`. Defaults come
from RunSpec itself, so the library and the CLI cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional

import typer

from transpose_live.live.spec import RunSpec


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
    "backend": SharedOption(("--backend",), str, "Where the pose model runs: auto (the fastest here: "
                            "OpenVINO or ONNX Runtime on the CPU, torch on CUDA), torch, onnxruntime or openvino."),
    "precision": SharedOption(("--precision",), str, "auto (fp16 on CUDA; on the CPU mixed where "
                              "OpenVINO runs and the CPU has bf16, else fp32), fp32, mixed "
                              "(OpenVINO: the CNN stem and head "
                              "at fp32, the encoder at bf16; within fp16 noise of fp32, ~1.3-1.4x its speed) or bf16 "
                              "(OpenVINO, all bf16: faster again, keypoints move more)."),
    "offline": SharedOption(("--offline",), bool, "Never use the network to fetch weights: a released model "
                            "that is not cached yet is an error instead of a download (as TRANSPOSE_LIVE_OFFLINE=1)."),
    "flip": SharedOption(("--flip/--no-flip",), bool, "Flip test: also run the mirrored crop and average "
                         "(a little more accurate, half the speed)."),
    # finding persons
    "detector": SharedOption(("--detector",), str, "Person detector: ssd, rtmdet (RTMDet-nano, shipped; "
                             "rtmdet:FILE another MMDeploy export of it), none (the whole frame is one "
                             "person) or onnx:FILE (a YOLOv8/YOLOX export)."),
    "detect_every": SharedOption(("--detect-every",), int, "Run the detector every N frames (default 2); in "
                                 "between follow each person from their previous pose (1: detect on every frame)."),
    "detect_tiles": SharedOption(("--detect-tiles",), int, "Also run the detector on N square windows along a "
                                 "wide frame's long side (finds persons far from the camera; N+1 detector calls "
                                 "per detection; 0: the whole frame only)."),
    "detect_async": SharedOption(("--detect-async/--detect-in-series",), bool, "Run the detector on its own "
                                 "thread beside the pose model: frames go on with the persons already followed "
                                 "(lower latency where the model is fast, e.g. on CUDA); its boxes join a frame "
                                 "or two late."),
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
    "model": ("model", "weights", "offline", "device", "backend", "precision", "flip"),
    "detect": ("detector", "detect_every", "detect_tiles", "detect_async", "min_person_score"),
    "smooth": ("smooth", "smooth_strength"),
    "draw": ("attention", "joint", "min_joint_score", "boxes", "ids", "hud"),
    "frames": ("start", "end", "max_frames", "duration"),
}

# Options about the process rather than the run (not RunSpec fields): the command runs inside their effect.
PROCESS_OPTIONS = ("offline",)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunSpec)} | {"offline": False}


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


def inject_options(fn: Callable, params: list[inspect.Parameter], build: Callable[[dict], Any], arg: str) -> Callable:
    """`fn` with `params` added to the signature Typer reads; their values reach it as `arg`=build(values)."""
    signature = inspect.signature(fn)
    own = [p for p in signature.parameters.values() if p.name != arg]
    names = [p.name for p in params]

    @functools.wraps(fn)
    def command(**kwargs):
        values = {name: kwargs.pop(name) for name in names}
        return fn(**{arg: build(values)}, **kwargs)

    command.__signature__ = signature.replace(parameters=own + params)
    return command



def option_group(cls: type, flags: dict[str, tuple[str, dict]], arg: str) -> Callable[[Callable], Callable]:
    """A decorator that adds one option per field of the dataclass `cls` (flag and Typer settings from `flags`);
    the command gets `arg`=cls(**values), its other parameters unchanged."""
    types = typing.get_type_hints(cls)          # real types: the dataclass modules' annotations are strings
    params = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=types[f.name],
                                default=typer.Option(f.default, flags[f.name][0], **flags[f.name][1]))
              for f in dataclasses.fields(cls)]

    def decorate(fn: Callable) -> Callable:
        return inject_options(fn, params, lambda values: cls(**values), arg)

    return decorate

def with_spec(*names: str) -> Callable[[Callable], Callable]:
    """Add the shared options `names` (option names or GROUPS) to a command; it gets `spec=RunSpec`.
    --offline (in the "model" group) is not part of the spec: the command runs with downloads forbidden."""
    fields = expand(names)
    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option(name),
                                annotation=OPTIONS[name].annotation) for name in fields]
    run_params = [p for p in params if p.name not in PROCESS_OPTIONS]
    process_params = [p for p in params if p.name in PROCESS_OPTIONS]

    def decorate(fn: Callable) -> Callable:
        command = inject_options(fn, run_params, lambda values: RunSpec.from_options(**values), "spec")
        return _with_offline(command, process_params) if process_params else command

    return decorate


def _with_offline(fn: Callable, params: list[inspect.Parameter]) -> Callable:
    """`fn` with the --offline option; its body runs with network access forbidden when it is given."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def command(**kwargs):
        from transpose_live.model.download import network_forbidden  # deferred: the model package loads torch

        with network_forbidden(bool(kwargs.pop("offline"))):
            return fn(**kwargs)

    parameters = list(signature.parameters.values())
    # shown in --help beside --model / --weights, where the group lists it
    at = next((i + 1 for i, p in enumerate(parameters) if p.name == "weights"), len(parameters))
    command.__signature__ = signature.replace(parameters=parameters[:at] + params + parameters[at:])
    return command


@dataclass(frozen=True)
class StreamOptions:
    """How the IP-camera commands (rtsp, monitor) treat their streams and what they report."""

    transport: str = "tcp"
    max_retries: Optional[int] = None
    timeout: float = 10.0
    down_seconds: float = 2.0
    mqtt: Optional[str] = None

    def source_options(self) -> dict:
        return {"transport": self.transport, "timeout": self.timeout, "max_retries": self.max_retries}


_STREAM_FLAGS = {
    "transport": ("--transport", dict(help="RTSP over tcp (default) or udp.")),
    "max_retries": ("--max-retries", dict(min=0, help="Give up on a camera after this many failed reconnections "
                                         "in a row (default: never; 0: fail at once).")),
    "timeout": ("--timeout", dict(min=0.5, help="Seconds to wait for a camera to answer or send a frame before "
                                  "reconnecting.")),
    "down_seconds": ("--down-seconds", dict(min=0.1, help="A person lying down this long gives a person_down "
                                            "event.")),
    "mqtt": ("--mqtt", dict(help="Also publish events and per-frame summaries to this MQTT broker: "
                            "HOST[:PORT] (topics transpose-live/<camera>/events and .../poses).")),
}


def with_stream_options(fn: Callable) -> Callable:
    """Add the stream options (transport, retries, timeout, fall events, MQTT); the command gets `stream`."""
    return option_group(StreamOptions, _STREAM_FLAGS, "stream")(fn)


def say(message: str) -> None:
    """A message for the person at the terminal: stderr, so that stdout carries only results."""
    typer.echo(message, err=True)


__all__ = ["OPTIONS", "GROUPS", "option", "with_spec", "with_stream_options", "StreamOptions", "say"]
