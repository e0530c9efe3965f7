"""POSIX parameter expansion, the last stage of the 1.30 pipeline (`${X:-d}`, `${#X}`,
`${X%p}`, ...). Owns only the shell's rules; where values come from is the caller's.

Supported: `$X`, `${X}`, `${#X}`, `${X:-w}` `${X-w}` `${X:=w}` `${X=w}` (no
assignment), `${X:+w}` `${X+w}`, `${X:?w}` `${X?w}`, `${X#p}` `${X##p}` `${X%p}`
`${X%%p}` (fnmatch patterns), `${X/p/r}` `${X//p/r}`, `${X:off}` `${X:off:len}`.
Unknown plain names and forms we do not know stay as written; single-quoted text is
left alone. Not supported: arrays, `${!X}`, case modification, arithmetic.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from dagu.resolve.errors import ResolveError

__all__ = ["expand_parameters"]

_NAME_OR_DIGITS = r"[A-Za-z_][A-Za-z0-9_]*|\d+"
_BARE_VAR_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*|\d)")
_OPERATORS = (":-", ":=", ":+", ":?", "##", "%%", "//", "-", "=", "+", "?", "#", "%", "/", ":")


def expand_parameters(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand parameter forms in `text`; `lookup(name)` gives a value or None (unset).

    Raises:
        ResolveError: `${X:?msg}` with X unset or empty.
    """
    return _Parameters(lookup).expand(text)


class _Parameters:
    """One expansion: the lookup, and the recursion into words such as the `d` of `${X:-d}`."""

    def __init__(self, lookup: Callable[[str], str | None]):
        self.lookup = lookup

    def expand(self, text: str) -> str:
        """POSIX parameter expansion outside single quotes; unknown plain names stay."""
        out: list[str] = []
        i, n = 0, len(text)
        in_single = in_double = False
        while i < n:
            c = text[i]
            if c == "'" and not in_double and (in_single or text.find("'", i + 1) >= 0):
                in_single = not in_single
            elif c == '"' and not in_single and (in_double or text.find('"', i + 1) >= 0):
                in_double = not in_double
            elif c == "$" and not in_single:
                replaced, end = self._parameter(text, i)
                if end:
                    out.append(replaced)
                    i = end
                    continue
            out.append(c)
            i += 1
        return "".join(out)

    def _parameter(self, text: str, i: int) -> tuple[str, int]:
        if text.startswith("${", i):
            close = _matching_brace(text, i + 2)
            if close < 0:
                return "", 0
            value = self._braced(text[i + 2 : close])
            return (value, close + 1) if value is not None else ("", 0)
        m = _BARE_VAR_RE.match(text, i)
        if m:
            value = self.lookup(m.group(1))
            if value is not None:
                return value, m.end()
        return "", 0

    def _braced(self, inner: str) -> str | None:
        """Value of `${inner}`, or None to leave the text as written."""
        if inner.startswith("#"):
            m = re.fullmatch(_NAME_OR_DIGITS, inner[1:])
            return str(len(self.lookup(inner[1:]) or "")) if m else None
        m = re.match(_NAME_OR_DIGITS, inner)
        if not m:
            return None
        name, rest = m.group(0), inner[m.end() :]
        value = self.lookup(name)
        if not rest:
            return value
        op = next((o for o in _OPERATORS if rest.startswith(o)), None)
        if op is None:
            return None
        return self._operator(name, value, op, rest[len(op) :])

    def _operator(self, name: str, value: str | None, op: str, word: str) -> str | None:
        if op == ":":
            return _substring(value or "", word)
        if op in (":-", ":=", "-", "="):
            use_word = not value if op.startswith(":") else value is None
            return self.expand(word) if use_word else value
        if op in (":+", "+"):
            use_word = bool(value) if op == ":+" else value is not None
            return self.expand(word) if use_word else ""
        if op in (":?", "?"):
            if (not value) if op == ":?" else value is None:
                raise ResolveError(f"{name}: {self.expand(word) or 'parameter null or not set'}")
            return value
        if op in ("#", "##"):
            return _remove_prefix(value or "", self.expand(word), longest=op == "##")
        if op in ("%", "%%"):
            return _remove_suffix(value or "", self.expand(word), longest=op == "%%")
        find, repl = _split_replacement(word)
        return _replace(value or "", self.expand(find), self.expand(repl), every=op == "//")


def _matching_brace(text: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start`; -1 if none."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _substring(value: str, spec: str) -> str | None:
    offset, _, length = spec.partition(":")
    try:
        start = int(offset.strip() or "0")
        count = int(length.strip()) if length.strip() else None
    except ValueError:
        return None
    if start < 0:
        if -start > len(value):  # bash: an offset before the start gives nothing
            return ""
        start += len(value)
    if count is None:
        return value[start:]
    end = start + count if count >= 0 else len(value) + count
    return value[start:end] if end > start else ""


def _remove_prefix(value: str, pattern: str, *, longest: bool) -> str:
    cuts = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for k in cuts:
        if fnmatch.fnmatchcase(value[:k], pattern):
            return value[k:]
    return value


def _remove_suffix(value: str, pattern: str, *, longest: bool) -> str:
    starts = range(len(value) + 1) if longest else range(len(value), -1, -1)
    for k in starts:
        if fnmatch.fnmatchcase(value[k:], pattern):
            return value[:k]
    return value


def _split_replacement(word: str) -> tuple[str, str]:
    """`pattern/replacement` split at the first `/` outside a `[...]` class."""
    in_class = False
    for i, c in enumerate(word):
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            return word[:i], word[i + 1 :]
    return word, ""


def _replace(value: str, pattern: str, replacement: str, *, every: bool) -> str:
    """`${X/p/r}` and `${X//p/r}`: the longest match at the leftmost position."""
    if not pattern:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        end = next((j for j in range(len(value), i, -1) if fnmatch.fnmatchcase(value[i:j], pattern)), None)
        if end is None:
            out.append(value[i])
            i += 1
            continue
        out.append(replacement)
        i = end
        if not every:
            out.append(value[i:])
            return "".join(out)
    return "".join(out)
