"""API errors: one exception type and one JSON shape, `{"code": ..., "message": ...}`.

Route code raises `ApiError`; the app turns it (and any `dagu.errors.DaguError`) into
a response with that body. Codes are Dagu's ErrorCode values (service.md 2.2).
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

__all__ = ["ApiError", "error_response", "json_response"]


class ApiError(Exception):
    """A request that cannot be served; becomes a `{code, message}` JSON response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "bad_request", message)

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        return cls(404, "not_found", message)

    @classmethod
    def conflict(cls, message: str) -> ApiError:
        return cls(409, "already_exists", message)

    @classmethod
    def unauthorized(cls, message: str = "Authentication required", headers: dict[str, str] | None = None) -> ApiError:
        return cls(401, "unauthorized", message, headers)

    @classmethod
    def forbidden(cls, message: str = "Insufficient permissions") -> ApiError:
        return cls(403, "forbidden", message)


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson (non-str keys allowed)."""
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "message": message}, status, headers)
