"""Optional dependencies, imported lazily with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from voxloop.errors import MissingExtra


def require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(extra, module) from e
