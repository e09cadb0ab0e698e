"""Whop v1 objects (api.whop.com/api/v1) at the API version the client pins
(`WHOP_API_VERSION`, `Api-Version-Date`), one dict per record exactly as the endpoint returns
it; the models of Whop's official SDK (`whop-sdk` 2.6.0) are the contract (tests drive the
SDK's own list and retrieve methods against the sandbox and parse every answer):

- payments are the SDK's `Payment`: related records as flat `*_id` fields, money fields as
  Money objects {"amount": "<decimal string>", "currency", "decimals", "display_decimals"},
  the payer's address in `customer_email`, and an embedded `user` summary without email;
  `status` and `substatus` within the SDK's enums.
- memberships are the SDK's `Membership` (what `GET /memberships` and `GET /memberships/{id}`
  answer in 2.6.0): `account`, `product`, `plan_id`, `product_id`, `member_id`, `user_id`,
  Money `initial_price`/`renewal_price`, and no email anywhere. `member` is the caller's own
  member row, null on the seller-side reads a company key makes.
- members are the SDK's `Member` (`GET /members`, `GET /members/{id}`): one per buyer of the
  account, with the buyer's `email` (the `member:email:read` scope) and `user` summary. They
  are how a membership reaches its person's email (`members(world)`).
- users are the SDK's `User`, `email` null: 2.6.0 fills it only on the caller's own `me` view,
  so a company reads its users' addresses from their member records, as for memberships.
- A refund keeps `status: "paid"` and sets `substatus` ("refunded"/"partially_refunded") and
  `refunded_amount`, as v1 documents; v1 has no status "refunded".
- `WorldConfig.money_format` "float" (or "mixed", per payment) serves the money fields as
  floats, as an older SDK release had them: the older shape, only where a test asks for it.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from costudy_pipelines.sandbox.draw import Draw, Weighted
from costudy_pipelines.sandbox.generators.base import (
    ALL_KINDS,
    EMAIL_KINDS,
    USD_PER_UNIT,
    Kind,
    Money,
    Record,
    RecordGenerator,
    Slot,
    by_id,
    cents,
    corrupt_value,
    in_currency,
    in_day,
    iso_ms,
    person_currency,
    token_id,
)
from costudy_pipelines.sandbox.people import display_name, email_variant, person

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

PRODUCTS = (
    ("CoStudy Pro", Decimal("29.00")),
    ("CoStudy Teams", Decimal("99.00")),
    ("Exam Bootcamp — Früh-Bucher", Decimal("199.00")),
    ("1:1 Coaching 🎓", Decimal("499.00")),
    ("Study Notes", Decimal("9.99")),
)
MEMBERSHIP_STATUSES = Weighted(
    (
        ("active", 0.6),
        ("trialing", 0.08),
        ("past_due", 0.05),
        ("completed", 0.07),
        ("canceled", 0.12),
        ("expired", 0.06),
        ("unresolved", 0.02),
    )
)
PAYMENT_STATUSES = Weighted(
    (
        ("paid", 0.78),
        ("open", 0.06),
        ("pending", 0.03),
        ("void", 0.05),
        ("draft", 0.02),
        ("uncollectible", 0.03),
        ("unresolved", 0.03),
    )
)
# the SDK's PaymentSubstatus for a payment that is not paid (the enum has no "open", "void"
# or "draft": an open invoice is incomplete, a voided one canceled, a draft drafted)
UNPAID_SUBSTATUS = {
    "open": "incomplete",
    "pending": "pending",
    "void": "canceled",
    "draft": "drafted",
    "uncollectible": "uncollectible",
    "unresolved": "unresolved",
    "authorized": "requires_capture",
}
PAID_SUBSTATUSES = Weighted((("succeeded", 0.91), ("refunded", 0.06), ("partially_refunded", 0.03)))
MONEY_FIELDS = (
    "usd_total",
    "total",
    "subtotal",
    "refunded_amount",
    "amount_after_fees",
    "tax_refunded_amount",
)
DAY_MS = 86_400_000


def company(seed: int) -> dict[str, str]:
    return {"id": token_id("biz", seed, "company"), "title": "CoStudy", "route": "costudy"}


def product(seed: int, number: int) -> dict[str, str]:
    title = PRODUCTS[number][0]
    return {"id": token_id("prod", seed, number), "title": title, "route": f"costudy-{number}"}


@lru_cache(maxsize=16384)
def membership_product(seed: int, person_index: int, membership: int) -> int:
    return Draw(seed, "whop-membership-product", person_index, membership).below(len(PRODUCTS))


def user_ref(world: World, slot: Slot) -> dict[str, object]:
    """The embedded user summary: same id and name as the person's whop_users record."""
    who = slot.owner
    return {
        "id": token_id("user", world.seed, who.index),
        "name": display_name(world.seed, who, "whop", slot.epoch),
        "username": who.username,
    }


def picture(username: str) -> dict[str, str]:
    return {"url": f"https://media.example.com/{username}.jpg"}


def build_user(world: World, slot: Slot) -> Record:
    who, draw = slot.owner, slot.draw(world.seed)
    return {
        "id": token_id("user", world.seed, who.index),
        "username": who.username,
        "name": display_name(world.seed, who, "whop", slot.epoch),
        "email": None,  # self-only: filled for the caller's own `me`, null for everyone else
        "created_at": iso_ms(slot.created_ms),
        "bio": draw.choice(
            (None, "Studying for the CPA 📚", "Ich lerne jeden Tag.", "O'Reilly fan")
        ),
        "profile_picture": picture(who.username),
        "balances": [],
        "social_links": [],
        "verification": {},
    }


def change_user(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    record["bio"] = f'Day {change} of studying — "{slot.index % 97}" chapters in'


def money_object(amount: Decimal, currency: str) -> dict[str, object]:
    return {"amount": str(amount), "currency": currency, "decimals": 2, "display_decimals": 2}


def account(seed: int) -> dict[str, object]:
    """The SDK's StorefrontAccount: the seller, as a membership names it."""
    return {**company(seed), "logo_url": None}


MOST_RECENT_ACTION = {
    "active": "renewing_on",
    "trialing": "trial_ends_at",
    "past_due": "past_due",
    "canceled": "canceled_on",
    "expired": "ending_on",
    "unresolved": "unresolved_at",
}


def build_membership(world: World, slot: Slot) -> Record:
    who, draw, seed = slot.owner, slot.draw(world.seed), world.seed
    number = membership_product(seed, who.index, slot.content_ordinal)
    status = draw.weighted(MEMBERSHIP_STATUSES)
    canceled = status in ("canceled", "expired")
    created = iso_ms(slot.created_ms)
    period_end = iso_ms(slot.created_ms + 30 * DAY_MS)
    currency = person_currency(seed, who)
    price = money_object(in_currency(PRODUCTS[number][1], currency), currency.lower())
    action = MOST_RECENT_ACTION.get(status)
    return {
        "id": token_id("mem", seed, who.index, slot.content_ordinal),
        "status": status,
        "created_at": created,
        "updated_at": created,
        "account": account(seed),
        "affiliate": None,
        "billing_period_days": 30,
        "cancel_at_period_end": status == "active" and draw.chance(0.1),
        "cancel_option": "too_expensive" if canceled else None,
        "canceled_at": iso_ms(slot.created_ms + DAY_MS) if canceled else None,
        "cancellation_reason": "Exam passed 🎉 — thanks!" if canceled else None,
        "collection_method": "charge_automatically",
        "current_period_start": created,
        "current_period_end": period_end,
        "expires_at": None,
        "feedback_option": None,
        "initial_price": price,
        "license_key": None,
        "manage_url": None,  # only for the buyer, or with member:manage
        "member": None,  # the caller's own member row: null on a seller-side read
        "member_id": token_id("mber", seed, who.index),
        "metadata": {},
        "most_recent_action": action,
        "most_recent_action_at": (period_end if action else None),
        "phone_number": None,
        "plan_id": token_id("plan", seed, number),
        "product": {**_product_summary(seed, number), "logo_url": None},
        "product_id": product(seed, number)["id"],
        "promo_code_id": None,
        "renewal_price": None if canceled else price,
        "split_pay_current_payments": None,
        "split_pay_required_payments": None,
        "user_id": token_id("user", seed, who.index),
    }


def _product_summary(seed: int, number: int) -> dict[str, object]:
    return {"id": product(seed, number)["id"], "title": PRODUCTS[number][0]}


def build_member(world: World, person_index: int, first_ms: int) -> Record:
    """The SDK's `Member`: one buyer's relationship with the account, with their address (the
    one every Whop record of theirs carries) and user summary."""
    seed = world.seed
    who = person(seed, person_index)
    draw = Draw(seed, "whop-member", person_index)
    epoch = world.epochs.get((person_index, "whop"), 0)
    joined = iso_ms(first_ms)
    return {
        "id": token_id("mber", seed, person_index),
        "access_level": "customer",
        "account_id": company(seed)["id"],
        "created_at": joined,
        "joined_at": joined,
        "display_name": display_name(seed, who, "whop", epoch) or who.username,
        "email": email_variant(world.address(person_index, "whop"), draw),
        "last_accessed_at": None,
        "most_recent_action": "paid_subscriber",
        "most_recent_action_at": joined,
        "phone_number": who.phone,
        "status": "joined",
        "token_balance": 0.0,
        "usd_total_spent": money_object(Decimal("0.00"), "usd"),
        "user": {
            "id": token_id("user", seed, person_index),
            "name": display_name(seed, who, "whop", epoch),
            "username": who.username,
            "profile_picture": picture(who.username),
        },
    }


def members(world: World) -> list[Record]:
    """Every member of the account: the people with a Whop user, membership or payment, in
    order of their first record."""
    first: dict[int, int] = {}
    for source in ("whop_users", "whop_memberships", "whop_payments"):
        for found in world.entries(source):
            if found.person is not None:
                earliest = first.get(found.person, found.created_ms)
                first[found.person] = min(earliest, found.created_ms)
    order = sorted(first, key=lambda index: (first[index], index))
    return [build_member(world, index, first[index]) for index in order]


def member_email(world: World, person_index: int) -> str:
    """The address a membership reaches through its member (canonical spelling)."""
    return world.address(person_index, "whop")


MEMBERSHIP_NEXT = {"trialing": "active", "active": "past_due", "past_due": "canceled"}


def change_membership(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    record["status"] = MEMBERSHIP_NEXT.get(record["status"], "active")
    record["updated_at"] = iso_ms(in_day(day_ms, slot.draw(world.seed, "changed", change)))


def money_value(amount: Decimal, currency: str, as_object: bool) -> object:
    if as_object:
        return {"amount": str(amount), "currency": currency, "decimals": 2, "display_decimals": 2}
    return float(amount)


def uses_money_object(world: World, draw: Draw) -> bool:
    fmt = world.config.money_format
    return fmt == "money" or (fmt == "mixed" and draw.chance(0.5))


def build_payment(world: World, slot: Slot) -> Record:
    who, draw, seed = slot.owner, slot.draw(world.seed), world.seed
    memberships = len(world.person_table("whop_memberships").person_range(who.index))
    membership = slot.content_ordinal % memberships
    number = membership_product(seed, who.index, membership)
    currency = person_currency(seed, who)
    subtotal = in_currency(PRODUCTS[number][1], currency)
    total = cents(subtotal * Decimal("0.9")) if draw.chance(0.1) else subtotal
    status = draw.weighted(PAYMENT_STATUSES)
    substatus = draw.weighted(PAID_SUBSTATUSES) if status == "paid" else UNPAID_SUBSTATUS[status]
    created = iso_ms(slot.created_ms)
    record: Record = {
        "id": token_id("pay", seed, who.index, slot.content_ordinal),
        "status": status,
        "substatus": substatus,
        "refundable": status == "paid",
        "retryable": status == "open",
        "voidable": status == "open",
        "created_at": created,
        "updated_at": created,
        "paid_at": iso_ms(slot.created_ms + 1000) if status == "paid" else None,
        "last_payment_attempt_at": iso_ms(slot.created_ms + 1000),
        "dispute_alerted_at": None,
        "refunded_at": None,
        "account_id": company(seed)["id"],
        "plan_id": token_id("plan", seed, number),
        "product_id": product(seed, number)["id"],
        "membership_id": token_id("mem", seed, who.index, membership),
        "member_id": token_id("mber", seed, who.index),
        "promo_code_id": None,
        "user": {**user_ref(world, slot), "profile_picture": picture(who.username)},
        "customer_email": email_variant(slot.email, draw),
        "customer_phone": who.phone,
        "currency": currency.lower(),
        "total": total,
        "subtotal": subtotal,
        "usd_total": cents(total * USD_PER_UNIT[currency]),
        "refunded_amount": Decimal("0.00"),
        "amount_after_fees": cents(total * Decimal("0.97")),
        "tax_refunded_amount": Decimal("0.00"),
        "auto_refunded": False,
        "three_ds_verified": False,
        "payments_failed": 1 if status == "uncollectible" else 0,
        "holds": [],
        "payment_rule_matches": [],
        "line_items": [
            {
                "id": token_id("rli", seed, who.index, slot.content_ordinal),
                "label": PRODUCTS[number][0],
                "plan_id": token_id("plan", seed, number),
                "product_id": product(seed, number)["id"],
                "product_title": PRODUCTS[number][0],
                "quantity": 1,
            }
        ],
        "billing_reason": "subscription_create" if slot.ordinal == 0 else "subscription_cycle",
        "payment_method_type": "card",
        "failure_message": "Your card was declined." if status == "uncollectible" else None,
        "metadata": {},
    }
    _refund(record, substatus, slot.created_ms)
    _format_money(record, world, draw)
    return record


def _refund(record: Record, substatus: str, at_ms: int) -> None:
    if substatus == "refunded":
        record["refunded_amount"] = record["total"]
    elif substatus == "partially_refunded":
        record["refunded_amount"] = cents(record["total"] / 2)
    if substatus in ("refunded", "partially_refunded"):
        record["refunded_at"] = iso_ms(at_ms + DAY_MS)
        record["refundable"] = substatus == "partially_refunded"


def _format_money(record: Record, world: World, draw: Draw) -> None:
    """Turn the Decimal money fields into the float or Money-object wire form."""
    as_object = uses_money_object(world, draw)
    for name in MONEY_FIELDS:
        currency = "usd" if name == "usd_total" else record["currency"]
        record[name] = money_value(record[name], currency, as_object)


def amount(value: object) -> Decimal:
    """A wire money field back to Decimal (both variants)."""
    if isinstance(value, dict):
        return Decimal(value["amount"])
    return cents(Decimal(str(value)))


# open/pending/draft payments get paid; paid ones get refunded; the rest get a support note.
def change_payment(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    at = in_day(day_ms, slot.draw(world.seed, "changed", change))
    status, substatus = record["status"], record["substatus"]
    money = {name: amount(record[name]) for name in MONEY_FIELDS}
    as_object = isinstance(record["total"], dict)
    record["updated_at"] = iso_ms(at)
    if status in ("open", "pending", "draft", "unresolved"):
        record.update(status="paid", substatus="succeeded", paid_at=iso_ms(at), refundable=True)
    elif status == "paid" and substatus == "succeeded":
        record.update(substatus="refunded", refunded_at=iso_ms(at), refundable=False)
        money["refunded_amount"] = money["total"]
    else:
        record["metadata"] = {**record["metadata"], f"support_note_{change}": "Customer wrote in"}
        return
    record["last_payment_attempt_at"] = iso_ms(at)
    for name, value in money.items():
        currency = "usd" if name == "usd_total" else record["currency"]
        record[name] = money_value(value, currency, as_object)


def payer_email(record: Record) -> object:
    return record["customer_email"]


def corrupt_user(record: Record, kind: Kind, draw: Draw) -> None:
    record["created_at"] = corrupt_value(kind, draw)  # a user shows no email to spoil


def corrupt_membership(record: Record, kind: Kind, draw: Draw) -> None:
    record["created_at"] = corrupt_value(kind, draw)  # a membership carries no email to spoil


def corrupt_payment(record: Record, kind: Kind, draw: Draw) -> None:
    if kind == "bad_date":
        record["created_at"] = corrupt_value(kind, draw)
    elif kind == "bad_amount":
        bad = corrupt_value(kind, draw)
        for name in ("total", "usd_total"):
            field = record[name]
            if isinstance(field, dict):
                record[name] = {**field, "amount": bad}
            else:
                record[name] = bad
    else:
        record["customer_email"] = corrupt_value(kind, draw)


def user_name(record: Record) -> str | None:
    return record["user"]["name"]


def payment_money(record: Record) -> Money:
    return Money(
        currency=record["currency"].upper(),
        status=record["status"],
        amount=amount(record["total"]),
        refunded=amount(record["refunded_amount"]),
    )


def _date_and_email(record: Record) -> tuple[Kind, ...]:
    return ("bad_date", *EMAIL_KINDS)


def _date_only(record: Record) -> tuple[Kind, ...]:
    return ("bad_date",)


def _all_kinds(record: Record) -> tuple[Kind, ...]:
    return ALL_KINDS


USERS = RecordGenerator(
    name="whop_users",
    build=build_user,
    key=by_id,
    change=change_user,
    corruptions=_date_only,
    corrupt=corrupt_user,
    owner_email=member_email,  # null on the user; the members endpoint has it
    name_of=lambda record: record["name"],
)
MEMBERSHIPS = RecordGenerator(
    name="whop_memberships",
    build=build_membership,
    key=by_id,
    change=change_membership,
    corruptions=_date_only,
    corrupt=corrupt_membership,
    owner_email=member_email,  # the membership names its user; the members endpoint its email
)
PAYMENTS = RecordGenerator(
    name="whop_payments",
    build=build_payment,
    key=by_id,
    change=change_payment,
    corruptions=_all_kinds,
    corrupt=corrupt_payment,
    email=payer_email,
    name_of=user_name,
    money=payment_money,
)
