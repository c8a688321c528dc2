"""load_model: a name (a weights entry or a preset) and optionally a checkpoint file -> a ready TransPose.

The hub only finds, downloads and verifies files (it returns paths); turning a path into a model is the
models' job, so the download code never builds networks except for its strict-load check. A released
name that is not cached yet is downloaded here on first use (hub.resolve_weights), so PoseEstimator,
load_runner and the window's model picker, which all come through load_model, fetch it the same way.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from transpose_live.errors import TransposeLiveError
from transpose_live.model import hub
from transpose_live.model.backends.source import ModelSource
from transpose_live.model.cache import file_sha256
from transpose_live.model.config import PRESETS, get_config, parse_image_size

if TYPE_CHECKING:
    from transpose_live.model.transpose import TransPose


def _preset_for(name: str) -> tuple[str, tuple[int, int] | None]:
    """Preset and training image size for a preset name or a weights entry name."""
    known = hub.entries()
    if name in known:
        return known[name].preset, known[name].image_size
    if name in PRESETS:
        return name, None
    if name == hub.DEFAULT_NAME:
        hub.get_entry(name)  # raises the "not installed" message
    raise TransposeLiveError(f"unknown model {name!r}; choose a preset ({', '.join(PRESETS)}) "
                             f"or a weights name ({', '.join(known)})")


def load_model(name: str | None = None, weights: str | os.PathLike | None = None,
               image_size: tuple[int, int] | str | None = None) -> TransPose:
    """A TransPose model in eval mode with strictly loaded weights.

    name: a weights entry ("default" when None; a released one is downloaded on first use, with a progress
          bar on stderr, unless TRANSPOSE_LIVE_OFFLINE / --offline forbids it) or, with `weights`, a preset name.
    weights: a checkpoint file; its architecture is `name`'s preset.
    image_size: (h, w) or "HxW" input size; None: the size the weights were trained at.
    """
    return model_source(name, weights, image_size).module()


def model_source(name: str | None = None, weights: str | os.PathLike | None = None,
                 image_size: tuple[int, int] | str | None = None) -> ModelSource:
    """What load_model would build, as a ModelSource: its config and an identity (the checkpoint file's
    sha256 with the config) known without torch, the module built on first `.module()`. Where the size is
    not known without reading the checkpoint (a preset's file, no image_size), the module is built here."""
    name = name or hub.DEFAULT_NAME
    if weights is not None:
        if name == hub.DEFAULT_NAME and hub.DEFAULT_NAME not in hub.entries():
            raise TransposeLiveError(f"say which model {weights} is for: one of {', '.join(PRESETS)}")
        preset, trained_size = _preset_for(name)
        path = Path(weights).expanduser()
        if not path.is_file():
            raise TransposeLiveError(f"checkpoint file not found: {path}")
    else:
        known = hub.entries()
        if name not in known and name in PRESETS:
            raise TransposeLiveError(
                f"no released weights for {name!r}; pass a checkpoint file (--weights FILE) or use one of: "
                f"{', '.join(known)}"
            )
        path = hub.resolve_weights(name)
        entry = hub.get_entry(name)
        preset, trained_size = entry.preset, entry.image_size
    size = parse_image_size(image_size) if image_size is not None else trained_size

    def build() -> TransPose:
        from transpose_live.model.transpose import create_model  # deferred: torch, only when the module is needed

        return create_model(preset, weights=path, image_size=size).eval()

    if size is None:     # the trained size is read off the checkpoint: build it now
        module = build()
        config = module.config
    else:
        config = get_config(preset).with_image_size(*size)   # what create_model sets as .config
        module = None

    def identity() -> str:
        return hashlib.sha256(f"file:{file_sha256(path)}:{config!r}".encode()).hexdigest()

    return ModelSource(config, identity, build, module=module)


__all__ = ["load_model", "model_source"]
