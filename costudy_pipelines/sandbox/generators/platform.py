"""Users of the product platform. The platform schema (sql/platform, written elsewhere) is not
fixed yet: these rows assume only `users(email, name, username, created_at)`. Emails are the
canonical ones (the platform keeps them normalised and unique)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.generators.base import Record, RecordGenerator, Slot, iso_db

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

COLUMNS = ("email", "name", "username", "created_at")


def build_user(world: World, slot: Slot) -> Record:
    who = slot.owner
    return {
        "email": who.email,
        "name": who.name,
        "username": who.username,
        "created_at": iso_db(slot.created_ms),
    }


def change_user(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    """The user changes their last name in their profile."""
    record["name"] = f"{slot.owner.first} {slot.owner.last_after_renames(change)}"


USERS = RecordGenerator(
    name="platform_users",
    build=build_user,
    key=lambda record: record["email"],
    change=change_user,
)
