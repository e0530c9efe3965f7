"""The `http` step type: one HTTP request with httpx, its response written to the step's stdout.

Owns the request forms of dag-spec 4.5: `command: "<METHOD> <URL>"` (1.30) or config
`method`/`url` (2.15), config given as a JSON `script` (1.30), headers, query, body, form,
multipart files, timeout, TLS verification, and the output formats:

* default: the status line (`200 OK`), the headers one per line (sorted, canonical case),
  then the body, as the 1.30 binary prints them; `silent: true` prints only the body on
  success;
* `json: true` (or `format: json`): `{"status_code", "headers", "body"}` with the body
  parsed as JSON when it is JSON. (1.30.2 prints `status_code: 0, headers: null` there;
  we print the real values.)

A response outside 2xx fails the step after it is printed; use `continue_on` to go on.
Stop and the step timeout end the attempt at once; the request is abandoned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from dagu.steps.base import Attempt, AttemptResult
from dagu.steps.service import Cancelled, StepExecutor, StepLogs, config_bool, config_seconds, run_cancellable

__all__ = ["HttpExecutor"]

logger = logging.getLogger(__name__)

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_SCRIPT_KEYS = {"skipTLSVerify": "skip_tls_verify", "skipTlsVerify": "skip_tls_verify"}


class HttpExecutor(StepExecutor):
    """One attempt of an http step. `run` blocks; `stop` may come from any thread."""

    def work(self, io: StepLogs) -> AttemptResult:
        try:
            request = _request(self.attempt)
        except ValueError as exc:
            return io.fail(str(exc))
        return self._send(io, request)

    def _send(self, io: StepLogs, req: _Request) -> AttemptResult:
        import httpx  # imported on use: `dagu validate` never pays for it

        where = f"{req.method} {req.url}"
        if req.debug:
            io.err(f"> {where}\n" + "".join(f"> {k}: {v}\n" for k, v in req.headers.items()))
        try:
            kwargs = req.kwargs()
        except ValueError as exc:
            return io.fail(str(exc))
        client = httpx.Client(verify=not req.skip_tls_verify, timeout=req.timeout_s or None, follow_redirects=True)
        self._cancel.on_abort(client.close)
        try:
            response = run_cancellable(lambda: client.request(req.method, req.url, **kwargs), self._cancel, "dagu-http-request")
        except Cancelled:
            io.err(f"{where}: cancelled ({self._cancel.reason})\n")
            return io.result(cancel=self._cancel)
        except httpx.TimeoutException:
            return io.fail(f"{where}: no response within {req.timeout_s:g}s (config timeout)")
        except httpx.HTTPError as exc:
            return io.fail(f"{where}: request failed: {exc or type(exc).__name__}")
        finally:
            client.close()
        ok = 200 <= response.status_code < 300
        _print_response(io, response, req, ok)
        if req.output:
            with open(req.output, "wb") as f:
                f.write(response.content)
        if not ok:
            return io.result(1, f"http status code not 2xx: {response.status_code} ({where})")
        return io.result(0)


class _Request:
    """The request as configured, checked and normalised."""

    def __init__(self, method: str, url: str, cfg: Mapping[str, Any]) -> None:
        self.method = method
        self.url = url
        self.headers = {str(k): str(v) for k, v in (_mapping(cfg, "headers") or {}).items()}
        self.query = {str(k): _text(v) for k, v in (_mapping(cfg, "query") or {}).items()}
        self.form = {str(k): _text(v) for k, v in (_mapping(cfg, "form") or {}).items()}
        self.files = cfg.get("files")
        self.body = cfg.get("body")
        self.timeout_s = config_seconds(cfg.get("timeout"), 0.0)
        self.json = config_bool(cfg.get("json")) or str(cfg.get("format") or "").lower() == "json"
        self.silent = config_bool(cfg.get("silent"))
        self.debug = config_bool(cfg.get("debug"))
        self.skip_tls_verify = config_bool(cfg.get("skip_tls_verify"))
        self.output = cfg.get("output") or None
        if self.files and self.body not in (None, ""):
            raise ValueError("http: `files` and `body` cannot be combined; send the body as a form field")

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"headers": self.headers}
        if self.query:
            out["params"] = self.query
        if self.files:
            out["files"] = _files(self.files)
            if self.form:
                out["data"] = self.form
        elif self.form:
            out["data"] = self.form
        elif isinstance(self.body, (Mapping, list)):
            out["content"] = json.dumps(self.body).encode()
            if not any(k.lower() == "content-type" for k in self.headers):
                self.headers["Content-Type"] = "application/json"
        elif self.body not in (None, ""):
            out["content"] = str(self.body).encode()
        return out


def _request(attempt: Attempt) -> _Request:
    cfg = dict(attempt.config)
    if attempt.script and attempt.script.strip():
        cfg.update(_script_config(attempt.script))
    method = str(cfg.get("method") or "").strip().upper()
    url = str(cfg.get("url") or "").strip()
    if attempt.commands:
        parts = attempt.commands[0].split(None, 1)
        if len(parts) == 2:
            method, url = parts[0].upper(), parts[1].strip()
        elif parts and "://" in parts[0]:
            url = parts[0]
        elif parts:
            method = parts[0].upper()
    method = method or "GET"
    if not url:
        raise ValueError('http: no URL; write `command: "GET https://example.com"` or config `url:`')
    if method not in _METHODS:
        raise ValueError(f"http: unknown method {method!r} for {url}; use one of {', '.join(_METHODS)}")
    if "://" not in url:
        raise ValueError(f"http: {url!r} is not an absolute URL; it needs a scheme such as https://")
    return _Request(method, url, cfg)


def _script_config(script: str) -> dict[str, Any]:
    """1.30: the config may be given as a JSON object in `script`."""
    try:
        value = json.loads(script)
    except json.JSONDecodeError as exc:
        raise ValueError(f"http: `script` must hold the config as a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("http: `script` must hold the config as a JSON object")
    return {_SCRIPT_KEYS.get(k, k): v for k, v in value.items()}


def _print_response(io: StepLogs, response: Any, req: _Request, ok: bool) -> None:
    if req.json:
        io.out(_json_text(response) + "\n")
        return
    if not (req.silent and ok):
        io.out(f"{response.status_code} {response.reason_phrase}\n".encode())
        lines = sorted((_canonical(k), v) for k, v in response.headers.multi_items())
        io.out("".join(f"{k}: {v}\r\n" for k, v in lines))
    io.out(response.content)
    if response.content and not response.content.endswith(b"\n"):
        io.out(b"\n")


def _json_text(response: Any) -> str:
    headers: dict[str, list[str]] = {}
    for k, v in response.headers.multi_items():
        headers.setdefault(_canonical(k), []).append(v)
    try:
        body: Any = json.loads(response.content) if response.content else None
    except ValueError:
        body = response.text
    doc = {"status_code": response.status_code, "headers": dict(sorted(headers.items())), "body": body}
    return json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True)


def _canonical(name: str) -> str:
    """Go's canonical header case: content-type -> Content-Type."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _mapping(cfg: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = cfg.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"http: `{key}` must be a mapping, got {value!r}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"http: `{key}` must be a mapping, got {type(value).__name__}")
    return value


def _text(value: Any) -> Any:
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _files(spec: Any) -> list[tuple[str, tuple[str, bytes]]]:
    """`files: {field: path}` or `[{field, path}]` -> httpx multipart files."""
    items: list[tuple[str, str]] = []
    if isinstance(spec, Mapping):
        items = [(str(k), str(v)) for k, v in spec.items()]
    elif isinstance(spec, list):
        for entry in spec:
            if not isinstance(entry, Mapping) or "path" not in entry:
                raise ValueError("http: each `files` entry needs `field` and `path`")
            items.append((str(entry.get("field") or entry.get("name") or "file"), str(entry["path"])))
    else:
        raise ValueError("http: `files` must map form fields to file paths")
    out = []
    for field, path in items:
        try:
            with open(path, "rb") as f:
                out.append((field, (path.rsplit("/", 1)[-1], f.read())))
        except OSError as exc:
            raise ValueError(f"http: cannot read file for field {field!r}: {exc}") from None
    return out
