"""The website database's assets (one per feed) and their checks."""

import dagster as dg

from costudy_pipelines.defs._database_sources import database_definitions
from costudy_pipelines.sources.registry import RegisteredSource
from costudy_pipelines.sources.website.spec import DATABASE, FEED_EXTRACTS


def build_defs(source: RegisteredSource) -> dg.Definitions:
    return database_definitions(source, FEED_EXTRACTS, DATABASE)
