"""Validation of raw source records: pydantic schemas that accept each source's real variants.

`validate(validator, raw)` returns a ValidRecord (normalised email, name, key, typed values)
or a Reject (reason, raw); it never raises, so one bad record never stops a batch.
"""

from costudy_pipelines.lib.validation.databases import (
    WEBSITE_EVENT_KINDS,
    CourseEnrollmentValidator,
    CourseOrderValidator,
    PlatformUserValidator,
    WebsitePersonValidator,
)
from costudy_pipelines.lib.validation.elective import ElectiveColumns, ElectiveRowValidator
from costudy_pipelines.lib.validation.emails import InvalidEmail, normalise_email
from costudy_pipelines.lib.validation.ghl import GhlContactValidator
from costudy_pipelines.lib.validation.records import (
    Column,
    RawRecord,
    RecordValidator,
    Reject,
    SchemaValidator,
    ValidRecord,
    validate,
)
from costudy_pipelines.lib.validation.sheets import SheetColumns, SheetRowValidator
from costudy_pipelines.lib.validation.types import RecordRejected
from costudy_pipelines.lib.validation.whop import (
    WhopMembershipValidator,
    WhopPaymentValidator,
    WhopUserValidator,
)

__all__ = [
    "WEBSITE_EVENT_KINDS",
    "Column",
    "CourseEnrollmentValidator",
    "CourseOrderValidator",
    "ElectiveColumns",
    "ElectiveRowValidator",
    "GhlContactValidator",
    "InvalidEmail",
    "PlatformUserValidator",
    "RawRecord",
    "RecordRejected",
    "RecordValidator",
    "Reject",
    "SchemaValidator",
    "SheetColumns",
    "SheetRowValidator",
    "ValidRecord",
    "WebsitePersonValidator",
    "WhopMembershipValidator",
    "WhopPaymentValidator",
    "WhopUserValidator",
    "normalise_email",
    "validate",
]
