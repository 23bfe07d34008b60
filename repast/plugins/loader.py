"""Resolve `type:` strings to backend classes without importing their drivers up front.

The tables live in repast/plugins/table.py (one for every kind); these helpers take a "module:Class".
"""

from __future__ import annotations

import importlib
from typing import Any


def load_class(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def config_class(target: str) -> Any:
    return load_class(target).Config
