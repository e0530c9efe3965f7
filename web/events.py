"""Server-sent events of run and step changes (stub until the live-updates work lands)."""

from __future__ import annotations

from typing import Any

__all__ = ["api_routes"]


def api_routes(settings: Any) -> list[Any]:
    """Routes mounted under each API base: `GET /events` (SSE)."""
    return []
