"""Readers for the structured step fields: preconditions, continue_on, retry_policy,
repeat_policy, output and parallel.

Each takes the value node and returns the frozen model object (or None after logging
issues). What the policies do at run time belongs to the actors.
"""

from __future__ import annotations

from dagu.spec.issues import IssueLog, describe
from dagu.spec.keys import Fields, key_table, read_mapping
from dagu.spec.model import ContinueOn, Output, Parallel, Precondition, RepeatPolicy, RetryPolicy, freeze
from dagu.spec.nodes import Node, plain, scalar_text
from dagu.spec.values import read_bool, read_int, read_int_list, read_number, read_str, read_str_list

__all__ = [
    "read_preconditions",
    "read_continue_on",
    "read_retry_policy",
    "read_repeat_policy",
    "read_output",
    "read_parallel",
]

_PRECONDITION = key_table("precondition", ("condition", "expected", "negate"), {"command": "condition"})
_CONTINUE_ON = key_table(
    "continue_on", ("failure", "skipped", "exit_code", "output", "mark_success"), {"failed": "failure"}
)
_RETRY = key_table("retry_policy", ("limit", "interval_sec", "backoff", "max_interval_sec", "exit_code"))
_REPEAT = key_table(
    "repeat_policy",
    ("repeat", "condition", "expected", "exit_code", "interval_sec", "limit", "backoff", "max_interval_sec"),
)
_OUTPUT = key_table("output", ("name", "key", "omit"))
_PARALLEL = key_table("parallel", ("items", "max_concurrent"))
_DEFAULT_MAX_CONCURRENT = 10


def read_preconditions(node: Node, field: str, log: IssueLog) -> tuple[Precondition, ...]:
    """A command string, a `{condition, expected, negate}` map, or a list of either."""
    items = node.value if node.is_seq else [node]
    result = []
    for i, item in enumerate(items):
        path = f"{field}[{i}]" if node.is_seq else field
        condition = _precondition(item, path, log)
        if condition is not None:
            result.append(condition)
    return tuple(result)


def read_continue_on(node: Node, field: str, log: IssueLog) -> ContinueOn:
    if node.is_scalar:
        word = scalar_text(node).strip().lower()
        if word in ("skipped", "failed", "failure"):
            return ContinueOn(failure=word != "skipped", skipped=word == "skipped")
        log.add(node, field, f'expected "skipped", "failed" or a mapping, got {describe(node)}', "write `continue_on: {failure: true}`")
        return ContinueOn()
    fields = read_mapping(node, _CONTINUE_ON, field, log)
    kwargs: dict = {}
    for key in ("failure", "skipped", "mark_success"):
        value = fields.get(key)
        if value is not None:
            kwargs[key] = bool(read_bool(value, fields.field(key), log))
    if (value := fields.get("exit_code")) is not None:
        kwargs["exit_codes"] = read_int_list(value, fields.field("exit_code"), log) or ()
    if (value := fields.get("output")) is not None:
        kwargs["output"] = read_str_list(value, fields.field("output"), log) or ()
    return ContinueOn(**kwargs)


def read_retry_policy(node: Node, field: str, log: IssueLog) -> RetryPolicy | None:
    fields = read_mapping(node, _RETRY, field, log)
    if not node.is_map:
        return None
    limit = _required(fields, "limit", node, log, "write `limit: 3`")
    interval = _required(fields, "interval_sec", node, log, "write `interval_sec: 10`")
    limit_value = read_int(limit, fields.field("limit"), log, allow_refs=True) if limit else None
    interval_value = read_number(interval, fields.field("interval_sec"), log, allow_refs=True) if interval else None
    backoff = _backoff(fields, log)
    max_interval = _optional_number(fields, "max_interval_sec", log)
    exit_codes = _optional_codes(fields, log)
    if None in (limit_value, interval_value, backoff):
        return None
    return RetryPolicy(limit_value, interval_value, backoff, max_interval, exit_codes)


def read_repeat_policy(node: Node, field: str, log: IssueLog) -> RepeatPolicy | None:
    fields = read_mapping(node, _REPEAT, field, log)
    if not node.is_map:
        return None
    condition = _optional_str(fields, "condition", log)
    expected = _optional_str(fields, "expected", log)
    exit_codes = _optional_codes(fields, log)
    if expected is not None and condition is None:
        log.add(fields.key_node("expected") or node, fields.field("expected"), "`expected` needs a `condition` to compare with")
    mode = _repeat_mode(fields, condition, expected, exit_codes, log)
    interval = _optional_number(fields, "interval_sec", log) or 0.0
    limit = fields.get("limit")
    limit_value = read_int(limit, fields.field("limit"), log) if limit else 0
    backoff = _backoff(fields, log)
    max_interval = _optional_number(fields, "max_interval_sec", log)
    if mode is None or backoff is None or limit_value is None:
        return None
    return RepeatPolicy(mode, condition, expected, exit_codes, float(interval), int(limit_value), backoff, max_interval)


def read_output(node: Node, field: str, log: IssueLog) -> Output | None:
    """`output: NAME` (a leading `$` is dropped) or `{name, key, omit}`."""
    if node.is_map:
        fields = read_mapping(node, _OUTPUT, field, log)
        name_node = fields.get("name")
        if name_node is None:
            log.add(node, field, "output needs a `name`", "write `output: {name: RESULT}`")
            return None
        name = _output_name(name_node, fields.field("name"), log)
        key = _optional_str(fields, "key", log)
        omit = fields.get("omit")
        omit_value = bool(read_bool(omit, fields.field("omit"), log)) if omit else False
        return Output(name, key, omit_value) if name else None
    name = _output_name(node, field, log)
    return Output(name) if name else None


def read_parallel(node: Node, field: str, log: IssueLog) -> Parallel | None:
    """`${LIST}` (split at run time), a list of items, or `{items, max_concurrent}`."""
    if node.is_scalar or node.is_seq:
        return _parallel_items(node, field, log, _DEFAULT_MAX_CONCURRENT)
    fields = read_mapping(node, _PARALLEL, field, log)
    max_node = fields.get("max_concurrent")
    max_concurrent = _DEFAULT_MAX_CONCURRENT
    if max_node is not None:
        value = read_int(max_node, fields.field("max_concurrent"), log, minimum=None)
        if value is not None and int(value) <= 0:
            log.add(max_node, fields.field("max_concurrent"), f"max_concurrent must be greater than 0, got {value}", "write `max_concurrent: 4`")
            return None
        max_concurrent = int(value) if value is not None else max_concurrent
    items = fields.get("items")
    if items is None:
        log.add(node, field, "parallel needs `items`", "write `parallel: {items: [a, b], max_concurrent: 2}`")
        return None
    if items.is_map:
        log.add(items, fields.field("items"), f"expected a list or a string, got {describe(items)}")
        return None
    return _parallel_items(items, fields.field("items"), log, max_concurrent)


def _parallel_items(node: Node, field: str, log: IssueLog, max_concurrent: int) -> Parallel | None:
    if node.is_scalar:
        text = scalar_text(node).strip()
        if not text:
            log.add(node, field, "parallel items are empty")
            return None
        return Parallel(expression=text, max_concurrent=max_concurrent)
    items = []
    for i, item in enumerate(node.value):
        if item.is_seq:
            log.add(item, f"{field}[{i}]", f"expected a string or a mapping, got {describe(item)}")
            return None
        items.append(freeze(plain(item)) if item.is_map else scalar_text(item))
    return Parallel(items=tuple(items), max_concurrent=max_concurrent)


def _precondition(node: Node, field: str, log: IssueLog) -> Precondition | None:
    if node.is_scalar:
        text = scalar_text(node)
        if not text.strip():
            log.add(node, field, "precondition is empty")
            return None
        return Precondition(text)
    if node.is_seq:
        log.add(node, field, f"expected a command string or a mapping, got {describe(node)}")
        return None
    fields = read_mapping(node, _PRECONDITION, field, log)
    condition = _optional_str(fields, "condition", log)
    if not condition:
        log.add(node, field, "precondition needs a `condition`", 'write `condition: "test -f data.csv"`')
        return None
    expected = _optional_str(fields, "expected", log)
    negate = fields.get("negate")
    negate_value = bool(read_bool(negate, fields.field("negate"), log)) if negate else False
    return Precondition(condition, expected, negate_value)


def _repeat_mode(fields: Fields, condition, expected, exit_codes, log: IssueLog) -> str | None:
    node = fields.get("repeat")
    if node is None:
        if condition is not None and expected is not None:
            return "until"
        if condition is not None or exit_codes:
            return "while"
        log.add(fields.node, fields.path, "repeat_policy needs `repeat`, a `condition` or an `exit_code`", "write `repeat: while` with a `condition`")
        return None
    value = node.value
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return "while"  # legacy `repeat: true`: repeat unconditionally while the step succeeds
    if isinstance(value, str) and value.strip().lower() in ("while", "until"):
        mode = value.strip().lower()
        if condition is None and not exit_codes:
            log.add(node, fields.field("repeat"), f"repeat mode '{mode}' needs a `condition` or an `exit_code`", 'add `condition: "..."` or `exit_code: [1]`')
            return None
        return mode
    log.add(node, fields.field("repeat"), f'expected "while", "until" or true, got {describe(node)}')
    return None


def _backoff(fields: Fields, log: IssueLog) -> float | None:
    node = fields.get("backoff")
    if node is None or node.value is False:
        return 1.0
    if node.value is True:
        return 2.0
    value = read_number(node, fields.field("backoff"), log, minimum=None)
    if value is None:
        return None
    if float(value) <= 1.0:
        log.add(node, fields.field("backoff"), f"backoff must be greater than 1, got {float(value):g}", "write `backoff: 2` or `backoff: true`")
        return None
    return float(value)


def _required(fields: Fields, key: str, node: Node, log: IssueLog, hint: str) -> Node | None:
    value = fields.get(key)
    if value is None:
        log.add(node, fields.field(key), f"{key} is required in {fields.path.rsplit('.', 1)[-1]}", hint)
    return value


def _optional_str(fields: Fields, key: str, log: IssueLog) -> str | None:
    node = fields.get(key)
    return read_str(node, fields.field(key), log) if node is not None else None


def _optional_number(fields: Fields, key: str, log: IssueLog) -> float | None:
    node = fields.get(key)
    if node is None:
        return None
    value = read_number(node, fields.field(key), log)
    return float(value) if value is not None else None


def _optional_codes(fields: Fields, log: IssueLog) -> tuple[int, ...]:
    node = fields.get("exit_code")
    return (read_int_list(node, fields.field("exit_code"), log) or ()) if node is not None else ()


def _output_name(node: Node, field: str, log: IssueLog) -> str | None:
    text = read_str(node, field, log)
    if text is None:
        return None
    name = text.strip().removeprefix("$").strip("{}")
    if not name or any(c.isspace() for c in name):
        log.add(node, field, f"expected a variable name such as RESULT, got {describe(node)}", "write `output: RESULT`")
        return None
    return name
