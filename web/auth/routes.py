"""Builtin-mode endpoints: login, me, change-password, users and API keys (service.md 2.7).

Every handler checks its own permission with `require`; user and key management is
admin only and answers 401 "... not enabled" outside builtin mode, as Dagu does.
bcrypt work runs in a worker thread so a login never stalls the event loop.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.auth.authenticator import Authenticator
from web.auth.store import ApiKey, Stores, User, now_text
from web.auth.tokens import check_nothing, check_secret, hash_secret, issue_jwt, new_api_key
from web.errors import ApiError, json_response
from web.security import Identity, Permission, Role, identity_of, require

__all__ = ["auth_routes", "read_json", "parse_role", "check_password", "MIN_PASSWORD_LENGTH", "KEY_PREFIX_LENGTH"]

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
KEY_PREFIX_LENGTH = 8


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 for anything else."""
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError.bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError.bad_request("request body must be a JSON object")
    return data


def parse_role(value: Any) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ApiError.bad_request(f"Invalid role: {value!r}; expected one of {', '.join(r.value for r in Role)}") from None


def check_password(value: Any, field: str = "password") -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD_LENGTH:
        raise ApiError.bad_request(f"Password does not meet security requirements: {field} needs at least {MIN_PASSWORD_LENGTH} characters")
    return value


def auth_routes(authenticator: Authenticator) -> list[Route]:
    """The routes, bound to one server's stores and settings."""
    h = _Handlers(authenticator)
    return [
        Route("/auth/login", h.login, methods=["POST"]),
        Route("/auth/me", h.me, methods=["GET"]),
        Route("/auth/change-password", h.change_password, methods=["POST"]),
        Route("/users", h.list_users, methods=["GET"]),
        Route("/users", h.create_user, methods=["POST"]),
        Route("/users/{userId}", h.get_user, methods=["GET"]),
        Route("/users/{userId}", h.update_user, methods=["PATCH"]),
        Route("/users/{userId}", h.delete_user, methods=["DELETE"]),
        Route("/users/{userId}/reset-password", h.reset_password, methods=["POST"]),
        Route("/api-keys", h.list_keys, methods=["GET"]),
        Route("/api-keys", h.create_key, methods=["POST"]),
        Route("/api-keys/{keyId}", h.get_key, methods=["GET"]),
        Route("/api-keys/{keyId}", h.update_key, methods=["PATCH"]),
        Route("/api-keys/{keyId}", h.delete_key, methods=["DELETE"]),
    ]


class _Handlers:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authn = authenticator
        self.settings = authenticator.settings
        self.stores: Stores = authenticator.stores

    @property
    def builtin(self) -> bool:
        return self.settings.auth.mode == "builtin"

    # -- auth -----------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if not self.builtin:
            raise ApiError.unauthorized("Authentication is not enabled")
        body = await read_json(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            raise ApiError.bad_request("username and password are required")
        request.state.audit = {"action": "login", "username": username}
        user = self.stores.user_by_name(username)
        if user is None:
            await run_in_threadpool(check_nothing, password)
            raise ApiError.unauthorized("Invalid username or password")
        if not await run_in_threadpool(check_secret, password, user.password_hash):
            raise ApiError.unauthorized("Invalid username or password")
        token, exp = self._token_for(user)
        request.state.identity = Identity(user.id, user.username, Role(user.role), "user")
        expires = datetime.fromtimestamp(exp, UTC).isoformat().replace("+00:00", "Z")
        return json_response({"token": token, "expiresAt": expires, "user": user.to_api()})

    async def me(self, request: Request) -> Response:
        identity = identity_of(request)
        if identity is None or identity.kind == "anonymous":
            raise ApiError.unauthorized("Not authenticated")
        user = self.stores.users.get(identity.id) if identity.kind == "user" else None
        if user is not None:
            return json_response({"user": user.to_api()})
        return json_response({"user": {"id": identity.id, "username": identity.username, "role": identity.role.value, "kind": identity.kind}})

    async def change_password(self, request: Request) -> Response:
        self._need_builtin("User management is not enabled")
        identity = require(request, Permission.READ)
        if identity.kind != "user":
            raise ApiError.forbidden("Only users who log in with a password can change it")
        body = await read_json(request)
        current, new = body.get("currentPassword"), check_password(body.get("newPassword"), "newPassword")
        user = self._user(identity.id)
        if not isinstance(current, str) or not await run_in_threadpool(check_secret, current, user.password_hash):
            raise ApiError.unauthorized("Current password is incorrect")
        password_hash = await run_in_threadpool(hash_secret, new)
        with self.stores.users.lock:  # sync section only: the lock guards against other threads
            self.stores.users.update(self._user(identity.id), password_hash=password_hash, updated_at=now_text())
        return json_response({"message": "Password changed"})

    # -- users ----------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        self._admin(request, "User management is not enabled")
        return json_response({"users": [u.to_api() for u in self.stores.users.all()]})

    async def get_user(self, request: Request) -> Response:
        self._admin(request, "User management is not enabled")
        return json_response({"user": self._user(request.path_params["userId"]).to_api()})

    async def create_user(self, request: Request) -> Response:
        self._admin(request, "User management is not enabled")
        body = await read_json(request)
        username = _name(body.get("username"), "username")
        password = check_password(body.get("password"))
        role = parse_role(body.get("role"))
        password_hash = await run_in_threadpool(hash_secret, password)
        with self.stores.users.lock:
            if self.stores.user_by_name(username) is not None:
                raise ApiError.conflict(f"User {username!r} already exists")
            now = now_text()
            user = User(str(uuid.uuid4()), username, password_hash, role.value, now, now)
            self.stores.users.put(user)
        logger.info("user %s created with role %s", username, role.value)
        return json_response({"user": user.to_api()}, 201)

    async def update_user(self, request: Request) -> Response:
        self._admin(request, "User management is not enabled")
        body = await read_json(request)
        changes: dict[str, Any] = {}
        if body.get("username") is not None:
            changes["username"] = _name(body["username"], "username")
        if body.get("role") is not None:
            changes["role"] = parse_role(body["role"]).value
        with self.stores.users.lock:
            user = self._user(request.path_params["userId"])
            other = self.stores.user_by_name(changes.get("username", user.username))
            if other is not None and other.id != user.id:
                raise ApiError.conflict(f"User {other.username!r} already exists")
            user = self.stores.users.update(user, **changes, updated_at=now_text()) if changes else user
        return json_response({"user": user.to_api()})

    async def delete_user(self, request: Request) -> Response:
        identity = self._admin(request, "User management is not enabled")
        user_id = request.path_params["userId"]
        if user_id == identity.id:
            raise ApiError.bad_request("You cannot delete your own account")
        with self.stores.users.lock:
            self._user(user_id)
            self.stores.users.delete(user_id)
        return Response(status_code=204)

    async def reset_password(self, request: Request) -> Response:
        self._admin(request, "User management is not enabled")
        body = await read_json(request)
        password = check_password(body.get("newPassword"), "newPassword")
        password_hash = await run_in_threadpool(hash_secret, password)
        with self.stores.users.lock:
            user = self._user(request.path_params["userId"])
            self.stores.users.update(user, password_hash=password_hash, updated_at=now_text())
        return json_response({"message": "Password reset"})

    # -- API keys -------------------------------------------------------------------

    async def list_keys(self, request: Request) -> Response:
        self._keys_admin(request)
        return json_response({"apiKeys": [k.to_api() for k in self.stores.api_keys.all()]})

    async def get_key(self, request: Request) -> Response:
        self._keys_admin(request)
        return json_response({"apiKey": self._key(request.path_params["keyId"]).to_api()})

    async def create_key(self, request: Request) -> Response:
        identity = self._keys_admin(request)
        body = await read_json(request)
        name = _name(body.get("name"), "name")
        role = parse_role(body.get("role"))
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise ApiError.bad_request("description must be a string")
        key = new_api_key()
        key_hash = await run_in_threadpool(hash_secret, key)
        with self.stores.api_keys.lock:
            if any(k.name == name for k in self.stores.api_keys.all()):
                raise ApiError.conflict(f"API key {name!r} already exists")
            now = now_text()
            record = ApiKey(str(uuid.uuid4()), name, role.value, key_hash, key[:KEY_PREFIX_LENGTH], now, now, identity.id, description)
            self.stores.api_keys.put(record)
        return json_response({"apiKey": record.to_api(), "key": key}, 201)

    async def update_key(self, request: Request) -> Response:
        self._keys_admin(request)
        body = await read_json(request)
        changes: dict[str, Any] = {}
        if body.get("name") is not None:
            changes["name"] = _name(body["name"], "name")
        if body.get("role") is not None:
            changes["role"] = parse_role(body["role"]).value
        if body.get("description") is not None:
            if not isinstance(body["description"], str):
                raise ApiError.bad_request("description must be a string")
            changes["description"] = body["description"]
        with self.stores.api_keys.lock:
            record = self._key(request.path_params["keyId"])
            if "name" in changes and any(k.name == changes["name"] and k.id != record.id for k in self.stores.api_keys.all()):
                raise ApiError.conflict(f"API key {changes['name']!r} already exists")
            record = self.stores.api_keys.update(record, **changes, updated_at=now_text()) if changes else record
        return json_response({"apiKey": record.to_api()})

    async def delete_key(self, request: Request) -> Response:
        self._keys_admin(request)
        with self.stores.api_keys.lock:
            self._key(request.path_params["keyId"])
            self.stores.api_keys.delete(request.path_params["keyId"])
        return Response(status_code=204)

    # -- helpers --------------------------------------------------------------------

    def _need_builtin(self, message: str) -> None:
        if not self.builtin:
            raise ApiError.unauthorized(message)

    def _admin(self, request: Request, message: str) -> Identity:
        self._need_builtin(message)
        return require(request, Permission.ADMIN)

    def _keys_admin(self, request: Request) -> Identity:
        if not self.builtin:
            raise ApiError.forbidden("API key management is not available")
        return require(request, Permission.ADMIN)

    def _user(self, user_id: str) -> User:
        user = self.stores.users.get(user_id)
        if user is None:
            raise ApiError.not_found(f"User {user_id} not found")
        return user

    def _key(self, key_id: str) -> ApiKey:
        record = self.stores.api_keys.get(key_id)
        if record is None:
            raise ApiError.not_found(f"API key {key_id} not found")
        return record

    def _token_for(self, user: User) -> tuple[str, int]:
        claims = {"sub": user.id, "uid": user.id, "username": user.username, "role": user.role}
        return issue_jwt(claims, self.settings.auth.token_secret, self.settings.auth.token_ttl_s)


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError.bad_request(f"{field} is required")
    if len(value) > 128 or any(ord(c) < 32 for c in value):
        raise ApiError.bad_request(f"{field}: at most 128 printable characters")
    return value.strip()
