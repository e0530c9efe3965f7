"""Run parameters: tokenising a params string and reading the list/map shapes.

Values stay literal here (`$VAR` and backticks are kept as written); `dagu.resolve`
evaluates them when a run starts.
"""

from __future__ import annotations

import re

import orjson

from dagu.spec.issues import IssueLog, describe
from dagu.spec.model import Param
from dagu.spec.nodes import Node, plain, scalar_text

__all__ = ["parse_params", "read_params", "render_params", "read_call_params"]

_NAME_RE = re.compile(r'([^\s="`]+)=')
_RICH_KEYS = {
    "name", "type", "default", "enum", "required", "eval", "description",
    "min_length", "max_length", "minimum", "maximum", "pattern", "minLength", "maxLength",
}  # fmt: skip


def parse_params(text: str) -> list[Param]:
    """Split a params string into Params, the way Dagu does.

    Words are separated by whitespace; `"..."` groups words (`\\"` is a literal quote);
    a backtick section is kept with its backticks; `NAME=value` is named, anything else
    positional ("1", "2", ...). A text that is a JSON object gives one named param per key.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        from_json = _params_from_json(stripped)
        if from_json is not None:
            return from_json
    return _number_positionals(_tokens(text))


def read_params(node: Node, field: str, log: IssueLog) -> tuple[tuple[Param, ...], str, object | None]:
    """DAG `params` in any shape -> (params, params_text, raw declaration for extras or None)."""
    if node.is_scalar:
        text = scalar_text(node)
        return tuple(parse_params(text)), text, None
    if node.is_map:
        if "schema" in _keys(node) or "properties" in _keys(node):
            return _schema_params(node, field, log), "", plain(node)
        pairs = [(k.text, v) for k, v in node.value]
        params = _named_from_pairs(sorted(pairs, key=lambda p: p[0]), field, log)
        return tuple(params), render_params(params), None
    params: list[Param] = []
    rich = False
    for i, item in enumerate(node.value):
        path = f"{field}[{i}]"
        if item.is_map and _is_rich(item):
            rich = True
            params.append(_rich_param(item, path, log))
        elif item.is_map:
            params.extend(_named_from_pairs(sorted(((k.text, v) for k, v in item.value), key=lambda p: p[0]), path, log))
        elif item.is_scalar:
            params.append(_single_token(scalar_text(item)))
        else:
            log.add(item, path, f"expected a string or a mapping, got {describe(item)}")
    params = _number_positionals(params)
    return tuple(params), render_params(params), plain(node) if rich else None


def read_call_params(node: Node, field: str, log: IssueLog) -> str | None:
    """Step `params` for `call`/`parallel`, normalised to one params string."""
    if node.is_scalar:
        return scalar_text(node)
    return read_params(node, field, log)[1]


def render_params(params: list[Param] | tuple[Param, ...]) -> str:
    """Params as one string that `parse_params` reads back to the same list."""
    return " ".join(_quote(p.value) if p.positional else f"{p.name}={_quote(p.value)}" for p in params)


def _tokens(text: str) -> list[Param]:
    params: list[Param] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        name = None
        match = _NAME_RE.match(text, i)
        if match:
            name = match.group(1)
            i = match.end()
        value, i = _value(text, i)
        params.append(Param(name, value) if name is not None else Param("", value, positional=True))
    return params


def _value(text: str, i: int) -> tuple[str, int]:
    """Read one value starting at `i`; returns (value, index after it)."""
    n = len(text)
    if i < n and text[i] == '"':
        out = []
        j = i + 1
        while j < n and text[j] != '"':
            if text[j] == "\\" and j + 1 < n and text[j + 1] == '"':
                out.append('"')
                j += 2
                continue
            out.append(text[j])
            j += 1
        return "".join(out), j + 1
    if i < n and text[i] == "`":
        end = text.find("`", i + 1)
        end = n if end < 0 else end + 1
        return text[i:end], end
    j = i
    while j < n and not text[j].isspace() and text[j] != '"':
        j += 1
    return text[i:j], j


def _number_positionals(params: list[Param]) -> list[Param]:
    result = []
    position = 0
    for p in params:
        if p.positional:
            position += 1
            p = Param(str(position), p.value, positional=True)
        result.append(p)
    return result


def _single_token(text: str) -> Param:
    match = _NAME_RE.match(text)
    if match and match.end() <= len(text):
        return Param(match.group(1), text[match.end() :])
    return Param("", text, positional=True)


def _named_from_pairs(pairs: list[tuple[str, Node]], field: str, log: IssueLog) -> list[Param]:
    params = []
    for name, value in pairs:
        if not name:
            log.add(value, field, "param names must be non-empty strings")
        elif not value.is_scalar:
            log.add(value, f"{field}.{name}", f"expected a string value, got {describe(value)}", "quote structured values")
        else:
            params.append(Param(name, scalar_text(value)))
    return params


def _is_rich(node: Node) -> bool:
    keys = _keys(node)
    return "name" in keys and len(keys) > 1 and keys <= _RICH_KEYS


def _rich_param(node: Node, field: str, log: IssueLog) -> Param:
    values = {k.text: v for k, v in node.value}
    name_node = values["name"]
    name = scalar_text(name_node) if name_node.is_scalar else ""
    if not name:
        log.add(name_node, f"{field}.name", f"expected a param name, got {describe(name_node)}")
    default = values.get("default")
    value = scalar_text(default) if default is not None and default.is_scalar else ""
    return Param(name, value)


def _schema_params(node: Node, field: str, log: IssueLog) -> tuple[Param, ...]:
    values = {k.text: v for k, v in node.value}
    source = values.get("values")
    if source is not None and source.is_map:
        return tuple(_named_from_pairs(sorted(((k.text, v) for k, v in source.value), key=lambda p: p[0]), f"{field}.values", log))
    props = values.get("properties")
    params = []
    if props is not None and props.is_map:
        for key, spec in props.value:
            default = dict((k.text, v) for k, v in spec.value).get("default") if spec.is_map else None
            params.append(Param(key.text, scalar_text(default) if default is not None and default.is_scalar else ""))
    return tuple(params)


def _params_from_json(text: str) -> list[Param] | None:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    result = []
    for key, value in data.items():
        text_value = value if isinstance(value, str) else orjson.dumps(value).decode()
        result.append(Param(str(key), text_value))
    return result


def _keys(node: Node) -> set[str]:
    return {k.text for k, _ in node.value if k.is_scalar}


def _quote(value: str) -> str:
    plain_word = value and not any(c.isspace() or c == '"' for c in value)
    if plain_word and (not value.startswith("`") or value.find("`", 1) == len(value) - 1):
        return value
    return '"' + value.replace('"', '\\"') + '"'
