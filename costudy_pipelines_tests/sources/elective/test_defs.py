"""The Elective asset with the email header configured in its sources.toml entry: an export
whose email column is called `E-mail` is rejected for want of an email until the entry names
that header, then stored."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.sources.elective.defs import ElectiveDropResource, exports_asset
from costudy_pipelines.sources.elective.spec import ElectiveSettings
from costudy_pipelines.sources.registry import RegisteredSource, load_registry
from costudy_pipelines_tests.sources.elective.test_client import (
    ORDERS_HEADER,
    orders_row,
    write_csv,
)


def elective_source(settings: ElectiveSettings) -> RegisteredSource:
    registered = load_registry().source("elective")
    return registered.with_settings(settings)


def sync(folder: Path, warehouse_url: str, settings: ElectiveSettings) -> dict[str, int]:
    source = elective_source(settings)
    result = dg.materialize(
        [exports_asset(source, source.feeds[0])],
        resources={
            "elective": ElectiveDropResource(folder=str(folder), settle_seconds=0),
            "warehouse_db": PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL"),
        },
    )
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    return {name: int(metadata[name].value) for name in ("records_in", "inserted", "rejected")}


def test_an_email_header_named_in_the_entry_is_read(tmp_path: Path, warehouse_url: str) -> None:
    header = [*ORDERS_HEADER[:2], "E-mail", *ORDERS_HEADER[2:]]
    rows = [[*orders_row(n)[:2], f"buyer{n}@example.com", *orders_row(n)[2:]] for n in range(3)]
    write_csv(tmp_path / "orders.csv", header, rows)

    unknown = sync(tmp_path, warehouse_url, ElectiveSettings())
    assert unknown == {"records_in": 3, "inserted": 0, "rejected": 3}

    named = ElectiveSettings(email_headers=["E-mail"])
    assert sync(tmp_path, warehouse_url, named) == {"records_in": 3, "inserted": 3, "rejected": 0}
    with connect(warehouse_url, source="test", autocommit=True) as conn:
        emails = {row[0] for row in conn.execute("select email from elective_rows")}
    assert emails == {f"buyer{n}@example.com" for n in range(3)}
