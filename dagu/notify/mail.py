"""E-mail at the end of a run: `mail_on`, `error_mail` / `info_mail` / `wait_mail`, step `mail_on_error`.

Owns deciding which mail a finished run gets and writing it: subject
`<prefix> <dagName> (<status>)` and an HTML body with a run table and a step table,
with the step logs attached when `attach_logs` is set. At most one error mail per run.
Sending never fails the run: a problem is logged and the run's status stands.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dagu.spec.model import Dag
from dagu.status import NodeStatus, RunStatus

__all__ = ["notify_run_end", "mails_for", "render_body"]

logger = logging.getLogger(__name__)

_OK = (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_SUCCEEDED)


def mails_for(dag: Dag, record: Any) -> list[str]:
    """Which envelopes ("error_mail", "info_mail", "wait_mail") this run's end calls for."""
    status = record.status
    on = dag.mail_on or {}
    out = []
    step_failed = any(
        n.status == NodeStatus.FAILED and _step_mails_on_error(dag, n.name) for n in record.nodes
    )
    if (status == RunStatus.FAILED and on.get("failure")) or step_failed:
        out.append("error_mail")
    if status in _OK and on.get("success"):
        out.append("info_mail")
    if status == RunStatus.WAITING and on.get("wait"):
        out.append("wait_mail")
    return out


def notify_run_end(dag: Dag, record: Any, env: Mapping[str, str]) -> None:
    """Send the mails `mails_for` picks; log, never raise, when one cannot be sent."""
    kinds = mails_for(dag, record)
    if not kinds:
        return
    from dagu.steps.mail import recipients
    from dagu.steps.mailer import MailError, build_message, send_message, smtp_settings

    for kind in kinds:
        envelope: Mapping[str, Any] = getattr(dag, kind) or {}
        to = recipients(envelope.get("to"))
        try:
            if not to:
                raise MailError(f"`{kind}.to` is not set")
            settings = smtp_settings(dag.smtp, env)
            prefix = str(envelope.get("prefix") or "").strip()
            subject = f"{prefix} {dag.name} ({record.status.label})".strip()
            logs = _log_files(record) if envelope.get("attach_logs") else []
            msg = build_message(str(envelope.get("from") or ""), to, subject, render_body(dag, record), html=True, attachments=logs)
            send_message(settings, msg)
        except MailError as exc:
            logger.warning("run %s/%s: %s not sent: %s", dag.name, record.run_id, kind, exc)
        except Exception:  # a notification must never turn into a failed run
            logger.exception("run %s/%s: %s not sent", dag.name, record.run_id, kind)
        else:
            logger.info("run %s/%s: %s sent to %s", dag.name, record.run_id, kind, ", ".join(to))


def render_body(dag: Dag, record: Any) -> str:
    """The HTML body: one table for the run, one row per step in the second."""
    run_rows = [
        ("DAG", dag.name),
        ("Run ID", record.run_id),
        ("Status", record.status.label),
        ("Started", _time(record.started_at)),
        ("Finished", _time(record.finished_at)),
        ("Params", record.params or ""),
        ("Error", record.error or ""),
    ]
    head = "".join(f"<tr><th align='left'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in run_rows)
    step_rows = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in (
            n.name, n.status.label, _time(n.started_at), _time(n.finished_at),
            "" if n.exit_code is None else n.exit_code, n.error,
        )) + "</tr>"  # fmt: skip
        for n in record.nodes
    )
    columns = "".join(f"<th>{c}</th>" for c in ("Step", "Status", "Started", "Finished", "Exit code", "Error"))
    return (
        "<html><body>"
        f"<h2>{_e(dag.name)}: {_e(record.status.label)}</h2>"
        f"<table border='1' cellpadding='4' cellspacing='0'>{head}</table><br>"
        f"<table border='1' cellpadding='4' cellspacing='0'><tr>{columns}</tr>{step_rows}</table>"
        "</body></html>"
    )


def _step_mails_on_error(dag: Dag, name: str) -> bool:
    try:
        return dag.step(name).mail_on_error
    except KeyError:
        return False


def _log_files(record: Any) -> list[str]:
    paths: list[str] = []
    for n in record.nodes:
        for path in (n.stdout, n.stderr):
            if path and path not in paths and os.path.isfile(path):
                paths.append(path)
    if record.log and os.path.isfile(record.log):
        paths.append(record.log)
    return paths


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else ""


def _e(value: Any) -> str:
    return html.escape(str(value))
