"""SQL text for the postgres and sqlite step types: splitting a script into statements and
binding parameters.

Owns the lexical view of SQL that the `postgres` and `sqlite` steps need: string
literals, quoted identifiers, comments and (postgres) dollar quotes are skipped, so a
`;` or `:name` inside them is left alone. It does not run anything.

Placeholders users write: `:name` (named, with `params` as a mapping), `$1` (positional,
with `params` as a list) and, for sqlite, `?`. They are rewritten to one named style per
driver (`%(name)s` for psycopg, `:name` for sqlite3) so each statement of a script gets
exactly the parameters it uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["split_statements", "bind", "BindError"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIGITS = re.compile(r"[0-9]+")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class BindError(ValueError):
    """A placeholder has no value in `params`, or the params do not fit the placeholders."""


def split_statements(text: str, dialect: str) -> list[str]:
    """The statements of `text` (separated by `;` outside quotes and comments), trimmed,
    without empty ones. `dialect` is "postgres" or "sqlite"."""
    statements: list[str] = []
    start = 0
    has_code = False
    for kind, begin, end in _tokens(text, dialect):
        if kind == ";":
            if has_code:
                statements.append(text[start:begin].strip())
            start, has_code = end, False
        elif kind not in ("space", "comment"):
            has_code = True
    if has_code:
        statements.append(text[start:].strip())
    if dialect == "sqlite":
        statements = _join_incomplete(statements)
    return statements


def bind(statement: str, params: Any, dialect: str, counter: list[int] | None = None) -> tuple[str, dict[str, Any] | None]:
    """Rewrite the placeholders of one statement to the driver's named style.

    Args:
        params: a mapping (for `:name`), a list (for `$1` and, in sqlite, `?`) or None
            (the statement is returned untouched).
        counter: shared across the statements of one script so that `?` placeholders
            take the list's values in order; one-element list holding the next index.

    Returns:
        (sql, values): values maps the rewritten names to their values (None when
        `params` is None).

    Raises:
        BindError: a placeholder has no value.
    """
    if params is None or params == {} or params == []:
        return statement, None
    counter = counter if counter is not None else [0]
    named = isinstance(params, Mapping)
    values: dict[str, Any] = {}
    out: list[str] = []
    for kind, begin, end in _tokens(statement, dialect):
        token = statement[begin:end]
        if kind == ":name" and named:
            name = token[1:]
            if name not in params:
                raise BindError(f"the query uses :{name} but params has no {name!r} (params: {', '.join(map(str, params)) or 'none'})")
            values[name] = params[name]
            out.append(_placeholder(name, dialect))
        elif kind == "$n" and not named:
            index = int(token[1:])
            values[f"p{index}"] = _positional(params, index, token)
            out.append(_placeholder(f"p{index}", dialect))
        elif kind == "?" and not named:
            counter[0] += 1
            values[f"q{counter[0]}"] = _positional(params, counter[0], "?")
            out.append(_placeholder(f"q{counter[0]}", dialect))
        elif dialect == "postgres":
            out.append(token.replace("%", "%%"))  # psycopg reads every % as a placeholder once params are given
        else:
            out.append(token)
    return "".join(out), values


def _placeholder(name: str, dialect: str) -> str:
    return f"%({name})s" if dialect == "postgres" else f":{name}"


def _positional(params: Sequence[Any], index: int, token: str) -> Any:
    if index < 1 or index > len(params):
        shown = f"? #{index}" if token == "?" else token
        raise BindError(f"the query uses {shown} but params has {len(params)} value(s)")
    return params[index - 1]


def _join_incomplete(statements: list[str]) -> list[str]:
    """Rejoin pieces that sqlite would not end at that `;` (a trigger body `BEGIN ...; END`)."""
    import sqlite3

    joined: list[str] = []
    pending = ""
    for stmt in statements:
        pending = f"{pending}; {stmt}" if pending else stmt
        if sqlite3.complete_statement(pending + ";"):
            joined.append(pending)
            pending = ""
    if pending:
        joined.append(pending)
    return joined


def _tokens(text: str, dialect: str):
    """Yield (kind, begin, end) over `text`; kinds: space, comment, string, ident, ;, :name,
    $n, ?, %, ::, code."""
    i, n = 0, len(text)
    while i < n:
        kind, j = _token_at(text, i, n, dialect)
        yield kind, i, j
        i = j


def _token_at(text: str, i: int, n: int, dialect: str) -> tuple[str, int]:
    c = text[i]
    if c.isspace():
        j = i + 1
        while j < n and text[j].isspace():
            j += 1
        return "space", j
    if text.startswith("--", i):
        j = text.find("\n", i)
        return "comment", n if j < 0 else j + 1
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return "comment", n if j < 0 else j + 2
    if c in "'\"`" or (c == "[" and dialect == "sqlite"):
        return ("string" if c == "'" else "ident"), _quoted_end(text, i, n, "]" if c == "[" else c)
    if c == ";":
        return ";", i + 1
    if text.startswith("::", i):
        return "::", i + 2
    if c == ":" and (m := _NAME.match(text, i + 1)):
        return ":name", m.end()
    if c == "$" and (m := _DIGITS.match(text, i + 1)):
        return "$n", m.end()
    if c == "$" and dialect == "postgres" and (m := _DOLLAR_TAG.match(text, i)):
        close = text.find(m.group(0), m.end())
        return "string", n if close < 0 else close + len(m.group(0))
    if c == "?" and dialect == "sqlite":
        return "?", i + 1
    if c == "%":
        return "%", i + 1
    j = i + 1
    if c.isalnum() or c == "_":
        while j < n and (text[j].isalnum() or text[j] in "_$"):
            j += 1  # a word: `a$1` is an identifier in postgres, not a placeholder
    return "code", j


def _quoted_end(text: str, i: int, n: int, close: str) -> int:
    """The end of the quoted token starting at i; a doubled quote is an escaped quote."""
    j = i + 1
    while j < n:
        if text[j] == close:
            if close != "]" and j + 1 < n and text[j + 1] == close:
                j += 2
                continue
            return j + 1
        j += 1
    return n
