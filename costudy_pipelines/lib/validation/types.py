"""Field types shared by the source models: the real variants of money, time and text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


def _as_utc(value: datetime) -> datetime:
    """Naive timestamps from the sources are UTC (Whop, GHL, the databases all say so)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# pydantic parses ISO-8601 strings and epoch numbers itself (seconds, or milliseconds past
# 2e10), in Rust: the fast path. Naive values become UTC.
Timestamp = Annotated[datetime, AfterValidator(_as_utc)]
OptionalTimestamp = Annotated[Timestamp | None, BeforeValidator(_blank_to_none)]


def _unwrap_money(value: Any) -> Any:
    """Whop money is a float in one SDK release and {"amount": "<decimal string>", ...} later.

    The Money object's amount is a decimal string in major units ("49.99"), like the float.
    """
    if isinstance(value, Mapping):
        if "amount" not in value:
            raise ValueError("money object without 'amount'")
        return value["amount"]
    if isinstance(value, bool):
        raise ValueError("money must be a number, not a boolean")
    if isinstance(value, float):
        # repr gives the shortest decimal that round-trips: 19.99, not 19.989999999999998
        return Decimal(repr(value))
    return _blank_to_none(value)


Money = Annotated[Decimal | None, BeforeValidator(_unwrap_money)]

_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_CURRENCY_MARKS = str.maketrans("", "", "$€£¥ \u00a0")


def parse_amount_text(value: Any) -> Decimal | None:
    """Amounts typed by people (sheets, CSV exports): '49.99', '$1,234.50', '1 234.50', 49.99.

    A comma is taken as a thousands separator only in the 1,234,567.89 pattern; anything else
    ambiguous ('12,5') is refused rather than guessed.
    """
    if isinstance(value, bool):
        raise ValueError("amount must be a number, not a boolean")
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip().translate(_CURRENCY_MARKS)
    if not text:
        return None
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount


TextAmount = Annotated[Decimal | None, BeforeValidator(parse_amount_text)]


def parse_human_time(value: Any, formats: tuple[str, ...]) -> datetime | None:
    """Dates typed by people: ISO-8601 first, then the configured strptime formats."""
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    try:
        return _as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    for fmt in formats:
        try:
            return _as_utc(datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise ValueError(f"not a date: {value!r} (expected ISO-8601 or one of {', '.join(formats)})")


def _strip_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # ids and codes that a sheet or driver numericised
    return value


# Free text from a source: trimmed, blank → None. Ids may arrive as numbers (database keys).
Text = Annotated[str | None, BeforeValidator(_strip_text)]


def _required_id(value: Any) -> str:
    value = _strip_text(value)
    if not isinstance(value, str):
        raise ValueError("an id is required")
    return value


ExternalId = Annotated[str, BeforeValidator(_required_id)]


def _ref_id(value: Any) -> Any:
    """A reference that is an id string, or an expanded object carrying the id (Whop expand)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return _strip_text(value)


RefId = Annotated[str | None, BeforeValidator(_ref_id)]


def join_name(*parts: str | None) -> str | None:
    """'First' + 'Last' → 'First Last'; None when every part is empty."""
    joined = " ".join(part for part in parts if part)
    return joined or None
