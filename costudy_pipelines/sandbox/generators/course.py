"""Rows of the course platform's core database (schema: sandbox/sql/course.sql).

Courses and coupons are catalogs: the world never deletes them (enrollments, order items and
orders reference them; the app retires a course by unpublishing it, which is a change).
Deleting an order deletes its items, as the schema's ON DELETE CASCADE does.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.draw import Draw, Weighted
from costudy_pipelines.sandbox.generators.base import (
    Catalog,
    Money,
    Record,
    RecordGenerator,
    Slot,
    by_id,
    cents,
    email_row_spec,
    in_currency,
    in_day,
    iso_db,
    person_currency,
)
from costudy_pipelines.sandbox.people import email_variant

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

COLUMNS: dict[str, tuple[str, ...]] = {
    "courses": ("id", "slug", "title", "description", "price", "currency", "published",
                "created_at", "updated_at"),
    "coupons": ("id", "code", "percent_off", "active", "valid_until", "created_at", "updated_at"),
    "enrollments": ("id", "user_email", "user_name", "course_id", "status", "progress_percent",
                    "completed_at", "created_at", "updated_at"),
    "orders": ("id", "user_email", "user_name", "amount", "currency", "status", "coupon_id",
               "created_at", "updated_at"),
    "order_items": ("id", "order_id", "course_id", "unit_price", "quantity", "created_at",
                    "updated_at"),
}  # fmt: skip
COURSE_TITLES = (
    "CPA Exam Prep", "GMAT Sprint", "Français B2 — préparation", "数学 101", "Statistics I",
    "SQL for O'Reilly fans; DROP TABLE courses;--", "Deutsch für Anfänger", "IELTS Writing ✍️",
    "Calculus II", "Essay Clinic", "Data Science 101", "Study Skills",
)  # fmt: skip
COUPON_CODES = ("WELCOME10", "O'BRIEN-25", "SPRING😀", "STUDENT15", "TEAM20", "BLACKFRIDAY",
                "EARLYBIRD", "FRIEND5")  # fmt: skip
ORDER_STATUSES = Weighted((("paid", 0.8), ("pending", 0.07), ("refunded", 0.06), ("failed", 0.07)))
ORDER_NEXT = {"pending": "paid", "paid": "refunded", "failed": "pending", "refunded": "paid"}
ENROLMENT_STATUSES = Weighted((("active", 0.6), ("completed", 0.25), ("dropped", 0.15)))
DAY_MS = 86_400_000


def course_price(seed: int, course: int) -> Decimal:
    return cents(Decimal(Draw(seed, "course-price", course).choice((49, 99, 149, 299, 499))))


def coupon_percent(seed: int, coupon: int) -> int:
    return Draw(seed, "coupon-percent", coupon).choice((5, 10, 15, 20, 25))


def order_lines(world: World, person: int, order: int) -> list[tuple[int, int]]:
    """(course index, quantity) per item of a person's order."""
    items = world.population.profile(person).items_per_order[order]
    draw = Draw(world.seed, "order-lines", person, order)
    courses = world.catalog_base("courses")
    return [(draw.below(courses), 1 + int(draw.chance(0.1))) for _ in range(items)]


def item_position(world: World, person: int, item: int) -> tuple[int, int]:
    """Which (order, line) the person's `item`-th order item is."""
    for order, items in enumerate(world.population.profile(person).items_per_order):
        if item < items:
            return order, item
        item -= items
    raise IndexError(item)


def timestamps(ms: int) -> Record:
    return {"created_at": iso_db(ms), "updated_at": iso_db(ms)}


def build_course(world: World, slot: Slot) -> Record:
    number = slot.index
    title = COURSE_TITLES[number] if number < len(COURSE_TITLES) else f"New course #{number} 🆕"
    return {
        "id": number + 1,
        "slug": f"course-{number + 1}",
        "title": title,
        "description": f"Learn {title} — with O'Brien's notes; 100% online.",
        "price": str(course_price(world.seed, number)),
        "currency": "USD",
        "published": True,
        **timestamps(slot.created_ms),
    }


def build_coupon(world: World, slot: Slot) -> Record:
    number = slot.index
    return {
        "id": number + 1,
        "code": COUPON_CODES[number] if number < len(COUPON_CODES) else f"DAY{number}",
        "percent_off": str(coupon_percent(world.seed, number)),
        "active": True,
        "valid_until": iso_db(slot.created_ms + 365 * DAY_MS),
        **timestamps(slot.created_ms),
    }


def build_enrollment(world: World, slot: Slot) -> Record:
    who, draw = slot.owner, slot.draw(world.seed)
    status = draw.weighted(ENROLMENT_STATUSES)
    done = status == "completed"
    return {
        "id": slot.index + 1,
        "user_email": email_variant(slot.email, draw),
        "user_name": who.name,
        "course_id": draw.below(world.catalog_base("courses")) + 1,
        "status": status,
        "progress_percent": 100 if done else draw.below(100),
        "completed_at": iso_db(slot.created_ms + 20 * DAY_MS) if done else None,
        **timestamps(slot.created_ms),
    }


def build_order(world: World, slot: Slot) -> Record:
    who, draw, seed = slot.owner, slot.draw(world.seed), world.seed
    currency = person_currency(seed, who)
    subtotal = sum(
        (in_currency(course_price(seed, course), currency) * quantity)
        for course, quantity in order_lines(world, who.index, slot.ordinal)
    )
    coupon = draw.below(world.catalog_base("coupons")) if draw.chance(0.1) else None
    discount = Decimal(coupon_percent(seed, coupon)) / 100 if coupon is not None else Decimal(0)
    return {
        "id": slot.index + 1,
        "user_email": email_variant(slot.email, draw),
        "user_name": who.name,
        "amount": str(cents(subtotal * (1 - discount))),
        "currency": currency,
        "status": draw.weighted(ORDER_STATUSES),
        "coupon_id": coupon + 1 if coupon is not None else None,
        **timestamps(slot.created_ms),
    }


def build_order_item(world: World, slot: Slot) -> Record:
    who, seed = slot.owner, world.seed
    order, line = item_position(world, who.index, slot.ordinal)
    course, quantity = order_lines(world, who.index, order)[line]
    currency = person_currency(seed, who)
    return {
        "id": slot.index + 1,
        "order_id": world.index_of("orders", who.index, order) + 1,
        "course_id": course + 1,
        "unit_price": str(in_currency(course_price(seed, course), currency)),
        "quantity": quantity,
        **timestamps(slot.created_ms),
    }


def change_row(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    if slot.source == "orders":
        record["status"] = ORDER_NEXT[record["status"]]
    elif slot.source == "enrollments":
        record["progress_percent"] = min(100, record["progress_percent"] + 10)
        record["status"] = "completed" if record["progress_percent"] == 100 else "active"
    elif slot.source == "courses":
        record["published"] = not record["published"]
    elif slot.source == "coupons":
        record["active"] = not record["active"]
    record["updated_at"] = iso_db(in_day(day_ms, slot.draw(world.seed, "changed", change)))


def order_money(record: Record) -> Money:
    return Money(record["currency"], record["status"], Decimal(record["amount"]))


def catalog_time(
    base_count: Callable[[World], int], offset_days: int
) -> Callable[[World, int], int]:
    """Catalog rows exist before the world starts, a month apart; added ones appear daily."""

    def time_ms(world: World, index: int) -> int:
        base = base_count(world)
        if index < base:
            return world.start_ms - (offset_days + (base - index) * 30) * DAY_MS
        return world.catalog_added_ms(index - base)

    return time_ms


def course_base(world: World) -> int:
    return len(COURSE_TITLES)


def coupon_base(world: World) -> int:
    return len(COUPON_CODES)


def _catalog(name: str, build, base_count: Callable[[World], int], offset_days: int):
    return RecordGenerator(
        name=name,
        build=build,
        key=by_id,
        change=change_row,
        catalog=Catalog(base=base_count, time_ms=catalog_time(base_count, offset_days)),
        deletable=False,
    )


SPECS = (
    _catalog("courses", build_course, course_base, 0),
    _catalog("coupons", build_coupon, coupon_base, 1),
    email_row_spec("enrollments", build_enrollment, change_row, column="user_email"),
    email_row_spec("orders", build_order, change_row, column="user_email", money=order_money),
    RecordGenerator(name="order_items", build=build_order_item, key=by_id, change=change_row),
)
