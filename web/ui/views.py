"""Template plumbing for the UI: the Jinja2 environment, its filters, and `render()`.

Filters turn store values (datetimes, status enums, durations) into what a person
reads; `can(...)` in a template asks the same `allows()` the API enforces, so a
button the caller may not use is never offered (the server still checks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dagu.status import NodeStatus, RunStatus
from web.security import Permission, allows, identity_of

__all__ = ["environment", "render", "can", "fmt_time", "fmt_duration", "status_label", "iso"]

TEMPLATES = Path(__file__).parent / "templates"
_ENV: Environment | None = None
_SWITCHES = {Permission.WRITE: "permissions_write_dags", Permission.RUN: "permissions_run_dags"}


def environment() -> Environment:
    """The one Jinja2 environment (templates compiled once per process)."""
    global _ENV
    if _ENV is None:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        env.filters.update(time=fmt_time, duration=fmt_duration, status=status_label, iso=iso, ago=fmt_ago, when=when)
        _ENV = env
    return _ENV


def can(request: Request, permission: str | Permission) -> bool:
    """Whether the caller's role, and the server's global switches, allow `permission`."""
    perm = Permission(permission)
    settings = getattr(request.app.state, "settings", None) if "app" in request.scope else None
    if settings is not None and not getattr(settings, _SWITCHES.get(perm, ""), True):
        return False
    return allows(identity_of(request), perm)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` with the request, identity, `can()` and the nav state in scope."""
    settings = context.pop("settings", None)
    base = getattr(settings, "base_path", "") or ""
    identity = identity_of(request)
    html = environment().get_template(template).render(
        request=request,
        identity=identity,
        can=lambda p: can(request, p),
        base=base.rstrip("/"),
        auth_mode=getattr(getattr(settings, "auth", None), "mode", "none"),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def iso(value: Any) -> str:
    """RFC 3339 UTC (second precision) for `<time datetime>` and JS; "" when unset."""
    moment = _moment(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def fmt_time(value: Any, short: bool = False) -> str:
    """Server-local wall time; the browser rewrites `<time>` elements to its own zone."""
    moment = _moment(value)
    if moment is None:
        return "—"
    local = moment.astimezone()
    return local.strftime("%H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")


def when(value: Any) -> Markup:
    """A `<time>` element (the browser shows it in its own zone), or a muted dash when unset."""
    moment = _moment(value)
    if moment is None:
        return Markup('<span class="muted">—</span>')
    return Markup('<time datetime="%s">%s</time>') % (iso(moment), fmt_time(moment))


def fmt_ago(value: Any) -> str:
    moment = _moment(value)
    if moment is None:
        return "—"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size or unit == "s":
            n = int(seconds // size)
            return f"in {n}{unit}" if future else f"{n}{unit} ago"
    return "—"


def fmt_duration(start: Any, end: Any = None) -> str:
    """`1h 02m`, `3m 05s`, `4.2s`; counts to now for a started, unfinished span; "—" if never started."""
    a = _moment(start)
    if a is None:
        return "—"
    b = _moment(end) or datetime.now(UTC)
    seconds = max(0.0, (b - a).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def status_label(value: Any, node: bool = False) -> str:
    """The snake_case label of a run or node status (int, enum or label)."""
    if isinstance(value, str):
        return value
    try:
        return (NodeStatus(int(value)) if node else RunStatus(int(value))).label
    except (TypeError, ValueError):
        return "not_started"


def _moment(value: Any) -> datetime | None:
    if value is None or value in ("", "-"):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
