"""Whop payments, memberships and users across API generations (v1 current, v2, v5).

v2 timestamps are Unix seconds, v1 ISO-8601; v1 money is a float or a Money object; the
payer's email is under user.email (v1, or v2 with expand=user), customer_email (v1),
user_email (v5) or email (memberships); references are ids or expanded objects.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, Field

from costudy_pipelines.lib.validation.records import Column, SourceModel
from costudy_pipelines.lib.validation.types import (
    SOURCE_MODEL_CONFIG,
    ExternalId,
    Money,
    OptionalTimestamp,
    RefId,
    Timestamp,
    join_name,
    money_amount,
    ref_id,
)


class WhopUserRef(BaseModel):
    """An expanded user object inside a payment or membership."""

    model_config = SOURCE_MODEL_CONFIG

    id: str | None = None
    email: str | None = None
    name: str | None = None
    username: str | None = None


class _WhopOwned(SourceModel):
    """Fields every Whop record that belongs to a user shares."""

    id: ExternalId
    user: WhopUserRef | str | None = None
    user_id: str | None = None
    email: str | None = None
    user_email: str | None = None
    customer_email: str | None = None
    status: str | None = None
    product: RefId = None
    product_id_v5: str | None = Field(default=None, alias="product_id")
    created_at: Timestamp

    @property
    def record_key(self) -> str:
        return self.id

    # `a or b or None` rather than a helper: these run for every record of the hottest sources.
    @property
    def email_value(self) -> str | None:
        user = self.user
        nested = user.email if isinstance(user, WhopUserRef) else None
        return nested or self.customer_email or self.user_email or self.email or None

    @property
    def whop_user_id(self) -> str | None:
        user = self.user
        return (user.id if isinstance(user, WhopUserRef) else user) or self.user_id or None

    @property
    def product_id(self) -> str | None:
        return ref_id(self.product) or self.product_id_v5 or None

    @property
    def occurred_at(self) -> datetime:
        return self.created_at

    @property
    def observed_at(self) -> datetime:
        return self.created_at

    @property
    def display_name(self) -> str | None:
        user = self.user
        return (user.name or None) if isinstance(user, WhopUserRef) else None

    @property
    def user_name(self) -> str | None:
        user = self.user
        return (user.username or None) if isinstance(user, WhopUserRef) else None


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
    membership_id_v5: str | None = Field(default=None, alias="membership_id")
    currency_code: str | None = Field(default=None, alias="currency")
    usd_total: Money = None
    total: Money = None
    final_amount: Money = None
    refunded: Money = Field(default=None, alias="refunded_amount")
    paid_at: OptionalTimestamp = None
    billing_first_name: str | None = None
    billing_last_name: str | None = None

    @property
    def membership_id(self) -> str | None:
        return ref_id(self.membership) or self.membership_id_v5 or None

    @property
    def currency(self) -> str | None:
        return self.currency_code.lower() if self.currency_code else None

    @property
    def amount(self) -> Decimal | None:
        """What the payer was charged, in the payment's currency (v2/v5 final_amount, v1 total)."""
        final = money_amount(self.final_amount, "final_amount")
        return final if final is not None else money_amount(self.total, "total")

    @property
    def amount_usd(self) -> Decimal | None:
        usd = money_amount(self.usd_total, "usd_total")
        if usd is not None:
            return usd
        return self.amount if self.currency == "usd" else None

    @property
    def refunded_amount(self) -> Decimal | None:
        return money_amount(self.refunded, "refunded_amount")

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
    plan_id_v5: str | None = Field(default=None, alias="plan_id")
    expires: OptionalTimestamp = Field(default=None, alias="expires_at")
    renewal_period_end: OptionalTimestamp = None

    @property
    def plan_id(self) -> str | None:
        return ref_id(self.plan) or self.plan_id_v5 or None

    @property
    def expires_at(self) -> datetime | None:
        return self.expires or self.renewal_period_end


class WhopUser(SourceModel):
    COLUMNS: ClassVar = (Column("username", "text"), Column("occurred_at", "timestamptz"))

    id: ExternalId
    email: str | None = None
    name: str | None = None
    username: str | None = None
    created_at: OptionalTimestamp = None

    @property
    def record_key(self) -> str:
        return self.id

    @property
    def email_value(self) -> str | None:
        return self.email

    @property
    def display_name(self) -> str | None:
        return self.name or None

    @property
    def user_name(self) -> str | None:
        return self.username or None

    @property
    def occurred_at(self) -> datetime | None:
        return self.created_at

    @property
    def observed_at(self) -> datetime | None:
        return self.created_at
