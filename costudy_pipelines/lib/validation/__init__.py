"""Validation of raw source records: pydantic models that accept each source's real variants.

`validate(validator, raw)` returns a ValidRecord (normalised email, name, key, typed values)
or a Reject (reason, raw); it never raises, so one bad record never stops a batch.
"""

from costudy_pipelines.lib.validation.databases import (
    WEBSITE_EVENT_KINDS,
    CourseEnrollment,
    CourseOrder,
    PlatformUser,
    WebsitePersonValidator,
)
from costudy_pipelines.lib.validation.elective import ElectiveColumns, elective_row_validator
from costudy_pipelines.lib.validation.emails import InvalidEmail, normalise_email
from costudy_pipelines.lib.validation.ghl import GhlContact
from costudy_pipelines.lib.validation.records import (
    Column,
    ModelValidator,
    RawRecord,
    RecordRejected,
    RecordValidator,
    Reject,
    ValidRecord,
    validate,
)
from costudy_pipelines.lib.validation.sheets import SheetColumns, sheet_row_validator
from costudy_pipelines.lib.validation.whop import WhopMembership, WhopPayment, WhopUser

__all__ = [
    "WEBSITE_EVENT_KINDS",
    "Column",
    "CourseEnrollment",
    "CourseOrder",
    "ElectiveColumns",
    "GhlContact",
    "InvalidEmail",
    "ModelValidator",
    "PlatformUser",
    "RawRecord",
    "RecordRejected",
    "RecordValidator",
    "Reject",
    "SheetColumns",
    "ValidRecord",
    "WebsitePersonValidator",
    "WhopMembership",
    "WhopPayment",
    "WhopUser",
    "elective_row_validator",
    "normalise_email",
    "sheet_row_validator",
    "validate",
]
