"""The mail step type and run notifications against a real SMTP sink (aiosmtpd Maildir)."""

from __future__ import annotations

import json
import mailbox
import socket
import textwrap
import threading
import time
import uuid
from email.message import Message
from pathlib import Path

import pytest

import servers
from dagu.spec.loader import load_dag_text
from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt
from dagu.steps.mail import MailExecutor
from helpers import EXAMPLES, run_dagu, wait_for


@pytest.fixture
def smtp() -> tuple[int, str]:
    return servers.smtp()


def _messages(maildir: str) -> list[Message]:
    return list(mailbox.Maildir(maildir, create=False))


def _wait_mail(maildir: str, subject: str) -> Message:
    found = wait_for(lambda: [m for m in _messages(maildir) if m["Subject"] == subject], f"a mail with subject {subject!r}")
    return found[0]


def _attempt(tmp_path: Path, smtp_block: dict, config: dict, timeout_s: float = 0.0) -> Attempt:
    text = "steps:\n  - {name: send, type: mail, config: {to: x@example.com}}\n"
    dag = load_dag_text(text, str(tmp_path / "dag.yaml"))
    from dataclasses import replace

    from dagu.spec.model import freeze

    dag = replace(dag, smtp=freeze(smtp_block))
    return Attempt(
        dag=dag, step=dag.steps[0], commands=(), script=None, shell=("sh",), env={}, cwd=str(tmp_path),
        stdout_path=str(tmp_path / "out.log"), stderr_path=str(tmp_path / "err.log"), timeout_s=timeout_s, config=config,
    )  # fmt: skip


def test_mail_step_delivers_with_recipients_and_attachment(tmp_path, smtp):
    port, maildir = smtp
    subject = f"report {uuid.uuid4()}"
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    config = {"from": "dagu@example.com", "to": ["a@example.com", "b@example.com"], "subject": subject, "message": "see attached", "attachments": ["data.csv"]}
    result = MailExecutor(_attempt(tmp_path, {"host": "127.0.0.1", "port": port}, config)).run()
    assert result.exit_code == 0, result.error
    msg = _wait_mail(maildir, subject)
    assert msg["To"] == "a@example.com, b@example.com" and msg["From"] == "dagu@example.com"
    parts = {p.get_filename(): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}
    assert parts == {"data.csv": b"a,b\n1,2\n"}
    assert "see attached" in msg.get_payload(0).get_payload(decode=True).decode()


def test_smtp_port_as_a_string_reference_is_expanded(tmp_path, smtp):
    port, maildir = smtp
    subject = f"expanded {uuid.uuid4()}"
    attempt = _attempt(tmp_path, {"host": "127.0.0.1", "port": "${PORT}"}, {"to": "x@example.com", "subject": subject})
    from dataclasses import replace

    result = MailExecutor(replace(attempt, env={"PORT": str(port)})).run()
    assert result.exit_code == 0, result.error
    _wait_mail(maildir, subject)


def test_a_closed_port_names_the_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = MailExecutor(_attempt(tmp_path, {"host": "127.0.0.1", "port": port}, {"to": "x@example.com"})).run()
    assert result.exit_code == 1 and result.error.startswith(f"SMTP 127.0.0.1:{port}: cannot connect")


def test_no_smtp_block_is_a_clear_error(tmp_path):
    result = MailExecutor(_attempt(tmp_path, {}, {"to": "x@example.com"})).run()
    assert result.exit_code == 1 and "no SMTP server" in result.error


def test_a_missing_attachment_is_named(tmp_path, smtp):
    result = MailExecutor(_attempt(tmp_path, {"host": "127.0.0.1", "port": smtp[0]}, {"to": "x@example.com", "attachments": "nope.txt"})).run()
    assert result.exit_code == 1 and "cannot attach" in result.error and "nope.txt" in result.error


@pytest.fixture
def silent_server():
    """A TCP server that accepts and never greets: an SMTP client waits forever (a fake remote edge)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_step_timeout_ends_a_hanging_delivery(tmp_path, silent_server):
    started = time.monotonic()
    result = MailExecutor(_attempt(tmp_path, {"host": "127.0.0.1", "port": silent_server}, {"to": "x@example.com"}, timeout_s=0.5)).run()
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE
    assert time.monotonic() - started < 5


def test_stop_ends_a_hanging_delivery(tmp_path, silent_server):
    executor = MailExecutor(_attempt(tmp_path, {"host": "127.0.0.1", "port": silent_server}, {"to": "x@example.com"}))
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("result", executor.run()))
    runner.start()
    time.sleep(0.2)  # NOTE: stop may land before or during the connect; both must end the attempt
    executor.stop("SIGTERM", 1.0)
    runner.join(5)
    assert not runner.is_alive() and box["result"].stopped


def _notify_dag(tmp_path: Path, port: int, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body).replace("PORT", str(port)))
    return path


def test_failed_run_sends_the_error_mail_with_tables_and_logs(tmp_path, smtp):
    port, maildir = smtp
    prefix = f"[{uuid.uuid4().hex[:8]}]"
    path = _notify_dag(tmp_path, port, "notify_fail", f"""
        smtp: {{host: 127.0.0.1, port: PORT}}
        mail_on: {{failure: true}}
        error_mail: {{from: dagu@example.com, to: ops@example.com, prefix: "{prefix}", attach_logs: true}}
        steps:
          - {{name: ok_step, command: echo fine}}
          - {{name: broken, command: "echo boom >&2; exit 4"}}
        """)
    result = run_dagu("start", str(path), home=tmp_path / "home")
    assert result.returncode == 1
    msg = _wait_mail(maildir, f"{prefix} notify_fail (failed)")
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "<table" in html and "broken" in html and "ok_step" in html and "exit status 4" in html
    names = [p.get_filename() for p in msg.walk() if p.get_filename()]
    assert any(n.startswith("broken.") and n.endswith(".err") for n in names), names


def test_step_mail_on_error_sends_without_mail_on(tmp_path, smtp):
    port, maildir = smtp
    prefix = f"[{uuid.uuid4().hex[:8]}]"
    path = _notify_dag(tmp_path, port, "notify_step", f"""
        smtp: {{host: 127.0.0.1, port: PORT}}
        error_mail: {{from: dagu@example.com, to: [ops@example.com], prefix: "{prefix}"}}
        steps:
          - {{name: broken, command: "false", mail_on_error: true}}
        """)
    assert run_dagu("start", str(path), home=tmp_path / "home").returncode == 1
    _wait_mail(maildir, f"{prefix} notify_step (failed)")


def test_a_mail_failure_never_fails_the_run(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = _notify_dag(tmp_path, port, "notify_broken", """
        smtp: {host: 127.0.0.1, port: PORT}
        mail_on: {success: true}
        info_mail: {from: dagu@example.com, to: ops@example.com}
        steps:
          - {name: ok, command: echo ok}
        """)
    result = run_dagu("start", str(path), home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "info_mail not sent" in result.stderr and f"127.0.0.1:{port}" in result.stderr


def test_example_runs_through_the_cli(tmp_path, smtp):
    port, maildir = smtp
    before = {m["Message-ID"] for m in _messages(maildir)}
    path = EXAMPLES / "steps" / "mail.yaml"
    result = run_dagu("start", str(path), home=tmp_path, env={"SMTP_PORT": str(port)})
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = json.loads(run_dagu("status", "--json", str(path), home=tmp_path).stdout)["dagRunId"]

    def new_mail() -> list[Message]:
        fresh = [m for m in _messages(maildir) if m["Message-ID"] not in before]
        return fresh if len(fresh) >= 2 else []

    fresh = wait_for(new_mail, "the step mail and the success notification")
    subjects = sorted(m["Subject"] for m in fresh)
    assert "Daily report" in subjects and "[dagu] mail (succeeded)" in subjects
    info = next(m for m in fresh if m["Subject"] == "[dagu] mail (succeeded)")
    assert run_id in info.get_payload(decode=True).decode()
