"""The extract side of every source: plain-Python readers that yield raw records in pages.

No Dagster here. Each reader yields ``list[dict]`` pages (bounded in size) of records exactly
as the source returns them; validation and loading happen downstream.
"""
