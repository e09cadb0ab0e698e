"""Every source of the world, in the order dumps and fingerprints walk them."""

from __future__ import annotations

from costudy_pipelines.sandbox.generators import (
    course,
    elective,
    ghl,
    platform,
    sheets,
    website,
    whop,
)
from costudy_pipelines.sandbox.generators.base import RecordGenerator

SPECS: tuple[RecordGenerator, ...] = (
    whop.USERS,
    whop.MEMBERSHIPS,
    whop.PAYMENTS,
    ghl.CONTACTS,
    sheets.ROWS,
    elective.ROWS,
    *website.SPECS,
    *course.SPECS,
    platform.USERS,
)
SPEC_BY_NAME: dict[str, RecordGenerator] = {spec.name: spec for spec in SPECS}
SOURCE_NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)

API_SOURCES = ("whop_users", "whop_memberships", "whop_payments", "ghl_contacts")
WEBSITE_TABLES = tuple(website.COLUMNS)
COURSE_TABLES = ("courses", "coupons", "enrollments", "orders", "order_items")  # FK order
# The sources the warehouse's `users` table is built from (the platform is a sync target).
PEOPLE_SOURCES = tuple(name for name in SOURCE_NAMES if SPEC_BY_NAME[name].email is not None)
