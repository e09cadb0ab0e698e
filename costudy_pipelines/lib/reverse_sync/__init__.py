"""Reverse sync, website → platform (SPEC §4): plain Python, no Dagster.

    website = pg.connect(website_url, source="WEBSITE_DB_URL", autocommit=True, utc=True)
    platform = pg.connect(platform_url, source="PLATFORM_DB_URL", autocommit=True, utc=True)
    with website, platform:
        report = sync_event_type(event_type("demo_requests"), website, platform,
                                 SyncOptions(strategy="direct", dry_run=False))
        drift = find_discrepancies(event_type("demo_requests"), website, platform)

Modules: events (the four event types and their mappings), website (reads), tracking
(the platform's bookkeeping), direct and api (the two write strategies), sync (one run),
discrepancies (what the platform does not reflect), triggers (the sensor's cursor), webhook
(the signed-push receiver), config (the strategy per event type).
"""

from costudy_pipelines.lib.reverse_sync.api import (
    ApiSettings,
    PlatformApiClient,
    PlatformApiError,
    idempotency_key,
)
from costudy_pipelines.lib.reverse_sync.config import STRATEGY_VAR, strategies_from_env
from costudy_pipelines.lib.reverse_sync.discrepancies import DiscrepancyReport, find_discrepancies
from costudy_pipelines.lib.reverse_sync.events import EVENT_TYPES, EventType, Strategy, event_type
from costudy_pipelines.lib.reverse_sync.sync import (
    DeadLetter,
    SyncOptions,
    SyncReport,
    sync_event_type,
)
from costudy_pipelines.lib.reverse_sync.triggers import SensorCursor, Trigger, find_triggers

__all__ = [
    "EVENT_TYPES",
    "STRATEGY_VAR",
    "ApiSettings",
    "DeadLetter",
    "DiscrepancyReport",
    "EventType",
    "PlatformApiClient",
    "PlatformApiError",
    "SensorCursor",
    "Strategy",
    "SyncOptions",
    "SyncReport",
    "Trigger",
    "event_type",
    "find_discrepancies",
    "find_triggers",
    "idempotency_key",
    "strategies_from_env",
    "sync_event_type",
]
