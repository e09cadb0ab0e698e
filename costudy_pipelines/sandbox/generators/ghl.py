"""GoHighLevel (LeadConnector v2) contacts as `GET /contacts/` and `POST /contacts/search` return
them. A person usually has one contact; some have a second one in another location (or a
duplicate in the same business), with their own id and a different spelling of the email.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.draw import Draw, token
from costudy_pipelines.sandbox.generators.base import (
    EMAIL_KINDS,
    Kind,
    Record,
    RecordGenerator,
    Slot,
    by_id,
    corrupt_value,
    in_day,
    iso_ms,
)
from costudy_pipelines.sandbox.people import email_variant, first_last

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

TAGS = ("lead", "webinar", "customer", "newsletter", "vip", "demo-requested", "São Paulo", "b2b")
SOURCES = ("public api", "form", "import", "zapier", "facebook lead ad")
COURSES = ("CPA Exam Prep", "GMAT Sprint", "Français B2", "数学 101", "SQL for O'Reilly fans")
NOTES = (
    "Called twice, prefers email",
    'Asked about "group discount"; DROP TABLE contacts; --',
    "Met at the fair 🎪\nfollow up in March",
    "",
)
CITIES = (
    ("Austin", "TX", "US"),
    ("Zürich", "ZH", "CH"),
    ("São Paulo", "SP", "BR"),
    ("Kraków", "", "PL"),
)


def location_ids(world: World) -> list[str]:
    return [token(20, world.seed, "ghl-location", n) for n in range(world.config.ghl_locations)]


@lru_cache(maxsize=256)
def field_id(location: str, name: str) -> str:
    return token(20, 0, "ghl-field", location, name)


def contact_location(world: World, slot: Slot) -> str:
    """The person's home location; a second contact lives in the next one."""
    locations = world.ghl_locations
    home = Draw(world.seed, "ghl-home", slot.owner.index).below(len(locations))
    return locations[(home + slot.content_ordinal) % len(locations)]


def build_contact(world: World, slot: Slot) -> Record:
    who, draw = slot.owner, slot.draw(world.seed)
    location = contact_location(world, slot)
    first, last = first_last(world.seed, who, "ghl", slot.epoch)
    city, state, country = draw.choice(CITIES)
    added = iso_ms(slot.created_ms)
    tags = sorted({draw.choice(TAGS) for _ in range(draw.below(4))})
    return {
        "id": token(20, world.seed, "ghl-contact", who.index, slot.content_ordinal),
        "locationId": location,
        "contactName": f"{first} {last}".lower(),
        "firstName": first,
        "lastName": last,
        "name": f"{first} {last}",
        "email": email_variant(slot.email, draw),
        "phone": who.phone if draw.chance(0.8) else None,
        "companyName": draw.choice((None, "Acme GmbH", "O'Neil & Sons", "株式会社テスト")),
        "address1": draw.choice((None, "3535 1st St N", "Rua Augusta, 1500 – apto 12")),
        "city": city,
        "state": state,
        "country": country,
        "postalCode": f"{draw.below(100000):05d}",
        "website": None,
        "timezone": draw.choice(("America/Chicago", "Europe/Zurich", "America/Sao_Paulo")),
        "dnd": draw.chance(0.05),
        "type": draw.choice(("lead", "customer")),
        "source": draw.choice(SOURCES),
        "assignedTo": None,
        "dateOfBirth": None,
        "tags": tags,
        "dateAdded": added,
        "dateUpdated": added,
        "lastActivity": None,
        "businessId": None,
        "customFields": [
            {"id": field_id(location, "course_interest"), "value": draw.choice(COURSES)},
            {"id": field_id(location, "notes"), "value": draw.choice(NOTES)},
        ],
    }


def change_contact(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    """A tag added (or the first one removed) and the phone re-entered, as reps do."""
    draw = slot.draw(world.seed, "changed", change)
    tag = f"touched-{change}"
    record["tags"] = sorted({*record["tags"][1:], tag})
    record["phone"] = f"+44 20 7946 {draw.below(10000):04d}"
    record["dateUpdated"] = iso_ms(in_day(day_ms, draw))


def corrupt_contact(record: Record, kind: Kind, draw: Draw) -> None:
    if kind == "bad_date":
        record["dateAdded"] = corrupt_value(kind, draw)
    elif kind == "missing_email":
        record["email"] = None  # GoHighLevel contacts without email (phone-only leads)
    else:
        record["email"] = corrupt_value(kind, draw)


def _kinds(record: Record) -> tuple[Kind, ...]:
    return ("bad_date", *EMAIL_KINDS)


CONTACTS = RecordGenerator(
    name="ghl_contacts",
    build=build_contact,
    key=by_id,
    change=change_contact,
    corruptions=_kinds,
    corrupt=corrupt_contact,
    email=lambda record: record["email"],
    name_of=lambda record: record["name"],
)
