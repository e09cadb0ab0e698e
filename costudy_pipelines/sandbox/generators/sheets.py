"""Google Sheets rows: several spreadsheets and worksheets with their own headers (people name
their columns differently), every cell a string as the values API returns it with the default
FORMATTED_VALUE rendering. A record is one data row: where it lives and its cell per column.
Rows have no id; their identity is the hash of their content.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.draw import Draw, Weighted, token
from costudy_pipelines.sandbox.generators.base import (
    ALL_KINDS,
    CURRENCIES,
    Kind,
    Money,
    Record,
    RecordGenerator,
    Slot,
    cents,
    corrupt_value,
    plain_date,
    plain_datetime,
    row_hash,
)
from costudy_pipelines.sandbox.people import display_name, email_variant

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

PRODUCTS = ("Study Notes", "Mock Exam Pack", "Workshop ticket 🎟️", "Kurs „Grundlagen“", "1:1 call")
NOTES = ("paid by bank transfer", 'invoice #2024-17; customer\'s "PO" attached', "Rabatt 10 %")
REFERRALS = ("friend", "Instagram", "O'Reilly newsletter")


@dataclass(frozen=True)
class Worksheet:
    title: str
    header: tuple[str, ...]
    roles: dict[str, str]  # role (email/name/amount/currency/date) -> header
    date_format: str  # "date" or "datetime"
    weight: float


@dataclass(frozen=True)
class Spreadsheet:
    slug: str
    title: str
    worksheets: tuple[Worksheet, ...]


SPREADSHEETS = (
    Spreadsheet(
        "ledger",
        "CoStudy payments ledger",
        (
            Worksheet(
                "Payments",
                ("Email", "Name", "Amount", "Currency", "Date", "Product", "Notes"),
                {"email": "Email", "name": "Name", "amount": "Amount", "currency": "Currency",
                 "date": "Date"},
                "date",
                0.45,
            ),
            Worksheet(
                "Upsells Q1",
                ("Date", "Name", "Email", "Amount", "Currency", "Notes"),
                {"email": "Email", "name": "Name", "amount": "Amount", "currency": "Currency",
                 "date": "Date"},
                "date",
                0.2,
            ),
        ),
    ),
    Spreadsheet(
        "signups",
        "Workshop sign-ups — Früh 2024 ✏️",
        (
            Worksheet(
                "Form responses 1",
                ("Timestamp", "Full Name", "Email Address", "Amount Paid", "Referral"),
                {"email": "Email Address", "name": "Full Name", "amount": "Amount Paid",
                 "date": "Timestamp"},
                "datetime",
                0.35,
            ),
        ),
    ),
)  # fmt: skip
WEIGHTS = Weighted(
    tuple(((sheet, tab), tab.weight) for sheet in SPREADSHEETS for tab in sheet.worksheets)
)


def spreadsheet_id(seed: int, sheet: Spreadsheet) -> str:
    """44 characters, like a real spreadsheet key."""
    return token(44, seed, "spreadsheet", sheet.slug, urlsafe=True)


def place(seed: int, person_index: int, content_ordinal: int) -> tuple[Spreadsheet, Worksheet]:
    """Which worksheet a person's row is in (known without building the row)."""
    return Draw(seed, "sheet-place", person_index, content_ordinal).weighted(WEIGHTS)


def build_row(world: World, slot: Slot) -> Record:
    sheet, tab = place(world.seed, slot.owner.index, slot.content_ordinal)
    who, draw = slot.owner, slot.draw(world.seed)
    currency = draw.weighted(CURRENCIES)
    amount = cents(Decimal(draw.between(500, 50000)) / 100)
    when = slot.created_ms
    cells = {
        "email": email_variant(slot.email, draw),
        "name": display_name(world.seed, who, "sheets", slot.epoch) or "",
        "amount": str(amount),
        "currency": currency,
        "date": plain_date(when) if tab.date_format == "date" else plain_datetime(when),
    }
    values = {column: "" for column in tab.header}
    for role, column in tab.roles.items():
        values[column] = cells[role]
    if "Product" in values:
        values["Product"] = draw.choice(PRODUCTS)
    if "Notes" in values and draw.chance(0.15):
        values["Notes"] = draw.choice(NOTES)
    if "Referral" in values and draw.chance(0.3):
        values["Referral"] = draw.choice(REFERRALS)
    return {
        "spreadsheet_id": spreadsheet_id(world.seed, sheet),
        "worksheet": tab.title,
        "values": values,
    }


def worksheet(record: Record) -> Worksheet:
    for sheet in SPREADSHEETS:
        for tab in sheet.worksheets:
            if tab.title == record["worksheet"]:
                return tab
    raise KeyError(record["worksheet"])


def change_row(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    """Someone corrects the amount and leaves a note (the row's hash changes with it)."""
    tab = worksheet(record)
    values = record["values"]
    amount_column = tab.roles["amount"]
    with suppress(ArithmeticError):  # a malformed amount stays malformed; the note changes
        values[amount_column] = str(cents(Decimal(values[amount_column]) + change))
    note_column = tab.header[-1]
    values[note_column] = f"corrected (day {change})"


def corrupt_row(record: Record, kind: Kind, draw: Draw) -> None:
    tab = worksheet(record)
    role = {"missing_email": "email", "invalid_email": "email", "bad_amount": "amount"}.get(
        kind, "date"
    )
    value = corrupt_value(kind, draw)
    record["values"][tab.roles[role]] = value or ""


def role_value(record: Record, role: str) -> str | None:
    column = worksheet(record).roles.get(role)
    return record["values"][column] if column else None


def row_money(record: Record) -> Money:
    amount = role_value(record, "amount")
    assert amount is not None, "money is read only from worksheets with an amount column"
    return Money(
        currency=role_value(record, "currency") or "USD",  # no currency column: dollars
        status="recorded",
        amount=cents(Decimal(amount)),
    )


def ragged(record: Record) -> list[str]:
    """The row as the values API returns it: in header order, trailing empty cells trimmed."""
    cells = [record["values"][column] for column in worksheet(record).header]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


ROWS = RecordGenerator(
    name="sheet_rows",
    build=build_row,
    key=lambda record: row_hash(record["values"]),
    change=change_row,
    corruptions=lambda record: ALL_KINDS,
    corrupt=corrupt_row,
    email=lambda record: role_value(record, "email"),
    name_of=lambda record: role_value(record, "name"),
    money=row_money,
    row_hashed=True,
)
