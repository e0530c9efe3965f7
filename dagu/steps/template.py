"""The `template` step type: render a text template with data, to stdout or a file.

Owns dag-spec 4.15. The syntax is a small subset of Go's text/template, which is what
Dagu users write, implemented here (no Jinja2, no Go):

* `{{ .key }}`, `{{ .a.b }}`, `{{ . }}` (the current value), `{{ $ }}` / `{{ $.a }}` (the root),
  string and number literals, `{{/* comments */}}`;
* `{{ if .x }}...{{ else if .y }}...{{ else }}...{{ end }}` (Go truthiness: false, 0,
  "", empty lists/maps and missing values are false), `{{ not .x }}`, `{{ eq .a "b" }}`,
  `{{ ne .a .b }}`, `{{ and .a .b }}`, `{{ or .a .b }}`;
* `{{ range .items }}...{{ else }}...{{ end }}` (lists in order, maps by sorted key), with
  `{{ range $i, $v := .items }}` / `{{ range $v := .items }}` and `{{ $v }}`, `{{ $v.x }}`;
* `{{ with .x }}...{{ else }}...{{ end }}`;
* `{{-` and `-}}` trim the whitespace beside them; `{{ .x | printf "%s" }}` is not supported.

A missing key prints `<no value>` as Go does. The template body is taken as written
(`${...}` inside it is not expanded); the `data` values are expanded like any config.
Config: `template` (or `template_ref`, or the step `script`), `data`, `output`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagu.steps.base import Attempt, AttemptResult
from dagu.steps.service import StepExecutor, StepLogs

__all__ = ["TemplateExecutor", "TemplateError", "render"]

_ACTION_RE = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|:=|,|[^\s(),]+')
_MISSING = object()


class TemplateError(ValueError):
    """The template text is malformed or refers to something that cannot be rendered."""


class TemplateExecutor(StepExecutor):
    """One attempt of a template step (rendering is quick; stop is not checked mid-way)."""

    def work(self, io: StepLogs) -> AttemptResult:
        cfg = self.attempt.config
        text = _template_text(self.attempt)
        if text is None:
            return io.fail("template: no template; set config `template:` (or `template_ref:`)")
        try:
            rendered = render(text, cfg.get("data") or {})
        except TemplateError as exc:
            return io.fail(f"template: {exc}")
        target = cfg.get("output")
        if target:
            path = os.path.join(self.attempt.cwd, str(target))
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(rendered)
            except OSError as exc:
                return io.fail(f"template: cannot write output: {exc}")
        else:
            io.out(rendered)
        return io.result(0)


def render(text: str, data: Any) -> str:
    """Render Go-template `text` with `data` as the root value `.`.

    Raises:
        TemplateError: a syntax error (with the line) or an unsupported action.
    """
    nodes = _Parser(text).parse()
    out: list[str] = []
    _exec(nodes, _Scope(data, data, {}), out)
    return "".join(out)


# -- parsing ----------------------------------------------------------------------------


@dataclass
class _Text:
    text: str


@dataclass
class _Print:
    expr: list[str]
    line: int


@dataclass
class _Block:
    kind: str  # "if" | "range" | "with"
    expr: list[str]
    line: int
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)
    variables: tuple[str, ...] = ()


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._items = self._lex(text)
        self._pos = 0

    def parse(self) -> list[Any]:
        nodes, end = self._until(())
        if end is not None:
            raise TemplateError(f"line {end[1]}: unexpected {{{{ {end[0]} }}}}")
        return nodes

    def _lex(self, text: str) -> list[tuple[str, Any, int]]:
        items: list[tuple[str, Any, int]] = []
        pos = 0
        for m in _ACTION_RE.finditer(text):
            chunk = text[pos : m.start()]
            if m.group(1):
                chunk = chunk.rstrip()
            items.append(("text", chunk, 0))
            items.append(("action", m.group(2).strip(), text.count("\n", 0, m.start()) + 1))
            pos = m.end()
            if m.group(3):
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip())
        items.append(("text", text[pos:], 0))
        if "{{" in "".join(i[1] for i in items if i[0] == "text"):
            raise TemplateError("unclosed action: `{{` without `}}`")
        return items

    def _until(self, stops: tuple[str, ...]) -> tuple[list[Any], tuple[str, int, list[str]] | None]:
        nodes: list[Any] = []
        while self._pos < len(self._items):
            kind, value, line = self._items[self._pos]
            self._pos += 1
            if kind == "text":
                if value:
                    nodes.append(_Text(value))
                continue
            if value.startswith("/*"):
                continue
            words = _TOKEN_RE.findall(value)
            if not words:
                raise TemplateError(f"line {line}: empty action {{{{}}}}")
            head = words[0]
            if head in ("end", "else"):
                if head not in stops and not (head == "else" and "else" in stops):
                    raise TemplateError(f"line {line}: unexpected {{{{ {value} }}}}")
                return nodes, (head, line, words[1:])
            if head in ("if", "range", "with"):
                nodes.append(self._block(head, words[1:], line))
            elif head in ("define", "template", "block", "break", "continue"):
                raise TemplateError(f"line {line}: {{{{ {head} }}}} is not supported")
            else:
                nodes.append(_Print(words, line))
        if stops:
            raise TemplateError("missing {{ end }} for a block")
        return nodes, None

    def _block(self, kind: str, words: list[str], line: int) -> _Block:
        variables: tuple[str, ...] = ()
        if kind == "range" and ":=" in words:
            at = words.index(":=")
            variables = tuple(w for w in words[:at] if w != ",")
            words = words[at + 1 :]
        if not words:
            raise TemplateError(f"line {line}: {{{{ {kind} }}}} needs a value")
        block = _Block(kind, words, line, variables=variables)
        block.body, end = self._until(("end", "else"))
        if end is None:
            raise TemplateError(f"line {line}: missing {{{{ end }}}} for {{{{ {kind} }}}}")
        if end[0] == "else":
            rest = end[2]
            if rest and rest[0] in ("if", "with") and kind == rest[0]:
                block.orelse = [self._block(rest[0], rest[1:], end[1])]
                return block  # the nested block consumed the shared {{ end }}
            block.orelse, end = self._until(("end",))
            if end is None:
                raise TemplateError(f"line {line}: missing {{{{ end }}}} for {{{{ {kind} }}}}")
        return block


# -- execution --------------------------------------------------------------------------


@dataclass
class _Scope:
    dot: Any
    root: Any
    variables: dict[str, Any]


def _exec(nodes: list[Any], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Print):
            out.append(_show(_eval(node.expr, scope, node.line)))
        elif node.kind == "if":
            _exec(node.body if _truth(_eval(node.expr, scope, node.line)) else node.orelse, scope, out)
        elif node.kind == "with":
            value = _eval(node.expr, scope, node.line)
            if _truth(value):
                _exec(node.body, _Scope(value, scope.root, scope.variables), out)
            else:
                _exec(node.orelse, scope, out)
        else:
            _range(node, scope, out)


def _range(node: _Block, scope: _Scope, out: list[str]) -> None:
    value = _eval(node.expr, scope, node.line)
    if isinstance(value, Mapping):
        pairs = [(k, value[k]) for k in sorted(value)]
    elif isinstance(value, (list, tuple)):
        pairs = list(enumerate(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        pairs = [(i, i) for i in range(value)]
    elif value is None or value is _MISSING:
        pairs = []
    else:
        raise TemplateError(f"line {node.line}: range can't iterate over {_show(value)}")
    if not pairs:
        _exec(node.orelse, scope, out)
        return
    for key, item in pairs:
        variables = dict(scope.variables)
        if len(node.variables) == 1:
            variables[node.variables[0]] = item
        elif len(node.variables) == 2:
            variables[node.variables[0]], variables[node.variables[1]] = key, item
        _exec(node.body, _Scope(item, scope.root, variables), out)


_FUNCS = {
    "not": lambda a: not _truth(a),
    "eq": lambda a, *bs: any(_plain(a) == _plain(b) for b in bs),
    "ne": lambda a, b: _plain(a) != _plain(b),
    "and": lambda *xs: next((x for x in xs if not _truth(x)), xs[-1]),
    "or": lambda *xs: next((x for x in xs if _truth(x)), xs[-1]),
    "len": lambda a: len(a),
    "print": lambda *xs: "".join(_show(x) for x in xs),
}


def _eval(words: list[str], scope: _Scope, line: int) -> Any:
    if "|" in words:
        raise TemplateError(f"line {line}: pipelines (`|`) are not supported")
    args, pos = _args(words, 0, scope, line)
    if pos != len(words):
        raise TemplateError(f"line {line}: unexpected {words[pos]!r}")
    head = words[0]
    if head in _FUNCS:
        try:
            return _FUNCS[head](*args[1:])
        except (TypeError, IndexError) as exc:
            raise TemplateError(f"line {line}: {head}: {exc}") from None
    if len(args) != 1:
        raise TemplateError(f"line {line}: {head!r} is not a function; only one value may be printed")
    return args[0]


def _args(words: list[str], pos: int, scope: _Scope, line: int) -> tuple[list[Any], int]:
    values: list[Any] = []
    while pos < len(words) and words[pos] != ")":
        word = words[pos]
        if word == "(":
            inner, end = _args(words, pos + 1, scope, line)
            if end >= len(words):
                raise TemplateError(f"line {line}: missing `)`")
            sub = words[pos + 1 : end]
            values.append(_eval(sub, scope, line) if sub and sub[0] in _FUNCS else (inner[0] if inner else None))
            pos = end + 1
            continue
        values.append(word if word in _FUNCS else _operand(word, scope, line))
        pos += 1
    return values, pos


def _operand(word: str, scope: _Scope, line: int) -> Any:
    if word.startswith('"'):
        return bytes(word[1:-1], "utf-8").decode("unicode_escape")
    if word.startswith("`"):
        return word[1:-1]
    if word in ("true", "false"):
        return word == "true"
    if word == "nil":
        return None
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if re.fullmatch(r"-?\d+\.\d*", word):
        return float(word)
    if word == ".":
        return scope.dot
    if word.startswith("."):
        return _path(scope.dot, word[1:].split("."))
    if word.startswith("$"):
        name, _, rest = word.partition(".")
        if name == "$":
            base = scope.root
        elif name in scope.variables:
            base = scope.variables[name]
        else:
            raise TemplateError(f"line {line}: undefined variable {name}")
        return _path(base, rest.split(".")) if rest else base
    raise TemplateError(f"line {line}: function {word!r} not defined")


def _path(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, _MISSING)
        else:
            return _MISSING
    return value


def _truth(value: Any) -> bool:
    return value is not _MISSING and bool(value)


def _plain(value: Any) -> Any:
    return None if value is _MISSING else value


def _show(value: Any) -> str:
    """A value printed the way Go's fmt prints it inside a template."""
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_show(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_show(v) for v in value) + "]"
    return str(value)


def _template_text(attempt: Attempt) -> str | None:
    # The body as written: Go template syntax must not go through ${...} expansion.
    written = attempt.step.config
    for key in ("template",):
        if isinstance(written.get(key), str):
            return written[key]
    if attempt.config.get("template_ref"):
        return str(attempt.config["template_ref"])
    if attempt.script is not None:
        return attempt.step.script
    return None
