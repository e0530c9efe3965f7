"""Which paths need no credentials: the one rule the auth middleware asks.

Extend it by adding to the tuples below (the UI adds its login page and assets here).
Paths are relative to `basePath`; API paths are relative to `/api/v2` or `/api/v1`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "API_BASES",
    "PUBLIC_API_PATHS",
    "PUBLIC_API_PREFIXES",
    "PUBLIC_ROOT_PATHS",
    "PUBLIC_ROOT_PREFIXES",
    "is_public",
    "api_subpath",
    "strip_base",
]

API_BASES = ("/api/v2", "/api/v1")
PUBLIC_API_PATHS = frozenset({"/health", "/auth/login"})
PUBLIC_API_PREFIXES = ("/webhooks/",)  # the trigger checks its own per-DAG token
PUBLIC_ROOT_PATHS = frozenset({"/health", "/login", "/oidc/login", "/oidc-login", "/oidc-callback", "/oidc/logout", "/favicon.ico"})
PUBLIC_ROOT_PREFIXES = ("/assets/", "/static/")


def strip_base(path: str, base_path: str) -> str:
    """`path` without the configured `basePath` prefix."""
    base = base_path.rstrip("/")
    if base and (path == base or path.startswith(base + "/")):
        return path[len(base):] or "/"
    return path


def api_subpath(path: str) -> str | None:
    """`/dags/x` for `/api/v2/dags/x`; None for a path outside the API."""
    for api in API_BASES:
        if path == api or path.startswith(api + "/"):
            return path[len(api):] or "/"
    return None


def is_public(path: str, settings: Any) -> bool:
    """True if `path` (already without `basePath`) is served without credentials."""
    metrics_public = bool(getattr(settings, "metrics_public", False))
    sub = api_subpath(path)
    if sub is not None:
        return sub in PUBLIC_API_PATHS or sub.startswith(PUBLIC_API_PREFIXES) or (metrics_public and sub == "/metrics")
    return path in PUBLIC_ROOT_PATHS or path.startswith(PUBLIC_ROOT_PREFIXES) or (metrics_public and path == "/metrics")
