"""What validation hands the loader: a typed record, or a reject with its reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from costudy_pipelines.lib.validation.emails import InvalidEmail, normalise_email
from costudy_pipelines.lib.validation.types import SOURCE_MODEL_CONFIG, RecordRejected

RawRecord = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    """A typed column of a source table: its name and PostgreSQL type."""

    name: str
    sql_type: str


@dataclass(frozen=True, slots=True)
class ValidRecord:
    """A record that passed validation, ready to load.

    `key` is the source's external id (None for sources identified by row hash, which the
    loader computes from the raw record). `values` follow the validator's `columns`.
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

    columns: tuple[Column, ...]

    def __call__(self, raw: RawRecord) -> ValidRecord: ...

    def key(self, raw: RawRecord) -> str | None:
        """The record's identity read leniently, even from an invalid record (None if absent)."""
        ...


class SourceModel(BaseModel):
    """A pydantic model of one source record type.

    Subclasses declare COLUMNS (typed columns of their table, read from attributes of the same
    name) and provide the person: `email_value`, `display_name`, `user_name`, `observed_at`.
    """

    model_config = SOURCE_MODEL_CONFIG

    COLUMNS: ClassVar[tuple[Column, ...]] = ()

    @property
    def record_key(self) -> str | None:
        return None

    @property
    def email_value(self) -> Any:
        return None

    @property
    def display_name(self) -> str | None:
        return None

    @property
    def user_name(self) -> str | None:
        return None

    @property
    def observed_at(self) -> datetime | None:
        return None


def values_getter(columns: tuple[Column, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """Reads the typed column values off a model in one call (attrgetter is C-fast)."""
    names = [column.name for column in columns]
    if not names:
        return lambda _model: ()
    getter = attrgetter(*names)
    if len(names) == 1:
        return lambda model: (getter(model),)
    return getter


def to_valid_record(model: SourceModel, values: Callable[[Any], tuple[Any, ...]]) -> ValidRecord:
    """The person and typed values of a validated model; rejects a record without usable email."""
    raw_email = model.email_value
    try:
        email = normalise_email(raw_email)
    except InvalidEmail as exc:
        raise RecordRejected(f"{exc}; cannot tie the record to a person") from None
    return ValidRecord(
        key=model.record_key,
        email=email,
        email_raw=raw_email,
        name=model.display_name,
        username=model.user_name,
        observed_at=model.observed_at,
        values=values(model),
    )


class ModelValidator:
    """A RecordValidator backed by a SourceModel; `id_field` names the raw identity field."""

    def __init__(self, model: type[SourceModel], id_field: str | None = "id") -> None:
        self.model = model
        self.columns = model.COLUMNS
        self.id_field = id_field
        self._values = values_getter(model.COLUMNS)

    def __call__(self, raw: RawRecord) -> ValidRecord:
        return to_valid_record(self.model.model_validate(raw), self._values)

    def key(self, raw: RawRecord) -> str | None:
        """The id as the model will read it (numbers as text, trimmed), without validating."""
        if self.id_field is None:
            return None
        value = raw.get(self.id_field)
        if isinstance(value, str):
            return value.strip() or None
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )


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
