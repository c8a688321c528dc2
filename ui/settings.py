"""The run's settings as the window keeps them: a RunSpec (transpose_live.live.spec), changed by copies.

The window never changes a RunSpec in place: a new model, device or frame limit is a copy (with_settings),
handed to the next worker."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

from transpose_live.live.spec import RunSpec

Settings = TypeVar("Settings")


def default_config() -> RunSpec:
    """The defaults of every run option."""
    return RunSpec()


def with_settings(config: Settings, **changes: Any) -> Settings:
    """A copy of `config` with some fields changed (a frozen dataclass or any plain object)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.replace(config, **changes)
    clone = copy.copy(config)
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone
