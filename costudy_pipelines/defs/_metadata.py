"""Metadata tables from plain rows: what the finance, discrepancy, count and sync-health
definitions share."""

import dagster as dg


def metadata_table(rows: list[dict], columns: dict[str, str]) -> dg.MetadataValue:
    """A metadata table; `columns` maps each column name to its Dagster type."""
    return dg.MetadataValue.table(
        [dg.TableRecord({name: row.get(name) for name in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()]),
    )
