"""Authentication for the API and UI: modes none, basic, builtin and oidc (service.md 6).

Contract with `web.app`: `build(settings)` returns the middleware that sets
`request.state.identity` (plus the audit middleware around it), routes mounted under
each API base (`/api/v2`, `/api/v1`), and routes mounted at the root of the base path
(OIDC login and callback). Which paths need no credentials is `web.auth.public.is_public`.
When a DAG is deleted, call `delete_webhook_for(settings, file_name)`.
"""

from __future__ import annotations

import logging
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.middleware import Middleware

from dagu.config import ConfigError, Settings
from web.audit import AuditLog, AuditMiddleware, audit_routes
from web.auth.authenticator import SESSION_COOKIE, Authenticator
from web.auth.middleware import AuthMiddleware
from web.auth.public import is_public
from web.auth.routes import MIN_PASSWORD_LENGTH, auth_routes
from web.auth.store import Stores, User, now_text
from web.auth.tokens import hash_secret
from web.auth.webhooks import delete_webhook_for, webhook_routes
from web.security import Role

__all__ = ["AuthParts", "build", "check_settings", "ensure_first_admin", "delete_webhook_for", "is_public", "SESSION_COOKIE"]

logger = logging.getLogger(__name__)


@dataclass
class AuthParts:
    middleware: list[Middleware] = field(default_factory=list)
    api_routes: list[Any] = field(default_factory=list)  # mounted under /api/v2 and /api/v1
    root_routes: list[Any] = field(default_factory=list)  # mounted at the base path


def build(settings: Settings) -> AuthParts:
    """The auth pieces of one server; creates the first admin in builtin mode.

    Raises:
        ConfigError: the auth settings cannot work (no token secret in builtin mode,
            an incomplete OIDC client, an unknown role in the role mapping).
    """
    check_settings(settings)
    stores = Stores.under(settings.data_dir)
    if settings.auth.mode == "builtin":
        ensure_first_admin(settings, stores)
    session_secret = settings.auth.token_secret or secrets.token_urlsafe(32)
    if settings.auth.mode == "oidc" and not settings.auth.token_secret:
        logger.warning("auth.builtin.token.secret is not set: OIDC sessions are signed with a per-process key and end on restart")
    authenticator = Authenticator(settings, stores, session_secret)
    audit = AuditLog(settings.admin_log_dir / "audit")
    root_routes: list[Any] = []
    if settings.auth.mode == "oidc":
        from web.auth.oidc import oidc_routes

        root_routes = oidc_routes(settings, session_secret)
    return AuthParts(
        # Audit outside auth, so refused requests are recorded too.
        middleware=[
            Middleware(AuditMiddleware, log=audit, base_path=settings.base_path),
            Middleware(AuthMiddleware, authenticator=authenticator),
        ],
        api_routes=[*auth_routes(authenticator), *webhook_routes(authenticator), *audit_routes(audit)],
        root_routes=root_routes,
    )


def check_settings(settings: Settings) -> None:
    """Fail at startup, naming the key to set, when the auth config cannot work."""
    auth = settings.auth
    file = settings.config_file
    if auth.mode == "builtin" and not auth.token_secret:
        raise ConfigError(
            f"{file}: auth.mode is builtin but auth.builtin.token.secret is not set; "
            "set it (a long random string) in config.yaml or DAGU_AUTH_TOKEN_SECRET"
        )
    if auth.mode == "basic" and not (auth.basic_username and auth.basic_password):
        raise ConfigError(f"{file}: auth.mode is basic but auth.basic.username/password are not set (DAGU_AUTH_BASIC_USERNAME/_PASSWORD)")
    if auth.mode == "oidc":
        missing = [k for k, v in (("clientId", auth.oidc.client_id), ("clientSecret", auth.oidc.client_secret), ("issuer", auth.oidc.issuer)) if not v]
        if missing:
            raise ConfigError(f"{file}: auth.mode is oidc but auth.oidc.{', auth.oidc.'.join(missing)} not set")
        roles = {r.value for r in Role}
        for group, role in auth.oidc.role_mapping.items():
            if role not in roles:
                raise ConfigError(f"{file}: auth.oidc.roleMapping: group {group!r} maps to unknown role {role!r}; expected one of {', '.join(sorted(roles))}")
        if auth.oidc.default_role not in roles | {"none", ""}:
            raise ConfigError(f"{file}: auth.oidc.defaultRole: unknown role {auth.oidc.default_role!r}; expected one of {', '.join(sorted(roles))} or none")


def ensure_first_admin(settings: Settings, stores: Stores) -> User | None:
    """Create the admin from `auth.builtin.admin` when there are no users yet.

    Without a configured password a random one is generated and printed once to stdout
    (not to the log, which may be shipped elsewhere).
    """
    with stores.users.lock:
        if stores.users.all():
            return None
        password = settings.auth.admin_password
        generated = not password
        if generated:
            password = secrets.token_urlsafe(16)
        elif len(password) < MIN_PASSWORD_LENGTH:
            raise ConfigError(
                f"{settings.config_file}: auth.builtin.admin.password needs at least {MIN_PASSWORD_LENGTH} characters"
            )
        now = now_text()
        user = User(str(uuid.uuid4()), settings.auth.admin_username, hash_secret(password), Role.ADMIN.value, now, now)
        stores.users.put(user)
    logger.info("builtin auth: created admin user %s", user.username)
    if generated:
        print(f"Created admin user {user.username!r} with password: {password}\nChange it after the first login.", file=sys.stdout, flush=True)
    return user
