"""Metadata dicts, typed, and metadata tables from plain rows: what the finance, discrepancy,
count and sync-health definitions share."""

from typing import TypeAlias

import dagster as dg

# Dagster exports no public name for the values metadata takes as they are (int, str, dict,
# MetadataValue, ...); its own alias lives in a private module, imported here once.
from dagster._core.definitions.metadata import RawMetadataValue

from costudy_pipelines.lib.svg_charts import charts_folder, write_chart

# A metadata dict an asset or check builds before handing it to Dagster.
Metadata: TypeAlias = dict[str, RawMetadataValue]


def metadata_table(rows: list[dict], columns: dict[str, str]) -> dg.MetadataValue:
    """A metadata table; `columns` maps each column name to its Dagster type."""
    return dg.MetadataValue.table(
        [dg.TableRecord({name: row.get(name) for name in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()]),
    )


def chart_metadata(name: str, svg: str) -> Metadata:
    """Write the chart to `<COSTUDY_ARTIFACTS>/charts/<name>.svg` and link to it: its path, and
    a file:// link to open it in a browser (the UI cannot show an SVG inline, see
    lib/svg_charts.py)."""
    path = write_chart(charts_folder(), name, svg)
    return {name: dg.MetadataValue.url(path.as_uri()), f"{name}_path": dg.MetadataValue.path(path)}


def never_materialized() -> dg.AssetCheckResult:
    """A check's answer for an asset never materialized: a WARN, since nothing to compare is
    never a pass."""
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"skipped": "the asset has never been materialized: nothing to check"},
    )
