"""The `mail` step type: send one e-mail through the DAG's `smtp:` server.

Owns dag-spec 4.10: config `from`, `to` (a string, a comma list, or a list), `subject`,
`message` and `attachments` (file paths, relative to the step's working directory). The
message is sent as plain text, or as HTML when it starts with `<`. Delivery itself is
`dagu.steps.mailer`'s. Stop and the step timeout end the attempt at once.
"""

from __future__ import annotations

import os
from typing import Any

from dagu.steps.base import AttemptResult
from dagu.steps.mailer import MailError, build_message, send_message, smtp_settings
from dagu.steps.service import Cancelled, StepExecutor, StepLogs, run_cancellable

__all__ = ["MailExecutor", "recipients"]


class MailExecutor(StepExecutor):
    """One attempt of a mail step. `run` blocks; `stop` may come from any thread."""

    def work(self, io: StepLogs) -> AttemptResult:
        cfg = self.attempt.config
        to = recipients(cfg.get("to"))
        try:
            if not to:
                raise MailError("mail: no recipient; set config `to:`")
            settings = smtp_settings(self.attempt.dag.smtp, self.attempt.env)
            attachments = [os.path.join(self.attempt.cwd, str(p)) for p in recipients(cfg.get("attachments"))]
            message = str(cfg.get("message") or "")
            msg = build_message(
                str(cfg.get("from") or ""), to, str(cfg.get("subject") or ""), message,
                html=message.lstrip().startswith("<"), attachments=attachments,
            )  # fmt: skip
            run_cancellable(lambda: send_message(settings, msg), self._cancel, "dagu-mail-send")
        except Cancelled:
            return io.result(cancel=self._cancel)
        except MailError as exc:
            return io.fail(str(exc))
        io.out(f"mail sent to {', '.join(to)} via {settings.where}\n")
        return io.result(0)


def recipients(value: Any) -> list[str]:
    """`to` as written: a string (comma separated allowed) or a list."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]
