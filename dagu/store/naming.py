"""Names the store writes: safe folder names, run IDs (validation and UUIDv7), timestamp stamps.

Pure functions with no file access; `runs` and `proc` build paths from them.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import UTC, datetime

from dagu.errors import InvalidRequest

__all__ = ["MAX_RUN_ID_LEN", "safe_name", "safe_component", "validate_run_id", "new_run_id", "dotted_ms"]

MAX_RUN_ID_LEN = 64

_RUN_ID_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")


def safe_name(name: str) -> str:
    """A DAG name as a folder name (service.md 4.3).

    `.yaml`/`.yml` is dropped, every character outside `[A-Za-z0-9_-]` becomes `_`
    (at most 100 kept), and if that changed anything `-` + 4 hex chars of the
    name's sha256 are added, so `a b` and `a_b` don't share a folder.
    """
    stem = re.sub(r"\.ya?ml$", "", name)
    return safe_component(stem, original=name)


def validate_run_id(run_id: str) -> str:
    """Return `run_id` if it is 1-64 characters of `[-a-zA-Z0-9_]`.

    Raises:
        InvalidRequest: it is not.
    """
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id) or len(run_id) > MAX_RUN_ID_LEN:
        raise InvalidRequest(
            f"invalid dag-run ID {run_id!r}: use 1-{MAX_RUN_ID_LEN} letters, digits, '-' or '_'"
        )
    return run_id


def new_run_id() -> str:
    """A fresh UUIDv7 (RFC 9562) as text: time-ordered to the millisecond, 74 random bits."""
    ms = time.time_ns() // 1_000_000 & (1 << 48) - 1
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 62 & 0xFFF
    rand_b = rand & (1 << 62) - 1
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def safe_component(text: str, original: str | None = None) -> str:
    """`text` with unsafe characters replaced, cut to 100, plus a hash of `original` if it changed."""
    safe = _UNSAFE_RE.sub("_", text)[:100]
    if safe != text:
        safe += "-" + hashlib.sha256((original or text).encode()).hexdigest()[:4]
    return safe


def dotted_ms(moment: datetime) -> str:
    """`YYYYMMDD.HHMMSS.mmm` in UTC, the stamp in log file names."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y%m%d.%H%M%S}.{moment.microsecond // 1000:03d}"
