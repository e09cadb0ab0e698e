"""Plain psycopg connections to a resource's database, and metadata tables from plain rows:
what the finance, discrepancy and sync-health definitions share."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.crossdb import connect


@contextmanager
def database(resource: PostgresResource) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg connection (COPY, temp tables, own transactions); connection
    errors name the resource's variable, never its password."""
    with connect(resource.url, source=resource.env_var) as conn:
        yield conn


def metadata_table(rows: list[dict], columns: dict[str, str]) -> dg.MetadataValue:
    """A metadata table; `columns` maps each column name to its Dagster type."""
    return dg.MetadataValue.table(
        [dg.TableRecord({name: row.get(name) for name in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()]),
    )
