"""GoHighLevel: what it syncs and how (plain Python; defs.py turns it into Dagster objects)."""

from types import MappingProxyType

from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.lib.validation.shape import FeedShape
from costudy_pipelines.sources.ghl.records import GhlContactValidator
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Api,
    Feed,
    ReportedCount,
    Schedule,
    Source,
)

NAME_RANK = 1  # SPEC §3.2: GoHighLevel's names win


# The fields the contacts feed reads (records.py), as LeadConnector v2 sends them: drift from
# them is reported by the feed's shape_drift check.
CONTACT_SHAPE = FeedShape.of(
    id="string", locationId="string", email="string|null", firstName="string|null",
    lastName="string|null", name="string|null", contactName="string|null",
    phone="string|null", tags="array|null", source="string|null", dateAdded="string",
    dateUpdated="string|null",
)  # fmt: skip


def ghl_contacts() -> LoadSpec:
    return LoadSpec(
        "ghl_contacts", "ghl_contacts", GhlContactValidator(),
        window_column="occurred_at", shape=CONTACT_SHAPE,
    )  # fmt: skip


def feeds(settings: None) -> tuple[Feed, ...]:
    return (
        Feed(
            ghl_contacts(),
            ReportedCount(),  # the search API's total per day, summed over the locations
            "Contacts added on the partition's day, in every location, into ghl_contacts.",
            identity={
                "phone": ("phone",),
                "birth_date": ("dateOfBirth",),
                "city": ("city",),
                "postcode": ("postalCode",),
                "address": ("address1",),
            },
        ),
    )


# The connection settings and the variables they are read from (the generic API builder):
# GHL_LOCATION_IDS is a comma-separated list of location ids.
API = Api(
    environment=MappingProxyType(
        {"token": "GHL_TOKEN", "location_ids": "GHL_LOCATION_IDS", "base_url": "GHL_API_URL"}
    ),
    kinds=frozenset({"gohighlevel"}),
    pool="ghl_api",
)

SOURCE = Source(
    name="ghl",
    title="GoHighLevel",
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    api=API,
)
