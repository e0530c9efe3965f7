"""The scheduler's watermarks: per DAG and schedule kind, the last slot handled (`<data>/scheduler/state.json`).

Catch-up replays slots after a DAG's watermark, and a scheduler that starts (or
takes over the lock) never fires a slot at or before it again. This module owns
only the file format; what a watermark means is the SchedulerActor's business.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import orjson

from dagu.store.fsutil import atomic_write
from dagu.store.records import format_time, parse_time

__all__ = ["Watermarks", "state_path", "load_watermarks", "save_watermarks"]

logger = logging.getLogger(__name__)

Watermarks = dict[str, dict[str, datetime]]  # dag name -> schedule kind -> last slot (UTC)
_VERSION = 1


def state_path(data_dir: str | os.PathLike[str]) -> Path:
    """`<data>/scheduler/state.json`."""
    return Path(data_dir) / "scheduler" / "state.json"


def load_watermarks(path: str | os.PathLike[str]) -> Watermarks:
    """The stored watermarks; empty when the file is missing, unreadable or malformed (logged)."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        logger.warning("scheduler state %s is unreadable (%s); starting without watermarks", path, exc)
        return {}
    dags = data.get("dags") if isinstance(data, dict) else None
    if not isinstance(dags, dict):
        logger.warning("scheduler state %s has no `dags` mapping; starting without watermarks", path)
        return {}
    marks: Watermarks = {}
    for name, kinds in dags.items():
        if isinstance(kinds, dict):
            parsed = {kind: parse_time(value) for kind, value in kinds.items()}
            marks[name] = {kind: at for kind, at in parsed.items() if at is not None}
    return marks


def save_watermarks(path: str | os.PathLike[str], marks: Mapping[str, Mapping[str, datetime]]) -> None:
    """Replace the state file atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "version": _VERSION,
        "dags": {name: {kind: format_time(at) for kind, at in kinds.items()} for name, kinds in sorted(marks.items())},
    }
    atomic_write(target, orjson.dumps(body, option=orjson.OPT_INDENT_2))
