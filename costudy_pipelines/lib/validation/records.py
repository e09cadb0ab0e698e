"""What validation hands the loader: a typed record, or a reject with its reason."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self

from pydantic import TypeAdapter, ValidationError

from costudy_pipelines.lib.validation.emails import InvalidEmail, normalise_email
from costudy_pipelines.lib.validation.types import (
    DEFAULT_AMOUNT_BOUNDS,
    AmountBounds,
    RecordRejected,
    id_text,
)

RawRecord = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    """A typed column of a source table: its name and PostgreSQL type."""

    name: str
    sql_type: str


@dataclass(slots=True)
class ValidRecord:
    """A record that passed validation, ready to load.

    `key` is the source's external id (None for sources identified by row hash, which the
    loader computes from the raw record). `values` follow the validator's `columns`.
    Not frozen: one is made per record, and a frozen dataclass's __init__ costs three times
    as much (object.__setattr__ per field).
    """

    key: str | None
    email: str
    email_raw: str
    name: str | None
    username: str | None
    observed_at: datetime | None
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that failed validation: why, and the record itself, untouched."""

    reason: str
    raw: RawRecord
    key: str | None = None


class RecordValidator(Protocol):
    """Turns one raw source record into a ValidRecord, or raises (RecordRejected, ValueError)."""

    @property
    def columns(self) -> tuple[Column, ...]:
        """The typed columns `ValidRecord.values` follow (read-only: a class constant suffices)."""
        ...

    def __call__(self, raw: RawRecord) -> ValidRecord: ...

    def key(self, raw: RawRecord) -> str | None:
        """The record's identity read leniently, even from an invalid record (None if absent)."""
        ...


def valid_record(
    key: str | None,
    raw_email: Any,
    values: tuple[Any, ...],
    *,
    name: str | None = None,
    username: str | None = None,
    observed_at: datetime | None = None,
) -> ValidRecord:
    """The loader's record; rejects a record whose email cannot identify a person."""
    try:
        email = normalise_email(raw_email)
    except InvalidEmail as exc:
        raise RecordRejected(f"{exc}; cannot tie the record to a person") from None
    return ValidRecord(key, email, raw_email, name or None, username or None, observed_at, values)


class SchemaValidator:
    """A RecordValidator: pydantic checks the record against `schema`, `build` reads it.

    Schemas are TypedDicts named by the source's own keys: pydantic validates them in Rust
    about four times faster than BaseModel instances (no object per record), which matters
    at a million records. Subclasses set `schema`, `columns`, and implement `build`.
    """

    schema: ClassVar[type]
    columns: ClassVar[tuple[Column, ...]]
    id_field: ClassVar[str | None] = "id"
    _adapters: ClassVar[dict[type, TypeAdapter]] = {}

    def __init__(self, *, amount_bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS) -> None:
        self.amount_bounds = amount_bounds
        adapter = self._adapters.get(self.schema)
        if adapter is None:
            adapter = self._adapters[self.schema] = TypeAdapter(self.schema)
        # pydantic-core's validator itself: TypeAdapter.validate_python adds ~1 µs a record
        self._validate = adapter.validator.validate_python
        self.context: dict[str, Any] | None = None

    def __call__(self, raw: RawRecord) -> ValidRecord:
        return self.build(self._validate(raw, context=self.context))

    def with_amount_bounds(self, bounds: AmountBounds) -> Self:
        """This validator checking amounts against `bounds` (sources.toml's [sync] ones)."""
        bounded = copy.copy(self)
        bounded.amount_bounds = bounds
        return bounded

    def build(self, record: dict[str, Any]) -> ValidRecord:
        raise NotImplementedError

    def key(self, raw: RawRecord) -> str | None:
        """The id as the schema will read it (numbers as text, trimmed), without validating."""
        if self.id_field is None:
            return None
        value = id_text(raw.get(self.id_field))
        if isinstance(value, str):
            return value.strip() or None
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return str(value) if is_number else None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per failing field: where, what, and the offending value (shortened)."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "record"
        shown = repr(error.get("input"))
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{where}: {error['msg']} (got {shown})")
    return "; ".join(parts)


def validate(validator: RecordValidator, raw: RawRecord) -> ValidRecord | Reject:
    """Validate one record; never raises: any failure becomes a Reject with its reason."""
    try:
        return validator(raw)
    except ValidationError as exc:
        reason = describe_validation_error(exc)
    except (RecordRejected, InvalidEmail) as exc:
        reason = str(exc)
    except Exception as exc:  # a validator bug must not stop the batch: reject, count, replay later
        reason = f"validator error {type(exc).__name__}: {exc}"
    if not isinstance(raw, Mapping):
        return Reject(f"not a record (a {type(raw).__name__})", {"value": repr(raw)})
    try:
        key = validator.key(raw)
    except Exception:
        key = None
    return Reject(reason, raw, key)
