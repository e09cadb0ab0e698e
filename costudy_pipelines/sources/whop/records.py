"""Whop payments, memberships and users across API generations (v1 current, v2, v5).

The shape read in production is v1 at the version the client pins (`WHOP_API_VERSION`): flat
`*_id` references, Money objects, the payer's email in `customer_email` and an embedded user
without one. The older shapes are still read (a key pinned to an older version answers in
them): v2 timestamps are Unix seconds, v1 ISO-8601; money a float or a Money object (any
other shape, and an amount beyond the validator's bounds, is a reject with the reason); the
payer's email under user.email (older v1, or v2 with expand=user), customer_email (v1),
user_email (v5) or email (memberships); references ids or expanded objects.

A 2.6.0 membership has no address: the client adds its buyer's, from the members endpoint,
under `RESOLVED_KEY` (`{"member_email", "member_user_id"}`); validation reads it there first.
"""

from __future__ import annotations

from typing import Any, Required

from typing_extensions import TypedDict

from costudy_pipelines.lib.validation.records import (
    Column,
    SchemaValidator,
    ValidRecord,
    valid_record,
)
from costudy_pipelines.lib.validation.types import (
    ExternalId,
    Money,
    OptionalTimestamp,
    RefId,
    Timestamp,
    join_name,
    money_amount,
    ref_id,
    source_schema,
)

# What the client adds to a record Whop sent (never a Whop field: Whop's keys never start "_").
RESOLVED_KEY = "_costudy"


@source_schema
class WhopResolved(TypedDict, total=False):
    """What the client looked up for a record: its buyer's address on their member record."""

    member_email: str | None
    member_user_id: str | None


@source_schema
class WhopUserRef(TypedDict, total=False):
    """An expanded user object inside a payment or membership."""

    id: str | None
    email: str | None
    name: str | None
    username: str | None


@source_schema
class WhopOwned(TypedDict, total=False):
    """Fields every Whop record that belongs to a user shares."""

    id: Required[ExternalId]
    created_at: Required[Timestamp]
    user: WhopUserRef | str | None
    user_id: str | None
    email: str | None
    user_email: str | None
    customer_email: str | None
    status: str | None
    product: RefId
    product_id: str | None


@source_schema
class WhopPaymentSchema(WhopOwned, total=False):
    membership: RefId
    membership_id: str | None
    currency: str | None
    usd_total: Money
    total: Money
    final_amount: Money
    refunded_amount: Money
    paid_at: OptionalTimestamp
    billing_first_name: str | None
    billing_last_name: str | None


@source_schema
class WhopMembershipSchema(WhopOwned, total=False):
    plan: RefId
    plan_id: str | None
    expires_at: OptionalTimestamp
    current_period_end: OptionalTimestamp
    renewal_period_end: OptionalTimestamp
    _costudy: WhopResolved


@source_schema
class WhopUserSchema(TypedDict, total=False):
    id: Required[ExternalId]
    email: str | None
    name: str | None
    username: str | None
    created_at: OptionalTimestamp
    _costudy: WhopResolved


_NO_USER: dict[str, Any] = {}


def _owner(record: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """The expanded user (or {}), the payer's email, and the Whop user id."""
    user = record.get("user")
    expanded = user if isinstance(user, dict) else _NO_USER
    email = (
        expanded.get("email")
        or record.get("customer_email")
        or record.get("user_email")
        or record.get("email")
    )
    user_id = (expanded.get("id") if expanded else user) or record.get("user_id")
    return expanded, email, user_id


class WhopPaymentValidator(SchemaValidator):
    schema = WhopPaymentSchema
    columns = (
        Column("whop_user_id", "text"),
        Column("membership_id", "text"),
        Column("product_id", "text"),
        Column("status", "text"),
        Column("currency", "text"),
        Column("amount", "numeric"),
        Column("amount_usd", "numeric"),
        Column("refunded_amount", "numeric"),
        Column("occurred_at", "timestamptz"),
        Column("paid_at", "timestamptz"),
    )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        user, email, user_id = _owner(record)
        currency = (record.get("currency") or "").lower() or None
        # what the payer was charged, in the payment's currency (v2/v5 final_amount, v1 total)
        bounds = self.amount_bounds
        amount = money_amount(record.get("final_amount"), "final_amount", bounds)
        if amount is None:
            amount = money_amount(record.get("total"), "total", bounds)
        amount_usd = money_amount(record.get("usd_total"), "usd_total", bounds)
        if amount_usd is None and currency == "usd":
            amount_usd = amount
        created = record["created_at"]
        values = (
            user_id,
            ref_id(record.get("membership")) or record.get("membership_id"),
            ref_id(record.get("product")) or record.get("product_id"),
            record.get("status"),
            currency,
            amount,
            amount_usd,
            money_amount(record.get("refunded_amount"), "refunded_amount", bounds),
            created,
            record.get("paid_at"),
        )
        name = user.get("name") or join_name(
            record.get("billing_first_name"), record.get("billing_last_name")
        )
        return valid_record(
            record["id"], email, values, name=name, username=user.get("username"),
            observed_at=created,
        )  # fmt: skip


class WhopMembershipValidator(SchemaValidator):
    schema = WhopMembershipSchema
    columns = (
        Column("whop_user_id", "text"),
        Column("product_id", "text"),
        Column("plan_id", "text"),
        Column("status", "text"),
        Column("occurred_at", "timestamptz"),
        Column("expires_at", "timestamptz"),
    )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        user, email, user_id = _owner(record)
        resolved = record.get(RESOLVED_KEY) or {}
        email = resolved.get("member_email") or email
        created = record["created_at"]
        values = (
            user_id,
            record.get("product_id") or ref_id(record.get("product")),
            record.get("plan_id") or ref_id(record.get("plan")),
            record.get("status"),
            created,
            record.get("expires_at")
            or record.get("current_period_end")
            or record.get("renewal_period_end"),
        )
        return valid_record(
            record["id"], email, values, name=user.get("name"), username=user.get("username"),
            observed_at=created,
        )  # fmt: skip


class WhopUserValidator(SchemaValidator):
    schema = WhopUserSchema
    columns = (Column("username", "text"), Column("occurred_at", "timestamptz"))

    def build(self, record: dict[str, Any]) -> ValidRecord:
        created = record.get("created_at")
        username = record.get("username")
        email = record.get("email") or (record.get(RESOLVED_KEY) or {}).get("member_email")
        return valid_record(
            record["id"], email, (username, created), name=record.get("name"),
            username=username, observed_at=created,
        )  # fmt: skip
