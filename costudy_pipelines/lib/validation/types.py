"""Field types shared by the source models: the real variants of money, time and text.

API models use pydantic's native (Rust) parsing wherever it covers the variants — ISO-8601
and epoch timestamps, float or decimal-string money, numbers as text — and keep Python
validators for the human-typed sources (sheets, CSV), where volume is small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator, ConfigDict, StringConstraints, with_config
from typing_extensions import TypedDict


class RecordRejected(ValueError):
    """Raised by a validator for a record that cannot be loaded; the message is the reason."""


# Every source schema: unknown fields ignored, text trimmed, numbers accepted as text (ids).
SOURCE_CONFIG = ConfigDict(extra="ignore", str_strip_whitespace=True, coerce_numbers_to_str=True)
source_schema = with_config(SOURCE_CONFIG)


def as_utc(value: datetime) -> datetime:
    """Naive timestamps from the sources are UTC (Whop, GHL, the databases all say so)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# pydantic parses ISO-8601 strings and epoch numbers (seconds, or milliseconds past 2e10).
Timestamp = Annotated[datetime, AfterValidator(as_utc)]
OptionalTimestamp = Annotated[datetime, AfterValidator(as_utc)] | None


def id_text(value: Any) -> Any:
    """Ids as the source holds them, as text: database UUIDs become their canonical string."""
    return str(value) if isinstance(value, UUID) else value


# Numbers become text through the schema config; blank ids are refused, and so are ids too
# long for a unique index entry (which would fail the whole session instead of one record).
MAX_ID_LENGTH = 1000
ExternalId = Annotated[
    str, BeforeValidator(id_text), StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)
]


@dataclass(frozen=True)
class AmountBounds:
    """The amounts a record may carry; beyond them the record is rejected with the reason.

    One absurd amount (the text "1e309" is a 310-digit number) would swamp every revenue view,
    so the magnitude and the decimal places are capped. Validators take their bounds
    (`amount_bounds=`); the defaults suit any currency's prices.
    """

    max_magnitude: Decimal = Decimal("1e12")
    max_decimals: int = 8

    def check(self, amount: Decimal, field: str, value: Any) -> Decimal:
        if not amount.is_finite():
            raise RecordRejected(f"{field}: not a finite amount (got {value!r})")
        if abs(amount) > self.max_magnitude:
            raise RecordRejected(
                f"{field}: {_shown(value)} is beyond the bound of {self.max_magnitude:,f} "
                "an amount may reach"
            )
        exponent = amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > self.max_decimals:
            raise RecordRejected(
                f"{field}: {_shown(value)} has {-exponent} decimal places, more than the "
                f"{self.max_decimals} an amount may have"
            )
        return amount


DEFAULT_AMOUNT_BOUNDS = AmountBounds()


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# A float, an int, a decimal string, a database's Decimal, or a Money object ({"amount": ...,
# "currency": ...}), kept as sent: money_amount reads each shape and rejects any other with
# the reason (pydantic's own Decimal costs ~3 µs a field, the conversion below a tenth of it).
Money = Any


def money_amount(
    value: Any, field: str, bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS
) -> Decimal | None:
    """The exact amount (floats via their shortest repr: 19.99, not 19.989999999999998)."""
    if isinstance(value, dict):
        if "amount" not in value:
            keys = ", ".join(sorted(map(str, value))) or "none"
            raise RecordRejected(f"{field}: a Money object without an amount (its keys: {keys})")
        field, value = f"{field}.amount", value["amount"]
        if value is None:
            raise RecordRejected(f"{field}: a Money object whose amount is null")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, float | int | str | Decimal):
        raise RecordRejected(
            f"{field}: not an amount (got a {type(value).__name__}: {_shown(value)})"
        )
    try:
        amount = _decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise RecordRejected(f"{field}: not a decimal amount (got {_shown(value)})") from None
    return bounds.check(amount, field, value)


# Prices repeat across a million payments; Decimals are immutable, so the cache is safe to
# share. typed: 1 and 1.0 are equal keys but must stay distinct values.
@lru_cache(maxsize=1 << 12, typed=True)
def _decimal(value: float | int | str | Decimal) -> Decimal:
    return Decimal(repr(value) if isinstance(value, float) else value)


@source_schema
class IdRef(TypedDict, total=False):
    """An expanded reference ({"id": ..., ...}) where older APIs send the bare id."""

    id: str | None


RefId = str | IdRef | None


def ref_id(value: str | dict | None) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def join_name(*parts: str | None) -> str | None:
    """'First' + 'Last' → 'First Last'; None when every part is empty."""
    joined = " ".join(part for part in parts if part)
    return joined or None


# -- human-typed sources (Google Sheets, CSV exports) ---------------------------------------


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return value


# A cell: trimmed, blank → None, numbers (numericised by gspread) → text.
CellText = Annotated[str | None, BeforeValidator(_blank_to_none)]

_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_SPACES = str.maketrans("", "", " \u00a0")
_SYMBOL = re.compile(r"[$€£¥]")
# What a currency symbol typed in an amount means when the row names no currency, and the
# currencies it is also written for (a Canadian price may well be typed "$12").
SYMBOL_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
SYMBOL_ALSO = {"$": frozenset({"CAD", "AUD", "NZD", "SGD", "HKD", "MXN"}), "¥": frozenset({"CNY"})}


def parse_amount_text(
    value: Any, field: str, bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS
) -> tuple[Decimal | None, str | None]:
    """An amount typed by a person ('49.99', '$1,234.50', '1 234.50', '€4.20', 49.99) and the
    currency symbol typed with it (None when none).

    A comma is taken as a thousands separator only in the 1,234,567.89 pattern; anything else
    ambiguous ('12,5') is refused rather than guessed.
    """
    if isinstance(value, bool):
        raise RecordRejected(f"{field}: an amount, not a boolean (got {value!r})")
    if value is None:
        return None, None
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip().translate(_SPACES)
    symbols = set(_SYMBOL.findall(text))
    if len(symbols) > 1:
        raise RecordRejected(f"{field}: two currency symbols in one amount (got {value!r})")
    symbol = symbols.pop() if symbols else None
    text = _SYMBOL.sub("", text)
    if not text:
        return None, symbol
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RecordRejected(f"{field}: not an amount (got {_shown(value)})") from None
    return bounds.check(amount, field, value), symbol


def human_money(
    record: dict[str, Any],
    fields: tuple[str, ...],
    currency: str | None,
    bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS,
) -> tuple[tuple[Decimal | None, ...], str | None]:
    """A row's amount cells typed by people, and its currency (upper case): the row's own,
    else the one the amounts' symbols name. A symbol that contradicts the row's currency (or
    another amount's symbol) rejects the row: €4.20 must not count as 4.20 dollars."""
    currency = currency.upper() if currency else None
    decided_by = "the row's currency"
    amounts = []
    for field in fields:
        amount, symbol = parse_amount_text(record.get(field), field, bounds)
        amounts.append(amount)
        if symbol is None:
            continue
        if currency is None:
            currency, decided_by = SYMBOL_CURRENCY[symbol], f"the {symbol} of {field}"
        elif currency != SYMBOL_CURRENCY[symbol] and currency not in SYMBOL_ALSO.get(symbol, ()):
            raise RecordRejected(
                f"{field}: {record[field]!r} is written in {symbol} "
                f"({SYMBOL_CURRENCY[symbol]}), but {decided_by} says {currency}"
            )
    return tuple(amounts), currency


# Google Sheets (like Excel) counts days from 1899-12-30; the fraction is the time of day.
SHEETS_EPOCH = datetime(1899, 12, 30)
MAX_SERIAL_DAY = 2_958_465  # 9999-12-31
_SERIAL = re.compile(r"^\d{1,7}(\.\d+)?$")


def serial_date(value: float | int | str, time_zone: tzinfo = UTC) -> datetime | None:
    """A spreadsheet serial-number date (43831 = 2020-01-01, 43831.5 its noon) in the sheet's
    time zone, or None when `value` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _SERIAL.match(value):
            return None
        value = float(value)
    if not 1 <= value <= MAX_SERIAL_DAY:
        return None
    # whole milliseconds: a serial's fraction of a day is rarely exact in binary
    local = SHEETS_EPOCH + timedelta(milliseconds=round(value * 86_400_000))
    return local.replace(tzinfo=time_zone)


def parse_human_time(
    value: Any, formats: tuple[str, ...], time_zone: tzinfo = UTC
) -> datetime | None:
    """Dates typed by people: ISO-8601, a spreadsheet serial number, then the configured
    strptime formats. A date without an offset is wall time in `time_zone` (a spreadsheet's
    own time zone; UTC where the source says nothing)."""
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=time_zone)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=time_zone)
    if isinstance(value, int | float | str) and (serial := serial_date(value, time_zone)):
        return serial
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for fmt in formats:
            try:
                moment = datetime.strptime(text, fmt)
            except ValueError:
                continue
            break
        else:
            raise ValueError(
                f"not a date: {value!r} (expected ISO-8601, a spreadsheet serial number or one "
                f"of {', '.join(formats)})"
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=time_zone)
