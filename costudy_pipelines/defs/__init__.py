"""Dagster objects only. Every module here exposes `defs`; definitions.py merges them all."""
