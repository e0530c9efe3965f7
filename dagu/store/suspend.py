"""Suspend flags: an empty `<suspend_dir>/<file-name>.suspend` keeps the scheduler off a DAG (service.md 4.10).

Owns the flag's file name and reading it. Setting and clearing flags belongs to
the API and CLI; a suspended DAG can still be started by hand.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["suspend_flag_path", "is_suspended"]

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\s]')
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)


def suspend_flag_path(suspend_dir: str | os.PathLike[str], file_stem: str) -> Path:
    """The flag file of the DAG whose file is `<file_stem>.yaml`, named as Dagu names it."""
    name = _UNSAFE.sub("-", file_stem)
    if name.upper() in _RESERVED:
        name = "-"
    return Path(suspend_dir) / f"{name}.suspend"


def is_suspended(suspend_dir: str | os.PathLike[str], file_stem: str) -> bool:
    """Whether the DAG whose file is `<file_stem>.yaml` is suspended."""
    return suspend_flag_path(suspend_dir, file_stem).exists()
