"""Names derived from step outputs and sub-DAG calls: `outputs.json` keys and the
deterministic child run ID (dag-spec 3.7, 3.15). Capturing output is the actors' job."""

from __future__ import annotations

import hashlib

__all__ = ["output_key", "sub_dag_run_id", "base58_encode"]

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # Bitcoin's


def output_key(name: str, key: str | None = None) -> str:
    """Key in `outputs.json`: `key` when given, else camelCase of `name` (RESULT_URL -> resultUrl).

    Every word is lower-cased first, as 1.30 does, so `myVar` becomes `myvar`.
    """
    if key:
        return key
    words = [w.lower() for w in name.lstrip("$").split("_") if w]
    if not words:
        return ""
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])


def sub_dag_run_id(parent_run_id: str, step_name: str, params: str) -> str:
    """Child run ID: base58 of sha256(`parent:step:params`), stable across retries."""
    digest = hashlib.sha256(f"{parent_run_id}:{step_name}:{params}".encode()).digest()
    return base58_encode(digest)


def base58_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58; each leading zero byte becomes a leading "1"."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))
