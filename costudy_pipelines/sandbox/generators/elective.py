"""Elective orders as the Orders dashboard exports them to CSV. Elective has no public API and
documents no email column, so what is known and what is guessed is spelled out here:
- "orders": the documented layout (Purchase Date (UTC), Student Name, Product Purchased,
  Currency, Order Total, Term (months), First Payment, Fees, Net Amount, Type, Status) plus a
  "Student Email" column. The email column's name and position are our guess.
- "orders_legacy": the older layout (Purchase Date (UTC), Customer, Checkout, Type, Term,
  Order Total, Fees, Net Amount, Status) plus "Customer Email" (guessed likewise). It has no
  currency column: amounts are taken to be dollars.
- "orders_no_email": the documented layout as documented, without any email column: its rows
  cannot be tied to a person.
Dates are written `YYYY-MM-DD HH:MM:SS` (UTC) and amounts as plain decimals: the real
formatting is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.draw import Draw, Weighted
from costudy_pipelines.sandbox.generators.base import (
    ALL_KINDS,
    CURRENCIES,
    NO_EMAIL_FIELD,
    Kind,
    Money,
    Record,
    RecordGenerator,
    Slot,
    cents,
    corrupt_value,
    plain_datetime,
    row_hash,
)
from costudy_pipelines.sandbox.people import email_variant

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

DOCUMENTED = (
    "Purchase Date (UTC)", "Student Name", "Product Purchased", "Currency", "Order Total",
    "Term (months)", "First Payment", "Fees", "Net Amount", "Type", "Status",
)  # fmt: skip
LEGACY = (
    "Purchase Date (UTC)", "Customer", "Customer Email", "Checkout", "Type", "Term",
    "Order Total", "Fees", "Net Amount", "Status",
)  # fmt: skip
STATUSES = Weighted(
    (
        ("Approved", 0.7),
        ("Pending Payment", 0.1),
        ("First Payment Failed", 0.05),
        ("Refunded", 0.08),
        ("Cancelled", 0.07),
    )
)
PROGRAMS = (
    ("CPA Exam Prep — Full Course", Decimal("1200.00")),
    ("GMAT Sprint", Decimal("450.00")),
    ("Cours de français 🇫🇷", Decimal("300.00")),
    ("Kid's Coding Camp", Decimal("850.00")),
)


@dataclass(frozen=True)
class Layout:
    name: str
    file_name: str
    header: tuple[str, ...]
    roles: dict[str, str]  # role -> column; no "email" role means the export has no email
    weight: float


LAYOUTS = (
    Layout(
        "orders",
        "elective_orders.csv",
        (*DOCUMENTED[:2], "Student Email", *DOCUMENTED[2:]),
        {"date": "Purchase Date (UTC)", "name": "Student Name", "email": "Student Email",
         "amount": "Order Total", "currency": "Currency", "status": "Status"},
        0.6,
    ),
    Layout(
        "orders_legacy",
        "elective_orders_legacy.csv",
        LEGACY,
        {"date": "Purchase Date (UTC)", "name": "Customer", "email": "Customer Email",
         "amount": "Order Total", "status": "Status"},
        0.25,
    ),
    Layout(
        "orders_no_email",
        "elective_orders_no_email.csv",
        DOCUMENTED,
        {"date": "Purchase Date (UTC)", "name": "Student Name", "amount": "Order Total",
         "currency": "Currency", "status": "Status"},
        0.15,
    ),
)  # fmt: skip
LAYOUT_WEIGHTS = Weighted(tuple((layout, layout.weight) for layout in LAYOUTS))
LAYOUT_BY_NAME = {layout.name: layout for layout in LAYOUTS}


def build_row(world: World, slot: Slot) -> Record:
    who, draw = slot.owner, slot.draw(world.seed)
    layout = Draw(world.seed, "elective-layout", who.index, slot.content_ordinal).weighted(
        LAYOUT_WEIGHTS
    )
    program, price = draw.choice(PROGRAMS)
    currency = draw.weighted(CURRENCIES) if "currency" in layout.roles else "USD"
    term = draw.choice((1, 3, 6, 12))
    fees = cents(price * Decimal("0.03"))
    cells = {
        "Purchase Date (UTC)": plain_datetime(slot.created_ms),
        "Student Name": who.name,
        "Customer": who.name,
        "Student Email": email_variant(slot.email, draw),
        "Product Purchased": program,
        "Checkout": program.split(" ")[0].lower() + "-checkout",
        "Currency": currency,
        "Order Total": str(price),
        "Term (months)": str(term),
        "Term": str(term),
        "First Payment": str(cents(price / term)),
        "Fees": str(fees),
        "Net Amount": str(price - fees),
        "Type": draw.choice(("Funding", "In-House")),
        "Status": draw.weighted(STATUSES),
    }
    cells["Customer Email"] = cells["Student Email"]
    return {
        "file": layout.file_name,
        "layout": layout.name,
        "values": {column: cells[column] for column in layout.header},
    }


STATUS_NEXT = {"Pending Payment": "Approved", "Approved": "Refunded"}


def change_row(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    """The order moves on (pending -> approved -> refunded; anything else gets cancelled)."""
    values = record["values"]
    status = values["Status"]
    values["Status"] = STATUS_NEXT.get(status, "Cancelled" if status != "Cancelled" else "Approved")


def layout_of(record: Record) -> Layout:
    return LAYOUT_BY_NAME[record["layout"]]


def role_value(record: Record, role: str) -> object:
    column = layout_of(record).roles.get(role)
    return record["values"][column] if column else NO_EMAIL_FIELD


def _kinds(record: Record) -> tuple[Kind, ...]:
    if "email" in layout_of(record).roles:
        return ALL_KINDS
    return ("bad_amount", "bad_date")


def corrupt_row(record: Record, kind: Kind, draw: Draw) -> None:
    role = {"missing_email": "email", "invalid_email": "email", "bad_amount": "amount"}.get(
        kind, "date"
    )
    record["values"][layout_of(record).roles[role]] = corrupt_value(kind, draw) or ""


def row_money(record: Record) -> Money:
    currency = role_value(record, "currency")
    return Money(
        currency=currency if isinstance(currency, str) else "USD",
        status=record["values"]["Status"],
        amount=cents(Decimal(record["values"]["Order Total"])),
    )


ROWS = RecordGenerator(
    name="elective_rows",
    build=build_row,
    key=lambda record: row_hash(record["values"]),
    change=change_row,
    corruptions=_kinds,
    corrupt=corrupt_row,
    email=lambda record: role_value(record, "email"),
    money=row_money,
    row_hashed=True,
)
