"""One step entry -> a `StepDraft`: every step field read and checked on its own.

Owns the step key table, the executor resolution of dag-spec 3.3 and the per-step
checks (commands, ids, signal names, capabilities of the resolved type). Naming,
dependencies and chain edges need all steps at once and belong to `dagu.spec.graph`.
"""

from __future__ import annotations

import re
import shlex
import signal
from dataclasses import dataclass, field
from typing import Any

from dagu.spec.issues import IssueLog, describe
from dagu.spec.keys import Fields, key_table, read_mapping
from dagu.spec.model import Location, freeze
from dagu.spec.nodes import Node, plain, scalar_text
from dagu.spec.params import read_call_params
from dagu.spec.policies import (
    read_continue_on,
    read_output,
    read_parallel,
    read_preconditions,
    read_repeat_policy,
    read_retry_policy,
)
from dagu.spec.step_types import TYPE_SPECS, check_config, check_container, check_llm
from dagu.spec.values import frozen, read_bool, read_choice, read_env, read_int, read_str, read_str_list, read_str_map
from dagu.steps.registry import STEP_TYPES, canonical_type

__all__ = ["StepContext", "StepDraft", "STEP_KEYS", "build_step", "MAX_NAME_LENGTH"]

MAX_NAME_LENGTH = 40
STEP_KEYS = key_table(
    "step",
    (
        "name", "id", "description", "command", "script", "run", "action", "config", "type", "executor",
        "exec", "shell", "shell_args", "shell_packages", "working_dir", "depends", "env", "preconditions",
        "continue_on", "retry_policy", "repeat_policy", "timeout_sec", "signal_on_stop", "mail_on_error",
        "output", "outputs", "output_schema", "stdout", "stderr", "log_output", "call", "params", "parallel",
        "foreach", "worker_selector", "container", "llm", "messages", "approval", "value", "routes",
        "inputs", "dependencies",
    ),
    {"dir": "working_dir", "precondition": "preconditions", "with": "config"},
)  # fmt: skip
# 2.15-only step keys we accept and keep as written in `Step.extras`.
_EXTRA_KEYS = ("action", "exec", "outputs", "output_schema", "foreach", "approval", "value", "routes", "inputs", "dependencies")
_EXECUTOR_KEYS = key_table("executor", ("type", "config"))
_MESSAGE_KEYS = key_table("message", ("role", "content"))
_ID_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")
_RESERVED_IDS = frozenset({"env", "params", "args", "stdout", "stderr", "output", "outputs"})
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step needs to know about its DAG while it is read."""

    log: IssueLog
    dag_container: bool = False
    dag_ssh: bool = False


@dataclass(slots=True)
class StepDraft:
    """A step read on its own: model fields plus what naming and dependencies need."""

    node: Node
    path: str
    fields: dict[str, Any]  # Step keyword arguments except name and depends
    name: str | None = None
    id: str | None = None
    prefix: str = "step"  # for auto-generated names
    depends: list[tuple[str, Node]] = field(default_factory=list)
    no_depends: bool = False  # `depends: []`


def build_step(node: Node, path: str, ctx: StepContext) -> StepDraft:
    """Read one step entry (a mapping, or a string shorthand for `command`)."""
    log = ctx.log
    draft = StepDraft(node, path, {"location": Location(node.file, node.line, node.column)})
    if node.is_scalar:
        commands, script = _commands(node, path, log)
        step_type = _resolve_type(None, None, False, False, ctx)
        draft.fields.update(commands=commands, script=script, type=step_type)
        draft.prefix = "script" if script else "cmd"
        return draft
    f = read_mapping(node, STEP_KEYS, path, log)
    _identity(f, draft, log)
    _execution(f, draft, ctx)
    _behaviour(f, draft, log)
    _extras(f, draft)
    return draft


def _identity(f: Fields, draft: StepDraft, log: IssueLog) -> None:
    if (node := f.get("name")) is not None:
        name = (read_str(node, f.field("name"), log) or "").strip()
        if len(name) > MAX_NAME_LENGTH:
            log.add(node, f.field("name"), f"step name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}", "use a shorter name and put details in `description`")
        draft.name = name or None
    if (node := f.get("id")) is not None:
        draft.id = _step_id(node, f.field("id"), log)
        draft.fields["id"] = draft.id
    if (node := f.get("description")) is not None:
        draft.fields["description"] = read_str(node, f.field("description"), log) or ""
    if f.has("depends"):
        _depends(f, draft, log)


def _execution(f: Fields, draft: StepDraft, ctx: StepContext) -> None:
    log = ctx.log
    commands: tuple[str, ...] = ()
    script = None
    if (node := f.get("command")) is not None:
        commands, script = _commands(node, f.field("command"), log)
    if (node := f.get("script")) is not None:
        script = read_str(node, f.field("script"), log)
    explicit, config_node = _explicit_type(f, log)
    call = _call(f, log)
    parallel = read_parallel(f.get("parallel"), f.field("parallel"), log) if f.get("parallel") else None
    container = check_container(f.get("container"), f.field("container"), log) if f.get("container") else None
    step_type = _resolve_type(explicit, call, parallel is not None, container is not None, ctx)
    draft.prefix = _name_prefix(explicit, container, parallel, call, script, commands)
    draft.fields.update(
        type=step_type, commands=commands, script=script, call=call, parallel=parallel, container=container
    )
    if parallel is not None and call is None:
        log.add(f.key_node("parallel"), f.field("parallel"), "parallel execution is only supported for sub-DAG steps", "add `call: <dag name>` to this step")
    if call is not None and explicit and step_type not in ("dag", "parallel"):
        log.add(f.key_node("call") or f.key_node("run"), f.field("call"), f'a step of type "{step_type}" cannot also `call` a sub-DAG', "remove `type` or `call`")
    if (node := f.get("params")) is not None:
        draft.fields["params"] = read_call_params(node, f.field("params"), log)
    _shell(f, draft, log)
    draft.fields["config"] = _config(step_type, config_node, f, draft, ctx)


def _behaviour(f: Fields, draft: StepDraft, log: IssueLog) -> None:
    out = draft.fields
    readers = {
        "working_dir": lambda n, p: read_str(n, p, log),
        "env": lambda n, p: read_env(n, p, log) or (),
        "preconditions": lambda n, p: read_preconditions(n, p, log),
        "continue_on": lambda n, p: read_continue_on(n, p, log),
        "retry_policy": lambda n, p: read_retry_policy(n, p, log),
        "repeat_policy": lambda n, p: read_repeat_policy(n, p, log),
        "timeout_sec": lambda n, p: read_int(n, p, log) or 0,
        "signal_on_stop": lambda n, p: _signal_name(n, p, log),
        "mail_on_error": lambda n, p: bool(read_bool(n, p, log)),
        "output": lambda n, p: read_output(n, p, log),
        "stdout": lambda n, p: read_str(n, p, log),
        "stderr": lambda n, p: read_str(n, p, log),
        "log_output": lambda n, p: read_choice(n, p, log, ("separate", "merged")),
        "worker_selector": lambda n, p: freeze(read_str_map(n, p, log) or {}),
        "llm": lambda n, p: check_llm(n, p, log),
        "messages": lambda n, p: _messages(n, p, log),
    }
    for key, read in readers.items():
        node = f.get(key)
        if node is not None:
            out[key] = read(node, f.field(key))
    if out.get("stdout") and out.get("stdout") == out.get("stderr"):
        log.add(f.get("stderr"), f.field("stderr"), "stdout and stderr point to the same file", "remove `stderr` and set `log_output: merged`")
    if out.get("type") == "chat" and not f.has("messages") and not ({"prompt", "messages"} & set(out["config"])):
        log.add(draft.node, draft.path, "chat steps need `messages` (at least one)", "add `messages: [{role: user, content: ...}]`")


def _extras(f: Fields, draft: StepDraft) -> None:
    extras = {key: plain(f.get(key)) for key in _EXTRA_KEYS if f.get(key) is not None}
    if extras:
        draft.fields["extras"] = freeze(extras)


def _commands(node: Node, field: str, log: IssueLog) -> tuple[tuple[str, ...], str | None]:
    """`command` -> (commands, script): a multi-line string is a script."""
    if node.is_map:
        log.add(node, field, f"expected a command string or a list of commands, got {describe(node)}")
        return (), None
    items = node.value if node.is_seq else [node]
    commands = []
    for i, item in enumerate(items):
        path = f"{field}[{i}]" if node.is_seq else field
        text = scalar_text(item) if item.is_scalar else None
        if text is None:
            log.add(item, path, f"expected a command string, got {describe(item)}")
        elif not text.strip():
            log.add(item, path, "step command is empty", "write a command such as `command: echo hello`, or remove the key")
        elif not node.is_seq and "\n" in text.strip():
            return (), text
        else:
            commands.append(text.strip())
    if node.is_seq and not items:
        log.add(node, field, "step command is empty", "list at least one command, or remove the key")
    return tuple(commands), None


def _explicit_type(f: Fields, log: IssueLog) -> tuple[str | None, Node | None]:
    """The step type as written (`type`, legacy `executor`, or 2.15 `action`) and the config node."""
    config = f.get("config")
    executor = f.get("executor")
    written = None
    if executor is not None:
        if f.get("type") is not None or config is not None:
            log.add(f.key_node("executor"), f.field("executor"), "`executor` cannot be combined with `type` or `config`", "write `type: <name>` and `config: {...}` instead of `executor`")
        if executor.is_map:
            ef = read_mapping(executor, _EXECUTOR_KEYS, f.field("executor"), log)
            type_node = ef.get("type")
            written = read_str(type_node, ef.field("type"), log) if type_node is not None else None
            if written is None and type_node is None:
                log.add(executor, f.field("executor"), "executor needs a `type`", "write `executor: {type: http, config: {...}}`")
            config = config or ef.get("config")
        else:
            written = read_str(executor, f.field("executor"), log)
    if (node := f.get("type")) is not None:
        written = read_str(node, f.field("type"), log)
    elif written is None and (node := f.get("action")) is not None and node.is_scalar:
        written = _action_type(scalar_text(node))
    if written is not None and not written.strip():
        log.add(f.get("type") or f.node, f.field("type"), "step type is empty")
        written = None
    return written, config


def _action_type(action: str) -> str:
    """2.15 `action: http.request` -> the 1.30 type name `http`."""
    prefix = action.split(".", 1)[0].strip()
    return "hitl" if prefix in ("human", "approval") else prefix


def _call(f: Fields, log: IssueLog) -> str | None:
    call_node = f.get("call")
    run_node = f.get("run")
    if call_node is not None and run_node is not None:
        log.add(f.key_node("run"), f.field("run"), "`run` and `call` both name a sub-DAG; keep `call`")
    node = call_node if call_node is not None else run_node
    if node is None:
        return None
    key = "call" if call_node is not None else "run"
    if not node.is_scalar or not scalar_text(node).strip():
        log.add(node, f.field(key), f"expected a sub-DAG name or path, got {describe(node)}", f"write `{key}: other-dag`")
        return None
    return scalar_text(node).strip()


def _resolve_type(explicit: str | None, call: str | None, parallel: bool, container: bool, ctx: StepContext) -> str:
    if explicit:
        resolved = canonical_type(explicit)
        return "parallel" if resolved == "dag" and parallel else resolved
    if call is not None:
        return "parallel" if parallel else "dag"
    if container or ctx.dag_container:
        return "docker"
    if ctx.dag_ssh:
        return "ssh"
    return "command"


def _name_prefix(explicit, container, parallel, call, script, commands) -> str:
    if explicit and canonical_type(explicit) != "command":
        return canonical_type(explicit)
    if container is not None:
        return "docker"
    if parallel is not None:
        return "parallel"
    if call is not None:
        return "dag"
    if script is not None:
        return "script"
    return "cmd" if commands else "step"


def _config(step_type: str, node: Node | None, f: Fields, draft: StepDraft, ctx: StepContext) -> Any:
    log = ctx.log
    spec = TYPE_SPECS.get(step_type)
    out = draft.fields
    if spec is None:
        if out["commands"] or out["script"]:
            known = ", ".join(sorted(STEP_TYPES))
            log.add(f.get("type") or f.get("executor") or draft.node, f.field("type"), f'executor type "{step_type}" is not registered', f"known types: {known}")
        if node is not None and not node.is_map:
            log.add(node, f.field("config"), f"expected a mapping of config keys, got {describe(node)}")
            return freeze({})
        return frozen(node) if node is not None else freeze({})
    _check_capabilities(step_type, spec, f, draft, log)
    config = check_config(spec, node, f.field("config"), log) if node is not None else freeze({})
    explicit_docker = step_type == "docker" and out.get("container") is None and not ctx.dag_container
    if explicit_docker and not ({"image", "container_name"} & set(config)):
        log.add(node or draft.node, f.field("config"), "docker steps need `image` or `container_name` in config", "add `config: {image: alpine}` or a step `container:`")
    if step_type == "ssh" and "host" not in config and not ctx.dag_ssh:
        log.add(node or draft.node, f.field("config"), "ssh steps need `host` in config (or a DAG-level `ssh:`)", "add `config: {host: example.com, user: me}`")
    return config


def _check_capabilities(step_type: str, spec, f: Fields, draft: StepDraft, log: IssueLog) -> None:
    out = draft.fields
    where = f.key_node("command") or draft.node
    if out["commands"] and spec.commands == "none":
        log.add(where, f.field("command"), f'executor type "{step_type}" does not support command field', "remove `command` and use `config`")
    elif len(out["commands"]) > 1 and spec.commands == "single":
        log.add(where, f.field("command"), f'executor type "{step_type}" only supports a single command', "split the commands into separate steps")
    if out["script"] is not None and not spec.script:
        log.add(f.key_node("script") or where, f.field("script"), f'executor type "{step_type}" does not support script field')
    if out.get("shell") and not spec.shell:
        log.add(f.key_node("shell"), f.field("shell"), f'executor type "{step_type}" does not support shell configuration')


def _shell(f: Fields, draft: StepDraft, log: IssueLog) -> None:
    out = draft.fields
    if (node := f.get("shell")) is not None:
        if node.is_seq:
            items = read_str_list(node, f.field("shell"), log)
            out["shell"] = shlex.join(items) if items else None
        else:
            out["shell"] = (read_str(node, f.field("shell"), log) or "").strip() or None
    for key in ("shell_args", "shell_packages"):
        if (node := f.get(key)) is not None:
            out[key] = read_str_list(node, f.field(key), log) or ()


def _depends(f: Fields, draft: StepDraft, log: IssueLog) -> None:
    node = f.get("depends")
    if node is None:
        return
    if node.is_map:
        log.add(node, f.field("depends"), f"expected a step name or a list of step names, got {describe(node)}")
        return
    items = node.value if node.is_seq else [node]
    draft.no_depends = node.is_seq and not items
    for i, item in enumerate(items):
        path = f"{f.field('depends')}[{i}]" if node.is_seq else f.field("depends")
        text = scalar_text(item).strip() if item.is_scalar else ""
        if not text:
            log.add(item, path, f"expected a step name, got {describe(item)}")
        else:
            draft.depends.append((text, item))


def _step_id(node: Node, field: str, log: IssueLog) -> str | None:
    text = read_str(node, field, log)
    if text is None:
        return None
    if not _ID_RE.fullmatch(text):
        log.add(node, field, f"invalid step id {text!r}: it must start with a letter and contain only letters, digits, _ and -", "write e.g. `id: extract_data`")
        return None
    if text.lower() in _RESERVED_IDS:
        log.add(node, field, f"step id {text!r} is a reserved word", f"reserved: {', '.join(sorted(_RESERVED_IDS))}")
        return None
    return text


def _signal_name(node: Node, field: str, log: IssueLog) -> str | None:
    text = (read_str(node, field, log) or "").strip()
    if text in signal.Signals.__members__:
        return text
    guess = "SIG" + text.upper().removeprefix("SIG")
    hint = f"write `signal_on_stop: {guess}`" if guess in signal.Signals.__members__ else "use a full signal name such as SIGINT or SIGTERM"
    log.add(node, field, f"unknown signal {describe(node)}", hint)
    return None


def _messages(node: Node, field: str, log: IssueLog) -> tuple[Any, ...]:
    if not node.is_seq:
        log.add(node, field, f"expected a list of {{role, content}} messages, got {describe(node)}")
        return ()
    messages = []
    for i, item in enumerate(node.value):
        path = f"{field}[{i}]"
        mf = read_mapping(item, _MESSAGE_KEYS, path, log)
        role = mf.get("role")
        if role is None or read_choice(role, mf.field("role"), log, _ROLES) is None:
            if role is None and item.is_map:
                log.add(item, path, "message needs a `role` (system, user or assistant)")
            continue
        messages.append(frozen(item))
    return tuple(messages)
