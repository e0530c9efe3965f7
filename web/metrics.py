"""Prometheus metrics (stub until the metrics work lands)."""

from __future__ import annotations

from typing import Any

__all__ = ["api_routes", "root_routes"]


def api_routes(settings: Any) -> list[Any]:
    """`GET /metrics` under each API base."""
    return []


def root_routes(settings: Any) -> list[Any]:
    """`GET /metrics` at the base path."""
    return []
