"""The OpenAPI 3 document of our API, written by hand as data, served at `<api base>/openapi.json`.

It describes what `web.api` serves (paths, parameters, bodies, status codes and
response shapes); `tests/integration/test_api_schemathesis.py` checks the live
server against it. Change both together.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.errors import json_response

__all__ = ["routes", "document"]

_STR = {"type": "string"}
_OPT_STR = {"type": "string", "nullable": True}
_OPT_BOOL = {"type": "boolean", "nullable": True}
# Patterns as the server checks them (ECMA syntax; no lookahead, so "." and ".." are left to the server).
_DAG_NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_.-]{1,40}$"}
_RUN_ID = {"type": "string", "pattern": "^[-a-zA-Z0-9_]{1,64}$"}
_OPT_RUN_ID = {"type": "string", "nullable": True, "pattern": "^[-a-zA-Z0-9_]{0,64}$",
               "description": "empty or absent: a new UUIDv7"}
_OPT_DAG_NAME = {"type": "string", "nullable": True, "pattern": "^[a-zA-Z0-9_.-]{0,40}$",
                 "description": "empty or absent: the DAG's own name"}
_QUEUE = {"type": "string", "nullable": True, "pattern": r"^([^./\\][^/\\]*)?$"}
_MAX_UNIX = 253402300799
_MAX_LINES = 10_000_000
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_STR_LIST = {"type": "array", "items": _STR}


def routes() -> list[Any]:
    async def openapi(request: Request) -> Response:
        # Public like /health: a client needs the description before it can log in.
        base = request.scope.get("root_path", "") or ""
        return json_response(document(base))

    return [Route("/openapi.json", openapi, methods=["GET"], name="openapi")]


def document(server_url: str = "/api/v2") -> dict[str, Any]:
    """The whole document; `server_url` is the API base it is served under."""
    from dagu import __version__

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "dagu-py REST API",
            "version": "2.0.0",
            "description": f"Dagu-compatible workflow API served by dagu-py {__version__}.",
        },
        "servers": [{"url": server_url}],
        "paths": _paths(),
        "components": {"schemas": _SCHEMAS},
    }


# -- building blocks -----------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {**required, **(optional or {})}
    doc: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        doc["required"] = list(required)
    return doc


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _empty(description: str = "OK") -> dict[str, Any]:
    return {"description": description}


_ERR = {
    400: _json(_ref("Error"), "Bad request: malformed input, or the state does not allow it"),
    404: _json(_ref("Error"), "Not found"),
    409: _json(_ref("Error"), "Conflict: the name or run ID is taken, or a singleton run is active"),
}


def _op(summary: str, ok: dict[str, Any], *, errors: tuple[int, ...] = (), params: list[Any] | None = None,
        body: dict[str, Any] | None = None, ok_code: int = 200, tag: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {str(ok_code): ok}}
    for code in errors:
        op["responses"][str(code)] = _ERR[code]
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if tag:
        op["tags"] = [tag]
    return op


def _path(name: str, description: str = "", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = schema or {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query(name: str, schema: dict[str, Any], description: str = "", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_FILE = _path("fileName", "the DAG file's name without .yaml", _DAG_NAME)
_NAME = _path("name", "the DAG's name", _DAG_NAME)
_RUN = _path("dagRunId", "a run ID, or `latest`", _RUN_ID)
_STEP = _path("stepName")
_SUBRUN = _path("subDAGRunId", "", _RUN_ID)
_LOG_QUERY = [
    _query("head", {"type": "integer", "minimum": 0, "maximum": _MAX_LINES}, "first N lines"),
    _query("tail", {"type": "integer", "minimum": 0, "maximum": _MAX_LINES}, "last N lines"),
    _query("offset", {"type": "integer", "minimum": 1, "maximum": _MAX_LINES}, "first line to show (1-based)"),
    _query("limit", {"type": "integer", "minimum": 0, "maximum": _MAX_LINES}, "at most N lines from offset"),
]
_STREAM = _query("stream", {"type": "string", "enum": ["stdout", "stderr"], "default": "stdout"})
_HISTORY_QUERY = [
    _query("status", {"type": "integer", "minimum": 0, "maximum": 8}, "run status code"),
    _query("fromDate", {"type": "integer", "minimum": 0, "maximum": _MAX_UNIX},
           "unix seconds; with neither bound only today's runs"),
    _query("toDate", {"type": "integer", "minimum": 0, "maximum": _MAX_UNIX}, "unix seconds"),
    _query("dagRunId", _STR, "substring of the run ID"),
]

# -- schemas ---------------------------------------------------------------------------------

_STATUS = {"type": "integer", "minimum": 0, "maximum": 9}
_TIME = {"type": "string", "description": "RFC 3339, or empty when unset"}

_SCHEMAS: dict[str, Any] = {
    "Error": _obj({"code": _STR, "message": _STR}),
    "Pagination": _obj({k: _INT for k in ("totalRecords", "currentPage", "totalPages", "nextPage", "prevPage")}),
    "Step": _obj({"name": _STR}, {
        "id": _STR, "description": _STR, "dir": _STR, "script": _STR, "stdout": _STR, "stderr": _STR,
        "output": _STR, "call": _STR, "params": _STR, "depends": _STR_LIST, "mailOnError": _BOOL,
        "timeoutSec": _INT,
        "commands": {"type": "array", "items": _obj({"command": _STR}, {"args": _STR_LIST})},
        "executorConfig": _obj({}, {"type": _STR, "config": {"type": "object"}}),
    }),
    "DAG": _obj({"name": _STR}, {
        "group": _STR, "description": _STR, "params": _STR_LIST, "defaultParams": _STR, "tags": _STR_LIST,
        "queue": _STR, "maxActiveRuns": _INT,
        "schedule": {"type": "array", "items": _obj({"expression": _STR})},
        "runConfig": _obj({}, {"disableParamEdit": _BOOL, "disableRunIdEdit": _BOOL}),
    }),
    "DAGDetails": {"allOf": [_ref("DAG"), _obj({}, {
        "steps": {"type": "array", "items": _ref("Step")},
        "handlerOn": {"type": "object", "additionalProperties": _ref("Step")},
        "env": _STR_LIST, "logDir": _STR, "delay": _INT, "histRetentionDays": _INT,
        "preconditions": {"type": "array", "items": {"type": "object"}}, "maxActiveSteps": _INT,
        "timeoutSec": _INT,
    })]},
    "DAGRunSummary": _obj({
        "rootDAGRunName": _STR, "rootDAGRunId": _STR, "dagRunId": _STR, "name": _STR, "status": _STATUS,
        "statusLabel": _STR, "startedAt": _TIME, "finishedAt": _TIME, "log": _STR,
    }, {
        "parentDAGRunName": _STR, "parentDAGRunId": _STR, "queuedAt": _TIME, "params": _STR, "workerId": _STR,
        "error": _STR,
    }),
    "SubRunRef": _obj({"dagRunId": _STR, "name": _STR, "status": _STATUS, "statusLabel": _STR}, {"params": _STR}),
    "Node": _obj({
        "step": _ref("Step"), "stdout": _STR, "stderr": _STR, "startedAt": _TIME, "finishedAt": _TIME,
        "status": _STATUS, "statusLabel": _STR, "retryCount": _INT, "doneCount": _INT,
    }, {"error": _STR, "subRuns": {"type": "array", "items": _ref("SubRunRef")}}),
    "DAGRunDetails": {"allOf": [_ref("DAGRunSummary"), _obj({"nodes": {"type": "array", "items": _ref("Node")}}, {
        "onExit": _ref("Node"), "onSuccess": _ref("Node"), "onFailure": _ref("Node"), "onCancel": _ref("Node"),
        "preconditions": {"type": "array", "items": {"type": "object"}},
    })]},
    "DAGFile": _obj({
        "fileName": _STR, "dag": _ref("DAG"), "latestDAGRun": _ref("DAGRunSummary"), "suspended": _BOOL,
        "errors": _STR_LIST,
    }),
    "Log": _obj({"content": _STR}, {"lineCount": _INT, "totalLines": _INT, "hasMore": _BOOL, "isEstimate": _BOOL}),
    "RunId": _obj({"dagRunId": _STR}),
    "Queue": _obj({
        "name": _STR, "type": {"type": "string", "enum": ["global", "dag-based"]},
        "running": {"type": "array", "items": _ref("DAGRunSummary")},
        "queued": {"type": "array", "items": _ref("DAGRunSummary")},
    }, {"maxConcurrency": _INT}),
}

_RUNS = _obj({"dagRuns": {"type": "array", "items": _ref("DAGRunSummary")}})
_START_BODY = _obj({}, {"params": _OPT_STR, "dagRunId": _OPT_RUN_ID, "dagName": _OPT_DAG_NAME, "singleton": _OPT_BOOL})
_INLINE_BODY = _obj({"spec": _STR}, {"name": _OPT_DAG_NAME, "params": _OPT_STR, "dagRunId": _OPT_RUN_ID,
                                     "singleton": _OPT_BOOL})


def _paths() -> dict[str, Any]:
    run = "/dag-runs/{name}/{dagRunId}"
    sub = run + "/sub-dag-runs/{subDAGRunId}"
    run_params = [_NAME, _RUN]
    sub_params = [_NAME, _RUN, _SUBRUN]
    details = _json(_obj({"dagRunDetails": _ref("DAGRunDetails")}))
    status_body = _obj({"status": _STATUS})
    return {
        "/health": {"get": _op("Liveness", _json(_obj({
            "status": {"type": "string", "enum": ["healthy", "unhealthy"]}, "version": _STR, "uptime": _INT,
            "timestamp": _STR,
        })), tag="system")},
        "/openapi.json": {"get": _op("This document", _json({"type": "object"}), tag="system")},
        "/services/scheduler": {"get": _op("Scheduler instances", _json(_obj({"schedulers": {
            "type": "array", "items": _obj({"instanceId": _STR, "host": _STR, "status": _STR, "startedAt": _STR})}})),
            tag="system")},
        "/services/coordinator": {"get": _op("Coordinator instances", _json(_obj({"coordinators": {
            "type": "array", "items": {"type": "object"}}})), tag="system")},
        "/services/resources/history": {"get": _op("Resource samples", _json(_obj({
            k: {"type": "array", "items": {"type": "object"}} for k in ("cpu", "memory", "disk", "load")})),
            tag="system")},
        "/workers": {"get": _op("Workers known to the coordinator", _json(_obj({
            "workers": {"type": "array", "items": {"type": "object"}}, "errors": _STR_LIST})), tag="system")},
        "/queues": {"get": _op("Queues with running and queued runs", _json(_obj({
            "queues": {"type": "array", "items": _ref("Queue")},
            "summary": _obj({"totalQueues": _INT, "totalRunning": _INT, "totalQueued": _INT, "totalCapacity": _INT,
                             "utilizationPercentage": {"type": "number"}}),
        })), tag="queues")},
        "/dags": {
            "get": _op("List DAG definitions", _json(_obj({
                "dags": {"type": "array", "items": _ref("DAGFile")}, "errors": _STR_LIST,
                "pagination": _ref("Pagination"),
            })), errors=(400,), params=[
                _query("page", {"type": "integer", "minimum": 1, "default": 1}),
                _query("perPage", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
                _query("name", _STR, "substring of the DAG name"),
                _query("tag", _STR),
                _query("sort", {"type": "string", "enum": ["name", "nextRun"], "default": "name"}),
                _query("order", {"type": "string", "enum": ["asc", "desc"], "default": "asc"}),
            ], tag="dags"),
            "post": _op("Create a DAG file", _json(_obj({"name": _STR}), "Created"), ok_code=201,
                        errors=(400, 409), body=_obj({"name": _DAG_NAME}, {"spec": _OPT_STR}), tag="dags"),
        },
        "/dags/validate": {"post": _op("Validate a spec without saving it", _json(_obj(
            {"valid": _BOOL, "errors": _STR_LIST}, {"dag": _ref("DAGDetails")})), errors=(400,),
            body=_obj({"spec": _STR}, {"name": _OPT_DAG_NAME}), tag="dags")},
        "/dags/search": {"get": _op("Search DAG files for text", _json(_obj({
            "results": {"type": "array", "items": _obj({"name": _STR, "dag": _ref("DAG"), "matches": {
                "type": "array", "items": _obj({"line": _STR, "lineNumber": _INT, "startLine": _INT})}})},
            "errors": _STR_LIST})), errors=(400,), params=[_query("q", {"type": "string", "minLength": 1, "pattern": "\\S"}, required=True)], tag="dags")},
        "/dags/tags": {"get": _op("All tags", _json(_obj({"tags": _STR_LIST, "errors": _STR_LIST})), tag="dags")},
        "/dags/{fileName}": {
            "get": _op("A DAG with its latest run", _json(_obj({
                "dag": _ref("DAGDetails"), "localDags": {"type": "array", "items": {"type": "object"}},
                "latestDAGRun": _ref("DAGRunSummary"), "suspended": _BOOL, "errors": _STR_LIST,
            })), errors=(404,), params=[_FILE], tag="dags"),
            "delete": _op("Delete a DAG file", _empty("Deleted"), ok_code=204, errors=(404,), params=[_FILE],
                          tag="dags"),
        },
        "/dags/{fileName}/spec": {
            "get": _op("The DAG's YAML", _json(_obj({"dag": _ref("DAGDetails"), "spec": _STR, "errors": _STR_LIST})),
                       errors=(404,), params=[_FILE], tag="dags"),
            "put": _op("Replace the YAML (an invalid spec is not saved and comes back in errors)",
                       _json(_obj({"errors": _STR_LIST})), errors=(400, 404), params=[_FILE],
                       body=_obj({"spec": _STR}), tag="dags"),
        },
        "/dags/{fileName}/rename": {"post": _op("Rename the DAG file", _empty(), errors=(400, 404, 409),
                                                params=[_FILE], body=_obj({"newFileName": _DAG_NAME}), tag="dags")},
        "/dags/{fileName}/suspend": {"post": _op("Suspend or resume scheduling", _empty(), errors=(400, 404),
                                                 params=[_FILE], body=_obj({"suspend": _BOOL}), tag="dags")},
        "/dags/{fileName}/start": {"post": _op("Start a run now", _json(_ref("RunId")), errors=(400, 404, 409),
                                               params=[_FILE], body=_START_BODY, tag="dags")},
        "/dags/{fileName}/enqueue": {"post": _op("Queue a run", _json(_ref("RunId")), errors=(400, 404, 409),
                                                 params=[_FILE], body=_obj({}, {**_START_BODY["properties"],
                                                                               "queue": _QUEUE}), tag="dags")},
        "/dags/{fileName}/stop-all": {"post": _op("Stop every running run of the DAG", _json(_obj(
            {"errors": _STR_LIST})), errors=(400, 404), params=[_FILE], tag="dags")},
        "/dags/{fileName}/dag-runs": {"get": _op("Recent runs with the step grid", _json(_obj({
            "dagRuns": {"type": "array", "items": _ref("DAGRunDetails")},
            "gridData": {"type": "array", "items": _obj({"name": _STR, "history": {"type": "array", "items": _STATUS}})},
        })), errors=(404,), params=[_FILE], tag="dags")},
        "/dags/{fileName}/dag-runs/{dagRunId}": {"get": _op("One run of the DAG", _json(_obj({
            "dagRun": _ref("DAGRunDetails")})), errors=(400, 404), params=[_FILE, _RUN], tag="dags")},
        "/dag-runs": {
            "get": _op("Run history across DAGs", _json(_RUNS), errors=(400,),
                       params=[*_HISTORY_QUERY, _query("name", _DAG_NAME, "exact DAG name")], tag="dag-runs"),
            "post": _op("Run a spec given inline", _json(_ref("RunId")), errors=(400, 409), body=_INLINE_BODY,
                        tag="dag-runs"),
        },
        "/dag-runs/enqueue": {"post": _op("Queue a spec given inline", _json(_ref("RunId")), errors=(400, 409),
                                          body=_obj({"spec": _STR}, {**_INLINE_BODY["properties"], "queue": _QUEUE}),
                                          tag="dag-runs")},
        "/dag-runs/{name}": {"get": _op("Run history of one DAG", _json(_RUNS), errors=(400,),
                                        params=[_NAME, *_HISTORY_QUERY], tag="dag-runs")},
        run: {"get": _op("Run status", details, errors=(400, 404), params=run_params, tag="dag-runs")},
        run + "/spec": {"get": _op("The YAML the run used", _json(_obj({"spec": _STR})), errors=(400, 404),
                                   params=run_params, tag="dag-runs")},
        run + "/log": {"get": _op("The run's own log", _json(_ref("Log")), errors=(400, 404),
                                  params=[*run_params, *_LOG_QUERY], tag="dag-runs")},
        run + "/steps/{stepName}/log": {"get": _op("A step's stdout or stderr", _json(_ref("Log")), errors=(400, 404),
                                                   params=[*run_params, _STEP, _STREAM, *_LOG_QUERY], tag="dag-runs")},
        run + "/steps/{stepName}/status": {"patch": _op("Force a step's status (not while the run is active)",
                                                        _empty(), errors=(400, 404), params=[*run_params, _STEP],
                                                        body=status_body, tag="dag-runs")},
        run + "/outputs": {"get": _op("Collected outputs", _json(_obj({"metadata": {"type": "object"},
                                                                         "outputs": {"type": "object"}})),
                                      errors=(400, 404), params=run_params, tag="dag-runs")},
        run + "/stop": {"post": _op("Stop a running run", _empty(), errors=(400, 404), params=run_params,
                                    tag="dag-runs")},
        run + "/retry": {"post": _op("Retry as a new attempt (the whole run, or one step)", _empty(),
                                     errors=(400, 404, 409), params=run_params,
                                     body=_obj({}, {"dagRunId": _OPT_RUN_ID, "stepName": _OPT_STR}), tag="dag-runs")},
        run + "/reschedule": {"post": _op("A new run from this run's spec and params", _json(_obj(
            {"dagRunId": _STR, "queued": _BOOL})), errors=(400, 404, 409), params=run_params,
            body=_obj({}, {"dagRunId": _OPT_RUN_ID, "dagName": _OPT_DAG_NAME}), tag="dag-runs")},
        run + "/dequeue": {"get": _op("Remove a queued run", _empty(), errors=(400, 404), params=run_params,
                                      tag="dag-runs")},
        run + "/sub-dag-runs": {"get": _op("Sub-runs of a run", _json(_obj({"subRuns": {"type": "array", "items": _obj(
            {"dagRunId": _STR, "name": _STR, "status": _STATUS, "statusLabel": _STR, "startedAt": _TIME},
            {"params": _STR, "finishedAt": _TIME})}})), errors=(400, 404),
            params=[*run_params, _query("parentSubDAGRunId", _RUN_ID)], tag="dag-runs")},
        sub: {"get": _op("Sub-run status", details, errors=(400, 404), params=sub_params, tag="dag-runs")},
        sub + "/log": {"get": _op("Sub-run log", _json(_ref("Log")), errors=(400, 404),
                                  params=[*sub_params, *_LOG_QUERY], tag="dag-runs")},
        sub + "/steps/{stepName}/log": {"get": _op("Sub-run step log", _json(_ref("Log")), errors=(400, 404),
                                                   params=[*sub_params, _STEP, _STREAM, *_LOG_QUERY], tag="dag-runs")},
        sub + "/steps/{stepName}/status": {"patch": _op("Force a sub-run step's status", _empty(), errors=(400, 404),
                                                        params=[*sub_params, _STEP], body=status_body,
                                                        tag="dag-runs")},
    }
