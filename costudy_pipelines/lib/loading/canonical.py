"""Canonical JSON of a raw record (sorted keys, compact) and the SHA-256 hashes built on it.

The same record always gives the same bytes, whatever order its keys arrived in, so content
hashes, row hashes and reject fingerprints are stable across runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
# An escaped NUL that is not itself an escaped backslash followed by "u0000".
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Placeholder key for a rejected record that cannot be stored as JSON at all.
UNSTORABLE_KEY = "__costudy_unstorable_record__"


class UnstorableRecord(ValueError):
    """The record cannot be stored in PostgreSQL as it is (NUL, broken Unicode, huge number)."""


def _default(value: Any) -> Any:
    """Values the drivers hand over that JSON has no type for."""
    if isinstance(value, Decimal):
        return str(value)  # exact: never through float
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"cannot represent a {type(value).__name__} as JSON")


def canonical_json(raw: Any) -> bytes:
    """Sorted-key compact UTF-8 JSON; raises UnstorableRecord with the reason."""
    try:
        text = orjson.dumps(raw, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise UnstorableRecord(f"cannot store the record as JSON: {exc}") from None
        text = _stdlib_json(raw)  # integers beyond 64 bits: slow path, still exact
    if b"\\u0000" in text and _ESCAPED_NUL.search(text):
        raise UnstorableRecord("the record contains a NUL character, which PostgreSQL cannot store")
    return text


def _stdlib_json(raw: Any) -> bytes:
    try:
        return json.dumps(
            raw,
            default=_default,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise UnstorableRecord(f"cannot store the record as JSON: {exc}") from None


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def scope_prefix(scope: Mapping[str, str]) -> bytes:
    """Mixed into row hashes so equal rows of two sheets stay two rows."""
    return canonical_json(dict(scope)) + b"\n"


def storable_reject_json(raw: Any) -> bytes:
    """The JSON kept for a rejected record: canonical, or its repr when JSON cannot hold it."""
    try:
        return canonical_json(raw)
    except UnstorableRecord:
        return orjson.dumps({UNSTORABLE_KEY: repr(raw)[:100_000]})
