"""Whop: what it syncs and how (plain Python; defs.py turns it into Dagster objects)."""

from types import MappingProxyType

from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.lib.validation.shape import FeedShape
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Api,
    Feed,
    NoCount,
    Schedule,
    Source,
)
from costudy_pipelines.sources.whop.records import (
    RESOLVED_KEY,
    WhopMembershipValidator,
    WhopPaymentValidator,
    WhopUserValidator,
)

NAME_RANK = 2  # SPEC §3.2: GoHighLevel's names win over Whop's, Whop's over the sheets'
# Whop's v1 cursor API reports no totals: there is no independent count per day.
NO_TOTALS = NoCount("Whop's v1 cursor API reports no totals to compare a day's rows with")


# The fields each feed reads, in the shapes of the pinned API version (whop-sdk 2.6.0's
# Payment, Membership, User): drift from them is reported by each feed's `shape_drift` check.
PAYMENT_SHAPE = FeedShape.of(
    id="string", created_at="string", status="string", currency="string",
    customer_email="string|null", user="object|null", membership_id="string|null",
    product_id="string|null", paid_at="string|null",
    # Money objects; an older release's floats are still read (records.py)
    total="number|object|null", usd_total="number|object|null",
    refunded_amount="number|object|null",
)  # fmt: skip
MEMBERSHIP_SHAPE = FeedShape.of(
    ignored=(RESOLVED_KEY,),  # the client's lookup, not Whop's
    id="string", created_at="string", status="string", user_id="string|null",
    product_id="string", plan_id="string", expires_at="string|null",
    current_period_end="string|null",
)  # fmt: skip
USER_SHAPE = FeedShape.of(
    ignored=(RESOLVED_KEY,),
    id="string", created_at="string", email="string|null", name="string|null",
    username="string",
)  # fmt: skip


def whop_payments() -> LoadSpec:
    return LoadSpec(
        "whop_payments", "whop_payments", WhopPaymentValidator(),
        window_column="occurred_at", shape=PAYMENT_SHAPE,
    )  # fmt: skip


def whop_memberships() -> LoadSpec:
    return LoadSpec(
        "whop_memberships", "whop_memberships", WhopMembershipValidator(),
        window_column="occurred_at", shape=MEMBERSHIP_SHAPE,
    )  # fmt: skip


def whop_users() -> LoadSpec:
    return LoadSpec(
        "whop_users", "whop_users", WhopUserValidator(),
        window_column="occurred_at", shape=USER_SHAPE,
    )  # fmt: skip


# Identity features beyond the name and username the validators read (people matching).
IDENTITY = {"whop_payments": {"phone": ("customer_phone",)}}


def feeds(settings: None) -> tuple[Feed, ...]:
    return tuple(
        Feed(
            spec,
            NO_TOTALS,
            f"Whop {spec.name.removeprefix('whop_')} created on the partition's day, upserted "
            f"into {spec.table}.",
            identity=IDENTITY.get(spec.name, {}),
        )
        for spec in (whop_payments(), whop_memberships(), whop_users())
    )


# The connection settings and the variables they are read from (the generic API builder).
API = Api(
    environment=MappingProxyType({"api_key": "WHOP_API_KEY", "base_url": "WHOP_API_URL"}),
    kinds=frozenset({"whop"}),
    pool="whop_api",
)

SOURCE = Source(
    name="whop",
    title="Whop",
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    api=API,
)
