"""Jobs an operator or the demo launches by name."""

import dagster as dg

# Everything the project can materialize, in dependency order: what `costudy demo` runs.
main_job = dg.define_asset_job(
    "main",
    selection=dg.AssetSelection.all(),
    description="Materialize every asset end to end.",
)

defs = dg.Definitions(jobs=[main_job])
