"""Resolve `type:` strings to backend classes without importing their drivers up front.

Each interface has one table mapping a type name to "module:Class"; the class carries a
pydantic `Config` and is constructed as `Class(config, repo_config)`.
"""

from __future__ import annotations

import importlib
from typing import Any


def load_class(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def config_class(target: str) -> Any:
    return load_class(target).Config
