"""Who is calling and what they may do: identities, roles and the permission check.

The auth middleware (`web.auth`) puts an `Identity` on `request.state.identity`;
every route that changes something calls `require(request, Permission.X)` first.
Roles and what they allow follow Dagu (service.md 6.3); `developer` is the 2.x role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from starlette.requests import Request

from web.errors import ApiError

__all__ = ["Role", "Permission", "Identity", "ROLE_PERMISSIONS", "ANONYMOUS_ADMIN", "identity_of", "require", "allows"]


class Role(str, Enum):
    ADMIN = "admin"
    MANAGER = "manager"
    DEVELOPER = "developer"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(str, Enum):
    READ = "read"  # DAGs, runs, logs, queues, metrics
    RUN = "run"  # start, enqueue, stop, retry, reschedule, dequeue, suspend, step status
    WRITE = "write"  # create, edit, rename, delete DAG definitions
    AUDIT = "audit"  # read the audit log
    ADMIN = "admin"  # users, API keys, webhooks


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: frozenset({Permission.READ, Permission.RUN, Permission.WRITE, Permission.AUDIT}),
    Role.DEVELOPER: frozenset({Permission.READ, Permission.RUN, Permission.WRITE}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.RUN}),
    Role.VIEWER: frozenset({Permission.READ}),
}


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller. `kind`: user, apikey, oidc, basic, token, webhook or anonymous."""

    id: str
    username: str
    role: Role
    kind: str = "user"


# With auth mode `none` every caller acts as admin (as in Dagu).
ANONYMOUS_ADMIN = Identity(id="anonymous", username="anonymous", role=Role.ADMIN, kind="anonymous")


def allows(identity: Identity | None, permission: Permission) -> bool:
    return identity is not None and permission in ROLE_PERMISSIONS[identity.role]


def identity_of(request: Request) -> Identity | None:
    return getattr(request.state, "identity", None)


def require(request: Request, permission: Permission) -> Identity:
    """The caller's identity if its role grants `permission`; 401 without one, 403 otherwise."""
    identity = identity_of(request)
    if identity is None:
        raise ApiError.unauthorized()
    if not _switch_allows(request, permission):
        raise ApiError.forbidden("Permission denied")
    if permission not in ROLE_PERMISSIONS[identity.role]:
        raise ApiError.forbidden()
    return identity


# The global switches `permissions.writeDAGs` / `permissions.runDAGs` (default on) bind
# everyone, admins included; web.app keeps the Settings on `app.state.settings`.
_SWITCHES = {Permission.WRITE: "permissions_write_dags", Permission.RUN: "permissions_run_dags"}


def _switch_allows(request: Request, permission: Permission) -> bool:
    attr = _SWITCHES.get(permission)
    if attr is None:
        return True
    settings = getattr(request.app.state, "settings", None) if "app" in request.scope else None
    return bool(getattr(settings, attr, True))
