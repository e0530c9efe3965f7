"""The http step type against a real HTTP server on 127.0.0.1: formats, failures, timeout, stop."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagu.spec.model import Dag, Location, Step
from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt
from dagu.steps.http import HttpExecutor
from helpers import EXAMPLES, run_dagu


class _Server:
    """A stdlib HTTP server: /json, /echo (POST), /status/<code>, /slow (blocks until released)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.slow_entered = threading.Event()
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("X-Test", "yes")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                entry = {
                    "method": self.command, "path": self.path, "body": self.rfile.read(length).decode(),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }  # fmt: skip
                server.requests.append(entry)
                return entry

            def do_GET(self):
                self._record()
                if self.path.startswith("/status?"):
                    self._reply(200, b'{"state": "green"}')
                elif self.path.startswith("/json"):
                    self._reply(200, b'{"b": 1, "a": "x<y"}')
                elif self.path.startswith("/status/"):
                    code = int(self.path.rsplit("/", 1)[1])
                    self._reply(code, b"nope\n", "text/plain")
                elif self.path.startswith("/slow"):
                    server.slow_entered.set()
                    server.release.wait(30)
                    self._reply(200, b"late")
                else:
                    self._reply(200, f"path={self.path}".encode(), "text/plain")

            def do_POST(self):
                entry = self._record()
                self._reply(201, json.dumps(entry).encode())

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test-http", daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as s:
        yield s


def _attempt(tmp_path: Path, command: str | None = None, *, config: dict | None = None, timeout_s: float = 0.0, script: str | None = None, capture: bool = False) -> Attempt:
    loc = Location(str(tmp_path / "dag.yaml"))
    step = Step(name="call", location=loc, type="http", commands=(command,) if command else ())
    return Attempt(
        dag=Dag(name="t", location=loc), step=step, commands=step.commands, script=script, shell=("sh",),
        env={}, cwd=str(tmp_path), stdout_path=str(tmp_path / "out.log"), stderr_path=str(tmp_path / "err.log"),
        timeout_s=timeout_s, config=config or {}, capture_output=capture,
    )  # fmt: skip


def _out(tmp_path: Path) -> str:
    return (tmp_path / "out.log").read_text()


def test_get_prints_status_line_headers_and_body_like_dagu(tmp_path, server):
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/json")).run()
    assert result.exit_code == 0, result.error
    lines = _out(tmp_path).split("\n")
    assert lines[0] == "200 OK"
    headers = [line.rstrip("\r") for line in lines[1:-2]]
    assert headers == sorted(headers) and "Content-Type: application/json" in headers and "X-Test: yes" in headers
    assert lines[-2] == '{"b": 1, "a": "x<y"}'


def test_silent_prints_only_the_body_and_output_captures_it(tmp_path, server):
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/json", config={"silent": True}, capture=True)).run()
    assert result.exit_code == 0
    assert _out(tmp_path) == '{"b": 1, "a": "x<y"}\n'
    assert result.output == '{"b": 1, "a": "x<y"}'


def test_json_output_holds_status_code_headers_and_parsed_body(tmp_path, server):
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/json", config={"json": True})).run()
    assert result.exit_code == 0
    doc = json.loads(_out(tmp_path))
    assert doc["status_code"] == 200
    assert doc["headers"]["X-Test"] == ["yes"]
    assert doc["body"] == {"a": "x<y", "b": 1}


def test_config_method_url_query_headers_and_json_body_are_sent(tmp_path, server):
    config = {
        "method": "post", "url": f"{server.base}/echo", "query": {"q": "1", "tag": ["a", "b"]},
        "headers": {"X-Token": "abc"}, "body": {"name": "dagu"}, "silent": True,
    }  # fmt: skip
    result = HttpExecutor(_attempt(tmp_path, config=config)).run()
    assert result.exit_code == 0, result.error
    seen = server.requests[-1]
    assert seen["method"] == "POST" and seen["path"] == "/echo?q=1&tag=a&tag=b"
    assert seen["headers"]["x-token"] == "abc" and seen["headers"]["content-type"] == "application/json"
    assert json.loads(seen["body"]) == {"name": "dagu"}


def test_form_fields_are_sent_urlencoded(tmp_path, server):
    result = HttpExecutor(_attempt(tmp_path, f"POST {server.base}/form", config={"form": {"a": "1", "b": "two words"}})).run()
    assert result.exit_code == 0
    assert server.requests[-1]["body"] == "a=1&b=two+words"


def test_config_given_as_json_script_is_used(tmp_path, server):
    script = json.dumps({"headers": {"X-From-Script": "yes"}, "silent": True})
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/plain", script=script)).run()
    assert result.exit_code == 0
    assert server.requests[-1]["headers"]["x-from-script"] == "yes"
    assert _out(tmp_path) == "path=/plain\n"


def test_non_2xx_fails_after_printing_the_response(tmp_path, server):
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/status/404", config={"silent": True})).run()
    assert result.exit_code == 1
    assert result.error == f"http status code not 2xx: 404 (GET {server.base}/status/404)"
    out = _out(tmp_path)
    assert out.startswith("404 Not Found\n") and out.endswith("nope\n")  # silent only hides headers on success


def test_connection_refused_names_the_url(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = HttpExecutor(_attempt(tmp_path, f"GET http://127.0.0.1:{port}/x")).run()
    assert result.exit_code == 1
    assert result.error.startswith(f"GET http://127.0.0.1:{port}/x: request failed:")


def test_a_bad_command_is_a_clear_error(tmp_path):
    result = HttpExecutor(_attempt(tmp_path, "FETCH http://127.0.0.1/")).run()
    assert result.exit_code == 1 and "unknown method 'FETCH'" in result.error


def test_config_timeout_fails_a_slow_request(tmp_path, server):
    started = time.monotonic()
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/slow", config={"timeout": 1})).run()
    assert result.exit_code == 1 and not result.timed_out
    assert "no response within 1s" in result.error
    assert time.monotonic() - started < 10


def test_step_timeout_ends_a_slow_request_with_124(tmp_path, server):
    started = time.monotonic()
    result = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/slow", timeout_s=0.5)).run()
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE
    assert time.monotonic() - started < 10


def test_stop_mid_request_ends_the_attempt_at_once(tmp_path, server):
    executor = HttpExecutor(_attempt(tmp_path, f"GET {server.base}/slow"))
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("result", executor.run()))
    runner.start()
    assert server.slow_entered.wait(10), "the request never reached the server"
    executor.stop("SIGTERM", 1.0)
    runner.join(10)
    assert not runner.is_alive(), "run() did not return after stop()"
    assert box["result"].stopped and "stopped by SIGTERM" in box["result"].error


def test_example_runs_through_the_cli(tmp_path, server):
    result = run_dagu("start", str(EXAMPLES / "steps" / "http.yaml"), home=tmp_path, env={"HTTP_BASE": server.base})
    assert result.returncode == 0, result.stdout + result.stderr
    report = server.requests[-1]
    assert report["method"] == "POST" and json.loads(report["body"]) == {"state": "green", "source": "dagu"}

