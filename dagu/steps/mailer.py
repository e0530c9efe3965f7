"""Sending one e-mail over SMTP with smtplib: used by the `mail` step type and by run notifications.

Owns the SMTP settings of a DAG (`smtp: {host, port, username, password}`, values
expanded against the run's environment) and the transport rules: port 465 speaks TLS
from the first byte; any other port upgrades with STARTTLS when the server offers it
(as Go's net/smtp does); `username` logs in. Building the message text is the caller's.
"""

from __future__ import annotations

import mimetypes
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

__all__ = ["SmtpSettings", "MailError", "smtp_settings", "build_message", "send_message"]

_TLS_PORT = 465
_DEFAULT_TIMEOUT_S = 30.0
_DEFAULT_SENDER = "dagu@localhost"  # when a mail sets no `from`; SMTP needs an envelope sender


class MailError(Exception):
    """Mail could not be sent; the text names the server and what failed."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    username: str = ""
    password: str = ""

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_settings(smtp: Mapping[str, Any], env: Mapping[str, str]) -> SmtpSettings:
    """The DAG's `smtp:` block with `${VAR}` references expanded from `env`.

    Raises:
        MailError: no host, or a port that is not a number.
    """
    from dagu.resolve import expand_config

    values = expand_config(dict(smtp or {}), dict(env), process_env=env, backticks=False)
    host = str(values.get("host") or "").strip()
    if not host:
        raise MailError("no SMTP server: set `smtp: {host: ..., port: ...}` in the DAG or base.yaml")
    try:
        port = int(values.get("port") or 25)
    except (TypeError, ValueError):
        raise MailError(f"smtp.port must be a number, got {values.get('port')!r}") from None
    return SmtpSettings(host, port, str(values.get("username") or ""), str(values.get("password") or ""))


def build_message(
    sender: str,
    to: Sequence[str],
    subject: str,
    body: str,
    *,
    html: bool = False,
    attachments: Sequence[str] = (),
) -> EmailMessage:
    """An EmailMessage with `attachments` (file paths) added.

    Raises:
        MailError: an attachment cannot be read.
    """
    msg = EmailMessage()
    msg["From"] = sender or _DEFAULT_SENDER
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="dagu.local")
    msg.set_content(body, subtype="html" if html else "plain")
    for path in attachments:
        ctype, _ = mimetypes.guess_type(path)
        maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise MailError(f"cannot attach {path}: {exc.strerror or exc}") from exc
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=os.path.basename(path))
    return msg


def send_message(settings: SmtpSettings, msg: EmailMessage, timeout_s: float = _DEFAULT_TIMEOUT_S) -> None:
    """Deliver `msg` to its To recipients.

    Raises:
        MailError: connection, TLS, login or delivery failure, naming the server.
    """
    try:
        if settings.port == _TLS_PORT:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout_s, context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(settings.host, settings.port, timeout=timeout_s)
        with conn:
            conn.ehlo()
            if settings.port != _TLS_PORT and conn.has_extn("starttls"):
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if settings.username:
                conn.login(settings.username, settings.password)
            refused = conn.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP {settings.where}: login as {settings.username!r} failed: {_smtp_text(exc)}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"SMTP {settings.where}: every recipient was refused: {', '.join(exc.recipients)}") from exc
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP {settings.where}: {_smtp_text(exc)}") from exc
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"SMTP {settings.where}: cannot connect: {exc}") from exc
    if refused:
        raise MailError(f"SMTP {settings.where}: refused recipients: {', '.join(refused)}")


def _smtp_text(exc: smtplib.SMTPException) -> str:
    code, text = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", None)
    if code is not None and text is not None:
        return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    return str(exc) or type(exc).__name__
