"""Validation of raw source records: what every source's validator is built from.

`validate(validator, raw)` returns a ValidRecord (normalised email, name, key, typed values)
or a Reject (reason, raw); it never raises, so one bad record never stops a batch. Each
source's own validators live in its folder (costudy_pipelines/sources/<name>/records.py).
"""

from costudy_pipelines.lib.validation.emails import InvalidEmail, normalise_email
from costudy_pipelines.lib.validation.records import (
    Column,
    RawRecord,
    RecordValidator,
    Reject,
    SchemaValidator,
    ValidRecord,
    validate,
)
from costudy_pipelines.lib.validation.types import RecordRejected

__all__ = [
    "Column",
    "InvalidEmail",
    "RawRecord",
    "RecordRejected",
    "RecordValidator",
    "Reject",
    "SchemaValidator",
    "ValidRecord",
    "normalise_email",
    "validate",
]
