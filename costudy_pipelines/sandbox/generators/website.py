"""Rows of the marketing website's database (schema: sandbox/sql/website.sql). Each dict has
exactly the table's columns; timestamps are timestamptz literals, `properties` is JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.draw import Draw
from costudy_pipelines.sandbox.generators.base import (
    Catalog,
    Record,
    RecordGenerator,
    Slot,
    by_id,
    email_row_spec,
    in_day,
    iso_db,
)
from costudy_pipelines.sandbox.people import email_variant

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

COLUMNS: dict[str, tuple[str, ...]] = {
    "votes": ("id", "email", "name", "feature_slug", "value", "content", "created_at",
              "updated_at"),
    "demo_requests": ("id", "email", "name", "company", "phone", "team_size", "status",
                      "content", "created_at", "updated_at"),
    "email_subscriptions": ("id", "email", "name", "list_name", "status", "source", "content",
                            "created_at", "updated_at"),
    "contact_submissions": ("id", "email", "name", "subject", "status", "content",
                            "created_at", "updated_at"),
    "analytics_events": ("id", "email", "name", "event_name", "path", "session_id",
                         "properties", "content", "created_at", "updated_at"),
    "releases": ("id", "name", "version", "content", "created_at", "updated_at"),
}  # fmt: skip
FEATURES = ("dark-mode", "flashcards", "group-study", "offline-mode", "ai-tutor", "calendar-sync")
COMPANIES = ("Acme Corp", "O'Neil & Sons", "Müller GmbH", "学习公司", "Robert'); DROP TABLE--")
MESSAGES = (
    "Can we get a demo for 20 seats?",
    'Hi,\nwe\'d like "team" pricing; our IT says: SELECT * FROM prices;',
    "Bonjour ! Est-ce que l'offre étudiante existe ? 🙏",
    "Tab\tseparated\tthoughts and a backslash \\ here",
)
SUBJECTS = ("Billing question", "Bug report: login 🐛", "Partnership", "Datenschutz-Anfrage")
EVENTS = (("page_view", "/"), ("page_view", "/pricing"), ("signup_click", "/signup"),
          ("video_play", "/demo?ref=o'brien"))  # fmt: skip
NEXT_STATUS = {
    "demo_requests": ("new", "contacted", "qualified", "closed"),
    "contact_submissions": ("open", "answered", "closed"),
    "email_subscriptions": ("subscribed", "unsubscribed"),
}


def person_columns(world: World, slot: Slot, draw: Draw) -> Record:
    who = slot.owner
    return {
        "id": slot.index + 1,
        "email": email_variant(slot.email, draw),
        "name": who.name,
    }


def timestamps(slot: Slot) -> Record:
    created = iso_db(slot.created_ms)
    return {"created_at": created, "updated_at": created}


def build_vote(world: World, slot: Slot) -> Record:
    draw = slot.draw(world.seed)
    return {
        **person_columns(world, slot, draw),
        "feature_slug": draw.choice(FEATURES),
        "value": draw.choice((1, 1, 1, -1)),
        "content": draw.choice((None, "Please! 🙏", "would pay extra; -- really")),
        **timestamps(slot),
    }


def build_demo_request(world: World, slot: Slot) -> Record:
    draw = slot.draw(world.seed)
    return {
        **person_columns(world, slot, draw),
        "company": draw.choice(COMPANIES),
        "phone": slot.owner.phone,
        "team_size": draw.choice((1, 5, 20, 250)),
        "status": "new",
        "content": draw.choice(MESSAGES),
        **timestamps(slot),
    }


def build_subscription(world: World, slot: Slot) -> Record:
    draw = slot.draw(world.seed)
    return {
        **person_columns(world, slot, draw),
        "list_name": draw.choice(("newsletter", "product-updates", "exam-tips")),
        "status": "subscribed",
        "source": draw.choice(("footer", "blog", "checkout")),
        "content": None,
        **timestamps(slot),
    }


def build_contact_submission(world: World, slot: Slot) -> Record:
    draw = slot.draw(world.seed)
    return {
        **person_columns(world, slot, draw),
        "subject": draw.choice(SUBJECTS),
        "status": "open",
        "content": draw.choice(MESSAGES),
        **timestamps(slot),
    }


def build_event(world: World, slot: Slot) -> Record:
    draw = slot.draw(world.seed)
    event, path = draw.choice(EVENTS)
    return {
        **person_columns(world, slot, draw),
        "event_name": event,
        "path": path,
        "session_id": f"{draw.u32():08x}{draw.u32():08x}",
        "properties": {"utm_source": draw.choice(("google", "newsletter", None)), "screen": "1440"},
        "content": "Mozilla/5.0 (X11; Linux x86_64)",
        **timestamps(slot),
    }


def build_release(world: World, slot: Slot) -> Record:
    number = slot.index + 1
    draw = slot.draw(world.seed)
    return {
        "id": number,
        "name": f"Release {number}: {draw.choice(('Flashcards', 'Dark mode 🌙', 'Ünïcode fixes'))}",
        "version": f"1.{number}.0",
        "content": f"- fixed O'Brien's bug\n- faster sync ({draw.below(90) + 10} %)",
        **timestamps(slot),
    }


def change_row(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    """Statuses move on, votes flip, events get enriched; updated_at always moves."""
    statuses = NEXT_STATUS.get(slot.source)
    if statuses:
        record["status"] = statuses[(statuses.index(record["status"]) + 1) % len(statuses)]
    elif slot.source == "votes":
        record["value"] = -record["value"]
    elif slot.source == "analytics_events":
        record["properties"] = {**record["properties"], "enriched": change}
    else:
        record["content"] = f"{record['content']}\n(edited, day {change})"
    record["updated_at"] = iso_db(in_day(day_ms, slot.draw(world.seed, "changed", change)))


def release_base(world: World) -> int:
    return world.config.days // 7 + 1


def release_time(world: World, index: int) -> int:
    if index < release_base(world):
        return world.start_ms + index * 7 * 86_400_000 + 10 * 3_600_000
    return world.catalog_added_ms(index - release_base(world))


SPECS = (
    email_row_spec("votes", build_vote, change_row),
    email_row_spec("demo_requests", build_demo_request, change_row),
    email_row_spec("email_subscriptions", build_subscription, change_row),
    email_row_spec("contact_submissions", build_contact_submission, change_row),
    email_row_spec("analytics_events", build_event, change_row),
    RecordGenerator(
        name="releases",
        build=build_release,
        key=by_id,
        change=change_row,
        catalog=Catalog(base=release_base, time_ms=release_time),
    ),
)
