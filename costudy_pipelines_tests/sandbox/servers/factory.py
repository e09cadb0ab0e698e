"""A tiny record factory for the server tests: records in each API's response shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2024, 3, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(amount: float, as_object: bool) -> Any:
    if not as_object:
        return amount
    return {"amount": f"{amount:.2f}", "currency": "usd", "decimals": 2, "display_decimals": 2}


def whop_payments(count: int, *, step: timedelta = timedelta(hours=5)) -> list[dict[str, Any]]:
    """Payments every `step` from START; odd ones carry Money objects, even ones floats."""
    return [
        {
            "id": f"pay_{n:05d}",
            "status": "paid" if n % 4 else "pending",
            "created_at": iso(START + n * step),
            "currency": "usd",
            "usd_total": money(10 + n, as_object=bool(n % 2)),
            "user": {"id": f"user_{n % 7}", "email": f"Person{n % 7}@Example.com "},
            "membership": {"id": f"mem_{n:05d}"},
        }
        for n in range(count)
    ]


def whop_memberships(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"mem_{n:05d}",
            "status": "active" if n % 3 else "unresolved",
            "created_at": iso(START + timedelta(days=n)),
            "user": {"id": f"user_{n}"},
        }
        for n in range(count)
    ]


def ghl_contacts(
    count: int, *, location: str = "loc_a", same_millisecond: int = 1
) -> list[dict[str, Any]]:
    """Contacts added in groups of `same_millisecond` sharing one dateAdded (ties break by id)."""
    return [
        {
            "id": f"ct_{location}_{n:05d}",
            "locationId": location,
            "email": f"c{n}@example.com",
            "firstName": f"Ann{n}",
            "lastName": "O'Brien; DROP TABLE",
            "name": f"Ann{n} O'Brien",
            "tags": ["lead"],
            "dateAdded": iso(START + timedelta(minutes=n // same_millisecond)),
            "customFields": [{"id": "cf_1", "value": "x"}],
        }
        for n in range(count)
    ]
