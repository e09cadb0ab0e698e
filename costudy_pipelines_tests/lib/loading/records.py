"""Synthetic source records in the real API shapes (see shared/reference), for the tests."""

from __future__ import annotations

from typing import Any


def whop_payment(
    pay_id: str,
    email: str,
    *,
    name: str | None = None,
    amount: Any = 49.0,
    created_at: Any = "2025-01-02T03:04:05Z",
    status: str = "paid",
    username: str | None = None,
) -> dict[str, Any]:
    """A Whop API v1 payment: nested user, money as float or Money object, ISO time."""
    return {
        "id": pay_id,
        "status": status,
        "currency": "usd",
        "total": amount,
        "usd_total": amount,
        "refunded_amount": 0.0,
        "created_at": created_at,
        "paid_at": created_at,
        "user": {"id": f"user_{email}", "email": email, "name": name, "username": username},
        "membership": {"id": f"mem_{pay_id}"},
        "product": {"id": "prod_1", "title": "Course"},
    }


def money(amount: str) -> dict[str, Any]:
    """Whop's later SDK Money object."""
    return {"amount": amount, "currency": "usd", "decimals": 2, "display_decimals": 2}


def ghl_contact(
    contact_id: str,
    email: str,
    *,
    first: str | None = None,
    last: str | None = None,
    date_added: str = "2025-01-02T09:31:30.255Z",
) -> dict[str, Any]:
    """A LeadConnector v2 contact as GET /contacts/ returns it."""
    return {
        "id": contact_id,
        "locationId": "loc_1",
        "email": email,
        "firstName": first,
        "lastName": last,
        "tags": ["lead"],
        "dateAdded": date_added,
        "dateUpdated": date_added,
        "customFields": [{"id": "cf1", "value": "x"}],
        "source": "form",
    }


def sheet_row(email: str, name: str | None = None, amount: Any = 50, date: str = "2025-03-01"):
    """A row as gspread's get_all_records returns it (header → numericised value)."""
    return {"Email": email, "Name": name or "", "Amount": amount, "Date": date}
