"""Whop payments, memberships and users across API generations (v1 current, v2, v5).

v2 timestamps are Unix seconds, v1 ISO-8601; v1 money is a float or a Money object; the
payer's email is under user.email (v1, or v2 with expand=user), customer_email (v1),
user_email (v5) or email (memberships).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from costudy_pipelines.lib.validation.records import Column, SourceModel
from costudy_pipelines.lib.validation.types import (
    ExternalId,
    Money,
    OptionalTimestamp,
    RefId,
    Text,
    Timestamp,
    join_name,
)


class WhopUserRef(BaseModel):
    """An expanded user object inside a payment or membership."""

    model_config = ConfigDict(extra="ignore")

    id: Text = None
    email: Text = None
    name: Text = None
    username: Text = None


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value), None)


class _WhopOwned(SourceModel):
    """Fields every Whop record that belongs to a user shares."""

    id: ExternalId
    user: WhopUserRef | Text = None
    user_id: Text = None
    email: Text = None
    user_email: Text = None
    customer_email: Text = None
    status: Text = None
    product: RefId = None
    product_id_v5: Text = Field(default=None, alias="product_id")
    created_at: Timestamp

    @property
    def record_key(self) -> str:
        return self.id

    @property
    def _user_ref(self) -> WhopUserRef | None:
        return self.user if isinstance(self.user, WhopUserRef) else None

    @property
    def email_value(self) -> str | None:
        ref = self._user_ref
        return _first(ref.email if ref else None, self.customer_email, self.user_email, self.email)

    @property
    def whop_user_id(self) -> str | None:
        ref = self._user_ref
        return _first(ref.id if ref else self.user, self.user_id)

    @property
    def product_id(self) -> str | None:
        return _first(self.product, self.product_id_v5)

    @property
    def occurred_at(self) -> datetime:
        return self.created_at

    @property
    def observed_at(self) -> datetime:
        return self.created_at

    @property
    def display_name(self) -> str | None:
        ref = self._user_ref
        return ref.name if ref else None

    @property
    def user_name(self) -> str | None:
        ref = self._user_ref
        return ref.username if ref else None


class WhopPayment(_WhopOwned):
    COLUMNS: ClassVar = (
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

    membership: RefId = None
    membership_id_v5: Text = Field(default=None, alias="membership_id")
    currency_code: Text = Field(default=None, alias="currency")
    usd_total: Money = None
    total: Money = None
    final_amount: Money = None
    refunded_amount: Money = None
    paid_at: OptionalTimestamp = None
    billing_first_name: Text = None
    billing_last_name: Text = None

    @property
    def membership_id(self) -> str | None:
        return _first(self.membership, self.membership_id_v5)

    @property
    def currency(self) -> str | None:
        return self.currency_code.lower() if self.currency_code else None

    @property
    def amount(self) -> Decimal | None:
        """What the payer was charged, in the payment's currency (v2/v5 final_amount, v1 total)."""
        return self.final_amount if self.final_amount is not None else self.total

    @property
    def amount_usd(self) -> Decimal | None:
        if self.usd_total is not None:
            return self.usd_total
        return self.amount if self.currency == "usd" else None

    @property
    def display_name(self) -> str | None:
        return super().display_name or join_name(self.billing_first_name, self.billing_last_name)


class WhopMembership(_WhopOwned):
    COLUMNS: ClassVar = (
        Column("whop_user_id", "text"),
        Column("product_id", "text"),
        Column("plan_id", "text"),
        Column("status", "text"),
        Column("occurred_at", "timestamptz"),
        Column("expires_at", "timestamptz"),
    )

    plan: RefId = None
    plan_id_v5: Text = Field(default=None, alias="plan_id")
    expires_at_raw: OptionalTimestamp = Field(default=None, alias="expires_at")
    renewal_period_end: OptionalTimestamp = None

    @property
    def plan_id(self) -> str | None:
        return _first(self.plan, self.plan_id_v5)

    @property
    def expires_at(self) -> datetime | None:
        return self.expires_at_raw or self.renewal_period_end


class WhopUser(SourceModel):
    COLUMNS: ClassVar = (Column("username", "text"), Column("occurred_at", "timestamptz"))

    id: ExternalId
    email: Text = None
    name: Text = None
    username: Text = None
    created_at: OptionalTimestamp = None

    @property
    def record_key(self) -> str:
        return self.id

    @property
    def email_value(self) -> str | None:
        return self.email

    @property
    def display_name(self) -> str | None:
        return self.name

    @property
    def user_name(self) -> str | None:
        return self.username

    @property
    def occurred_at(self) -> datetime | None:
        return self.created_at

    @property
    def observed_at(self) -> datetime | None:
        return self.created_at
