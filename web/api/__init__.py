"""The REST API routes (Dagu's `/api/v2` resource shapes), grouped by area; mounted by `web.app`."""

from __future__ import annotations

from typing import Any

__all__ = ["api_routes"]


def api_routes() -> list[Any]:
    """Every API route, relative to an API base such as `/api/v2`."""
    from web.api import dag_runs, dags, openapi, queues, system
    from web.api.common import group_routes

    return group_routes([*system.routes(), *dags.routes(), *dag_runs.routes(), *queues.routes(), *openapi.routes()])
