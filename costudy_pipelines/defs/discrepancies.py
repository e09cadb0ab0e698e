"""Discrepancies between the platform database and the warehouse, as checks on `platform_users`
(the warehouse's copy of the platform's people), all from one comparison in SQL
(lib/discrepancies): the platform's people are streamed into the warehouse by COPY and
compared there, so a million people never pass through Python.

Checks (WARN: the next sync usually heals them; the metadata says who to look at):
- platform_people_in_warehouse: every platform user has a live warehouse row;
- warehouse_people_in_platform: every live warehouse row still exists in the platform;
- platform_emails_agree / platform_names_agree: same normalised email, same name.
Each records the count and up to 20 sample platform user ids.
"""

import dagster as dg

from costudy_pipelines.lib.crossdb import Found
from costudy_pipelines.lib.discrepancies import PLATFORM_PEOPLE, compare_people

ASSET = dg.AssetKey("platform_users")
CHECKS = {
    "platform_people_in_warehouse": (
        "missing_in_warehouse",
        "Every user of the platform database has a live row in the warehouse.",
    ),
    "warehouse_people_in_platform": (
        "missing_in_application",
        "Every live warehouse row of a platform user still exists in the platform database.",
    ),
    "platform_emails_agree": (
        "emails_differ",
        "Platform and warehouse hold the same normalised email for each platform user.",
    ),
    "platform_names_agree": (
        "names_differ",
        "Platform and warehouse hold the same name for each platform user (compared as md5).",
    ),
}


def _result(name: str, found: Found, compared: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=ASSET,
        passed=found.count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "count": found.count,
            "sample_ids": ", ".join(found.sample) or "none",
            "platform_people": compared,
        },
    )


@dg.multi_asset_check(
    name="platform_warehouse_people",
    specs=[
        dg.AssetCheckSpec(name, asset=ASSET, description=description)
        for name, (_, description) in CHECKS.items()
    ],
    required_resource_keys={"platform_db", "warehouse_db"},
    description="The platform's people against the warehouse's copy, compared in SQL.",
)
def platform_warehouse_people(context: dg.AssetCheckExecutionContext):
    with (
        context.resources.platform_db.connect(autocommit=True) as platform,
        context.resources.warehouse_db.connect(autocommit=True) as warehouse,
    ):
        found = compare_people(platform, warehouse, PLATFORM_PEOPLE)
    for name, (field, _) in CHECKS.items():
        yield _result(name, getattr(found, field), found.compared)


defs = dg.Definitions(asset_checks=[platform_warehouse_people])
