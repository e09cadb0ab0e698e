"""TEMPLATE: a source of contacts read by day from a cursor-paged JSON API.

Copy this folder to costudy_pipelines/sources/<name>/, add `[sources.<name>]` to sources.toml
and its warehouse table (sql/warehouse/NNN-<name>.sql, the shape of table.sql here); the
source names itself after its folder. README.md, "Adding a source", walks through it.
"""
