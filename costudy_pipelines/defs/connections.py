"""Plain psycopg connections to a resource's database, and metadata tables from plain rows:
what the finance, discrepancy and sync-health definitions share."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

import dagster as dg
import psycopg

# Dagster exports no public name for the values metadata takes as they are (int, str, dict,
# MetadataValue, ...); its own alias lives in a private module, imported here once.
from dagster._core.definitions.metadata import RawMetadataValue

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.crossdb import connect

# A metadata dict an asset or check builds before handing it to Dagster.
Metadata: TypeAlias = dict[str, RawMetadataValue]


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
