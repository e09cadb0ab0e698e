"""The warehouse's sources: one SourceSpec factory per source record type.

Adding a source is a validator (costudy_pipelines.lib.validation), a table (sql/warehouse)
and one entry here.
"""

from __future__ import annotations

from types import MappingProxyType

from costudy_pipelines.lib.loading.spec import KeyKind, SourceSpec
from costudy_pipelines.lib.validation import (
    CourseEnrollmentValidator,
    CourseOrderValidator,
    ElectiveColumns,
    ElectiveRowValidator,
    GhlContactValidator,
    PlatformUserValidator,
    SheetColumns,
    SheetRowValidator,
    WebsitePersonValidator,
    WhopMembershipValidator,
    WhopPaymentValidator,
    WhopUserValidator,
)

# Every dated source keeps the time its extract filters on (Whop created_at, GoHighLevel
# dateAdded, the databases' created_at) in occurred_at: a day's extract covers that window.
CREATED = "occurred_at"


def whop_payments() -> SourceSpec:
    return SourceSpec(
        "whop_payments", "whop_payments", "whop", WhopPaymentValidator(), window_column=CREATED
    )


def whop_memberships() -> SourceSpec:
    return SourceSpec(
        "whop_memberships",
        "whop_memberships",
        "whop",
        WhopMembershipValidator(),
        window_column=CREATED,
    )


def whop_users() -> SourceSpec:
    return SourceSpec(
        "whop_users", "whop_users", "whop", WhopUserValidator(), window_column=CREATED
    )


def ghl_contacts() -> SourceSpec:
    return SourceSpec(
        "ghl_contacts", "ghl_contacts", "ghl", GhlContactValidator(), window_column=CREATED
    )


def sheet_rows(
    spreadsheet_id: str, worksheet: str, columns: SheetColumns | None = None
) -> SourceSpec:
    """One worksheet of one spreadsheet: its own scope of sheet_rows."""
    return SourceSpec(
        "sheet_rows",
        "sheet_rows",
        "sheet",
        SheetRowValidator(spreadsheet_id, worksheet, columns),
        key_kind=KeyKind.ROW_HASH,
        scope=MappingProxyType({"spreadsheet_id": spreadsheet_id, "worksheet": worksheet}),
    )


def elective_rows(columns: ElectiveColumns | None = None) -> SourceSpec:
    """All Elective exports of the folder together: overlapping exports collapse by row hash."""
    return SourceSpec(
        "elective_rows",
        "elective_rows",
        "elective",
        ElectiveRowValidator(columns),
        key_kind=KeyKind.ROW_HASH,
    )


def website_people(event_kind: str) -> SourceSpec:
    """People behind one kind of website event (demo_request, vote, ...)."""
    return SourceSpec(
        f"website_{event_kind}",
        "website_people",
        "website",
        WebsitePersonValidator(event_kind),
        scope=MappingProxyType({"event_kind": event_kind}),
        window_column=CREATED,
    )


def platform_users() -> SourceSpec:
    return SourceSpec(
        "platform_users",
        "platform_users",
        "platform",
        PlatformUserValidator(),
        window_column=CREATED,
    )


def course_orders() -> SourceSpec:
    return SourceSpec(
        "course_orders", "course_orders", "course", CourseOrderValidator(), window_column=CREATED
    )


def course_enrollments() -> SourceSpec:
    return SourceSpec(
        "course_enrollments",
        "course_enrollments",
        "course",
        CourseEnrollmentValidator(),
        window_column=CREATED,
    )
