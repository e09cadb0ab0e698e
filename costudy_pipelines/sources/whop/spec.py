"""Whop: what it syncs and how (plain Python; defs.py turns it into Dagster objects)."""

from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Feed,
    NoCount,
    Schedule,
    Source,
)
from costudy_pipelines.sources.whop.records import (
    WhopMembershipValidator,
    WhopPaymentValidator,
    WhopUserValidator,
)

FAMILY = "whop"
NAME_RANK = 2  # SPEC §3.2: GoHighLevel's names win over Whop's, Whop's over the sheets'
# Whop's v1 cursor API reports no totals: there is no independent count per day.
NO_TOTALS = NoCount("Whop's v1 cursor API reports no totals to compare a day's rows with")


def whop_payments() -> LoadSpec:
    return LoadSpec(
        "whop_payments", "whop_payments", FAMILY, WhopPaymentValidator(), NAME_RANK,
        window_column="occurred_at",
    )  # fmt: skip


def whop_memberships() -> LoadSpec:
    return LoadSpec(
        "whop_memberships", "whop_memberships", FAMILY, WhopMembershipValidator(), NAME_RANK,
        window_column="occurred_at",
    )  # fmt: skip


def whop_users() -> LoadSpec:
    return LoadSpec(
        "whop_users", "whop_users", FAMILY, WhopUserValidator(), NAME_RANK,
        window_column="occurred_at",
    )  # fmt: skip


# Identity features beyond the name and username the validators read (people matching).
IDENTITY = {"whop_payments": {"phone": ("customer_phone",)}}


def feeds(settings: None) -> tuple[Feed, ...]:
    return tuple(
        Feed(
            spec.name,
            spec,
            NO_TOTALS,
            f"Whop {spec.name.removeprefix('whop_')} created on the partition's day, upserted "
            f"into {spec.table}.",
            identity=IDENTITY.get(spec.name, {}),
        )
        for spec in (whop_payments(), whop_memberships(), whop_users())
    )


SOURCE = Source(
    name="whop",
    title="Whop",
    family=FAMILY,
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
)
