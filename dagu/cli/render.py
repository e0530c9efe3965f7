"""Text output of the run commands: the summary tree of a run and its result line."""

from __future__ import annotations

from datetime import datetime

from dagu.status import NodeStatus, RunStatus
from dagu.store import NodeRecord, RunRecord

__all__ = ["render_summary", "format_duration", "exit_code_for"]

_STDOUT_LINES = 5


def exit_code_for(status: RunStatus) -> int:
    """`dagu start` exit code: 0 for succeeded and aborted, 1 otherwise (cli.md 4)."""
    return 0 if status in (RunStatus.SUCCEEDED, RunStatus.ABORTED) else 1


def format_duration(start: datetime | None, end: datetime | None) -> str:
    """Two largest units: `0s`, `5s`, `2m30s`, `1h5m`, `2d3h`; `-` when unknown."""
    if start is None:
        return "-"
    if end is None:
        end = datetime.now(start.tzinfo)
    secs = int(max(0.0, (end - start).total_seconds()))
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    for big, bu, small, su in ((d, "d", h, "h"), (h, "h", m, "m"), (m, "m", s, "s")):
        if big:
            return f"{big}{bu}{small}{su}" if small else f"{big}{bu}"
    return f"{s}s"


def render_summary(rec: RunRecord) -> str:
    """The tree of steps with their status, command, first stdout lines and error."""
    when = rec.finished_at or rec.started_at
    lines = [f"{rec.status.human} - {when.strftime('%Y-%m-%dT%H:%M:%SZ') if when else '-'}", ""]
    lines.append(f"dag: {rec.name} ({format_duration(rec.started_at, rec.finished_at)}) run-id: {rec.run_id}")
    lines.append("│")
    for i, node in enumerate(rec.nodes):
        last = i == len(rec.nodes) - 1
        lines.extend(_node_lines(node, last))
    if rec.error:
        lines += ["", f"error: {rec.error}"]
    lines += ["", f"Result: {rec.status.human}" if not rec.status.is_active else f"Status: {rec.status.human}"]
    return "\n".join(lines)


def _node_lines(node: NodeRecord, last: bool) -> list[str]:
    head = "└─" if last else "├─"
    pad = "  " if last else "│ "
    out = [f"{head}{node.name} ({format_duration(node.started_at, node.finished_at)}) [{node.status.label}]"]
    body: list[str] = []
    step = node.step
    cmd = step.get("command") or ("script" if step.get("script") else None) or (f"call {step['call']}" if step.get("call") else None)
    if cmd:
        body.append(str(cmd).splitlines()[0] if str(cmd).strip() else str(cmd))
    if node.retry_count:
        body.append(f"retries: {node.retry_count}")
    for child in node.children:
        body.append(f"subdag: {child.run_id} [{child.params}]")
    stdout = _head(node.stdout) if node.status != NodeStatus.NOT_STARTED else []
    if stdout:
        body.append("stdout: " + stdout[0])
        body.extend("        " + ln for ln in stdout[1:])
    if node.error and node.status in (NodeStatus.FAILED, NodeStatus.ABORTED):
        body.append(f"error: {node.error}")
    for j, text in enumerate(body):
        tail = j == len(body) - 1
        out.append(f"{pad}{'└─' if tail else '├─'}{text}")
    if not last:
        out.append("│")
    return out


def _head(path: str) -> list[str]:
    if not path:
        return []
    try:
        with open(path, errors="replace") as f:
            text = f.read(4096)
    except OSError:
        return []
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > _STDOUT_LINES:
        lines = lines[:_STDOUT_LINES] + ["..."]
    return lines
