"""Per-DAG webhooks (service.md 2.8, 6.5): admin management, and the trigger
`POST /webhooks/{fileName}` that enqueues a run with the single param `WEBHOOK_PAYLOAD`.

The trigger is a public path for the auth middleware; it checks its own `dagu_wh_`
token here. Management is admin only and builtin mode only, as in Dagu.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from dagu.config import Settings
from dagu.errors import Conflict, DaguError, InvalidRequest, NotFound, SpecError
from web.auth.authenticator import Authenticator
from web.auth.routes import read_json
from web.auth.store import Stores, Webhook, now_text
from web.auth.tokens import WEBHOOK_TOKEN_PREFIX, check_secret, hash_secret, new_webhook_token
from web.errors import ApiError, json_response
from web.security import Identity, Permission, Role, require

__all__ = ["webhook_routes", "delete_webhook_for", "MAX_PAYLOAD_BYTES", "TOKEN_PREFIX_LENGTH"]

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 1 << 20  # the compact JSON payload
TOKEN_PREFIX_LENGTH = 12
_MAX_BODY_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024  # payload plus the envelope; stop reading beyond


def delete_webhook_for(settings: Settings, file_name: str) -> bool:
    """Remove the webhook of DAG `file_name`, if any (call it when the DAG is deleted).

    Returns:
        True if a webhook was removed.
    """
    stores = Stores.under(settings.data_dir)
    with stores.webhooks.lock:
        hook = stores.webhook_for(file_name)
        return hook is not None and stores.webhooks.delete(hook.id)


def webhook_routes(authenticator: Authenticator) -> list[Route]:
    h = _Handlers(authenticator)
    return [
        Route("/webhooks", h.list_all, methods=["GET"]),
        Route("/webhooks/{fileName}", h.trigger, methods=["POST"]),
        Route("/dags/{fileName}/webhook", h.get_one, methods=["GET"]),
        Route("/dags/{fileName}/webhook", h.create, methods=["POST"]),
        Route("/dags/{fileName}/webhook", h.delete, methods=["DELETE"]),
        Route("/dags/{fileName}/webhook/regenerate", h.regenerate, methods=["POST"]),
        Route("/dags/{fileName}/webhook/toggle", h.toggle, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, authenticator: Authenticator) -> None:
        self.settings = authenticator.settings
        self.stores = authenticator.stores

    # -- management -----------------------------------------------------------------

    async def list_all(self, request: Request) -> Response:
        self._admin(request)
        return json_response({"webhooks": [w.to_api() for w in self.stores.webhooks.all()]})

    async def get_one(self, request: Request) -> Response:
        self._admin(request)
        return json_response(self._hook(request.path_params["fileName"]).to_api())

    async def create(self, request: Request) -> Response:
        identity = self._admin(request)
        name = request.path_params["fileName"]
        if _dag_file(self.settings, name) is None:
            raise ApiError.not_found(f"DAG {name} not found in {self.settings.dags_dir}")
        token = new_webhook_token()
        token_hash = await run_in_threadpool(hash_secret, token)
        with self.stores.webhooks.lock:
            if self.stores.webhook_for(name) is not None:
                raise ApiError.conflict(f"DAG {name} already has a webhook; regenerate its token instead")
            now = now_text()
            hook = Webhook(str(uuid.uuid4()), name, token_hash, token[:TOKEN_PREFIX_LENGTH], True, now, now, identity.id)
            self.stores.webhooks.put(hook)
        return json_response({"webhook": hook.to_api(), "token": token}, 201)

    async def delete(self, request: Request) -> Response:
        self._admin(request)
        with self.stores.webhooks.lock:
            self.stores.webhooks.delete(self._hook(request.path_params["fileName"]).id)
        return Response(status_code=204)

    async def regenerate(self, request: Request) -> Response:
        self._admin(request)
        token = new_webhook_token()
        token_hash = await run_in_threadpool(hash_secret, token)
        with self.stores.webhooks.lock:
            hook = self._hook(request.path_params["fileName"])
            hook = self.stores.webhooks.update(hook, tokenHash=token_hash, tokenPrefix=token[:TOKEN_PREFIX_LENGTH], updatedAt=now_text())
        return json_response({"webhook": hook.to_api(), "token": token})

    async def toggle(self, request: Request) -> Response:
        self._admin(request)
        body = await read_json(request)
        if not isinstance(body.get("enabled"), bool):
            raise ApiError.bad_request("enabled (true or false) is required")
        with self.stores.webhooks.lock:
            hook = self._hook(request.path_params["fileName"])
            hook = self.stores.webhooks.update(hook, enabled=body["enabled"], updatedAt=now_text())
        return json_response(hook.to_api())

    # -- trigger --------------------------------------------------------------------

    async def trigger(self, request: Request) -> Response:
        if self.settings.auth.mode != "builtin":
            raise ApiError.not_found("webhook triggering is not configured on this server")
        name = request.path_params["fileName"]
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(WEBHOOK_TOKEN_PREFIX):
            raise ApiError.unauthorized("missing or invalid authorization header", {"WWW-Authenticate": 'Bearer realm="webhook"'})
        hook = self.stores.webhook_for(name)
        if hook is None:
            raise ApiError.not_found(f"no webhook is configured for DAG {name}")
        if not await run_in_threadpool(check_secret, token, hook.tokenHash):
            raise ApiError.unauthorized("invalid webhook token", {"WWW-Authenticate": 'Bearer realm="webhook"'})
        request.state.identity = Identity(f"webhook:{hook.id}", f"webhook:{name}", Role.OPERATOR, "webhook")
        if not hook.enabled:
            raise ApiError.forbidden(f"the webhook of DAG {name} is disabled")
        run_id, payload = _parse_trigger(await _read_capped(request))
        record = await run_in_threadpool(self._enqueue, name, run_id, payload)
        with self.stores.webhooks.lock:
            current = self.stores.webhooks.get(hook.id)
            if current is not None:
                self.stores.webhooks.update(current, lastUsedAt=now_text())
        logger.info("webhook %s: queued %s run %s", name, record.name, record.run_id)
        return json_response({"dagRunId": record.run_id, "dagName": record.name})

    def _enqueue(self, file_name: str, run_id: str | None, payload: str):
        from actors.launch import RunRequest, enqueue_run
        from dagu.spec import load_dag
        from dagu.status import TriggerType

        path = _dag_file(self.settings, file_name)
        if path is None:
            raise ApiError.not_found(f"DAG {file_name} not found in {self.settings.dags_dir}")
        try:
            dag = load_dag(path, base_config=self.settings.base_config)
            self.settings.ensure_dirs()
            # A JSON object as the params text keeps the payload byte for byte (no quoting),
            # and evaluate_params=False keeps `$(...)` and backticks in a payload literal:
            # the payload comes from outside and must never reach a shell.
            request = RunRequest(
                run_id=run_id,
                params_text=orjson.dumps({"WEBHOOK_PAYLOAD": payload}).decode(),
                trigger=TriggerType.WEBHOOK,
                evaluate_params=False,
            )
            return enqueue_run(dag, self.settings, request)
        except Conflict as exc:
            raise ApiError.conflict(str(exc)) from None
        except (InvalidRequest, SpecError) as exc:
            raise ApiError.bad_request(str(exc)) from None
        except NotFound as exc:
            raise ApiError.not_found(str(exc)) from None
        except DaguError as exc:
            raise ApiError.bad_request(str(exc)) from None

    # -- helpers --------------------------------------------------------------------

    def _admin(self, request: Request) -> Identity:
        if self.settings.auth.mode != "builtin":
            raise ApiError.unauthorized("Webhook management is not enabled")
        return require(request, Permission.ADMIN)

    def _hook(self, name: str) -> Webhook:
        hook = self.stores.webhook_for(name)
        if hook is None:
            raise ApiError.not_found(f"DAG {name} has no webhook")
        return hook


def _dag_file(settings: Settings, file_name: str) -> Path | None:
    if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
        return None
    for suffix in (".yaml", ".yml"):
        path = settings.dags_dir / f"{file_name}{suffix}"
        if path.is_file():
            return path
    return None


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > _MAX_BODY_BYTES:
                raise _too_large()
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError.bad_request("the client went away before sending the whole body") from None
    return b"".join(chunks)


def _parse_trigger(body: bytes) -> tuple[str | None, str]:
    """(dagRunId or None, compact JSON payload) from the trigger body."""
    data: Any = {}
    if body.strip():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError.bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError.bad_request("request body must be a JSON object {dagRunId?, payload?}")
    run_id = data.get("dagRunId") or None
    if run_id is not None and not isinstance(run_id, str):
        raise ApiError.bad_request("dagRunId must be a string")
    payload = data.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ApiError.bad_request("payload must be a JSON object")
    compact = orjson.dumps(payload).decode()
    if len(compact.encode()) > MAX_PAYLOAD_BYTES:
        raise _too_large()
    return run_id, compact


def _too_large() -> ApiError:
    return ApiError(413, "bad_request", f"payload too large: at most {MAX_PAYLOAD_BYTES} bytes of JSON")
