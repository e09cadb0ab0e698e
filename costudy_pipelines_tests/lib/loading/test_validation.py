"""Validators accept the real variants of each source and reject the rest with reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from email_validator import EmailNotValidError, validate_email

from costudy_pipelines.lib.validation import (
    InvalidEmail,
    Reject,
    ValidRecord,
    normalise_email,
    validate,
)
from costudy_pipelines.lib.validation.emails import optional_email
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.elective.records import ElectiveColumns, ElectiveRowValidator
from costudy_pipelines.sources.ghl.spec import ghl_contacts as spec_ghl_contacts
from costudy_pipelines.sources.sheets.spec import sheet_rows as spec_sheet_rows
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines_tests.lib.loading.records import ghl_contact, money, sheet_row, whop_payment

WHOP = spec_whop_payments().validator


def values(record: ValidRecord | Reject, validator=WHOP) -> dict:
    assert isinstance(record, ValidRecord), record
    return dict(zip((c.name for c in validator.columns), record.values, strict=True))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(19.99, Decimal("19.99")), (money("19.99"), Decimal("19.99")), ("7.10", Decimal("7.10"))],
)
def test_whop_money_as_float_money_object_or_decimal_string(amount, expected):
    typed = values(validate(WHOP, whop_payment("pay_1", "a@b.co", amount=amount)))
    assert typed["amount"] == expected
    assert typed["amount_usd"] == expected


@pytest.mark.parametrize(
    "created_at",
    [1735787045, 1735787045000, "2025-01-02T03:04:05Z", "2025-01-02T04:04:05+01:00"],
)
def test_timestamps_iso_or_epoch_seconds_or_milliseconds(created_at):
    typed = values(validate(WHOP, whop_payment("pay_1", "a@b.co", created_at=created_at)))
    assert typed["occurred_at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_payer_email_under_user_customer_email_or_user_email():
    v1_nested = whop_payment("pay_1", "Nested@X.io")
    v1_customer = {**whop_payment("pay_2", "x"), "user": "user_9", "customer_email": "c@x.io"}
    v5 = {"id": "pay_3", "created_at": 1735787045, "final_amount": 5, "user_email": "v5@x.io"}
    emails = [validate(WHOP, raw).email for raw in (v1_nested, v1_customer, v5)]
    assert emails == ["nested@x.io", "c@x.io", "v5@x.io"]
    assert values(validate(WHOP, v1_customer))["whop_user_id"] == "user_9"


def test_malformed_fields_are_rejected_with_every_reason():
    raw = {"id": "pay_9", "created_at": "yesterday", "total": "12,5x", "user_email": "a@b.co"}
    result = validate(WHOP, raw)
    assert isinstance(result, Reject)
    assert "created_at" in result.reason and "yesterday" in result.reason
    assert result.key == "pay_9" and result.raw is raw


def test_bad_money_string_is_rejected_not_guessed():
    result = validate(WHOP, whop_payment("pay_1", "a@b.co", amount="12,5"))
    assert isinstance(result, Reject)
    assert "total: not a decimal amount" in result.reason


@pytest.mark.parametrize(
    ("email", "reason"),
    [(None, "no email"), ("   ", "no email"), ("no-at-sign", "malformed email")],
)
def test_records_without_usable_email_are_rejected(email, reason):
    result = validate(WHOP, whop_payment("pay_1", email))
    assert isinstance(result, Reject)
    assert reason in result.reason and "cannot tie the record to a person" in result.reason


def test_email_normalisation_trims_lowercases_and_composes_unicode():
    decomposed = "  Jose\u0301.Muller@Example.COM "
    assert normalise_email(decomposed) == "jos\u00e9.muller@example.com"
    assert normalise_email("ANA@EXAMPLE.COM") == normalise_email(" ana@example.com\t")


@pytest.mark.parametrize(
    "email",
    [
        "plain@example.com",
        "a.b+tag@sub.example.co.uk",
        "x@localhost",
        "x@example.local",
        "x@123.456",
        "a..b@example.com",
        ".a@example.com",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@example..com",
        f"{'a' * 65}@example.com",
        f"a@{'b' * 64}.com",
        f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 50}.com",
        "a@xn--bcher-kva.de",
        "a@b.c",
        "user@[192.168.0.1]",
        '"quoted"@example.com',
        "josé@example.com",
        # Unicode local parts: letters and numbers of any script take the fast path
        "chloé.müller@example.com",
        "δοκιμή@example.com",
        "用户²@example.com",
        "ⅻ.ǆ_ü+tag@example.com",
        "٣٤@example.com",
        "İstanbul@example.com",  # lower-cases to i + combining dot
        "e\u0301mile@example.com",  # composes to é
        "x\u0301y@example.com",  # no composed form: a combining mark stays
        "\u0301a@example.com",
        "a\u200bb@example.com",  # zero-width space (format)
        "x\u00a0y@example.com",  # no-break space
        "a\u2028b@example.com",  # line separator
        "a.ü.@example.com",
        "ü..a@example.com",
        "δοκιμή@παράδειγμα.δοκιμή",
        f"{'é' * 64}@example.com",
        f"{'é' * 65}@example.com",
        f"{'é' * 60}@{'b' * 63}.{'c' * 63}.{'d' * 60}.com",  # < 254 characters, > 254 octets
    ],
)
def test_email_fast_path_agrees_with_email_validator(email):
    try:
        validate_email(email, check_deliverability=False)
        expected_valid = True
    except EmailNotValidError:
        expected_valid = False
    try:
        normalise_email(email)
        valid = True
    except InvalidEmail:
        valid = False
    assert valid == expected_valid


@pytest.mark.parametrize("email", ["Not-An-Email", " a@Example..com ", "x@localhost", "a@b@c.io"])
def test_invalid_email_reason_leaves_the_address_out_and_the_message_names_it(email):
    with pytest.raises(InvalidEmail) as caught:
        normalise_email(email)
    address = email.strip().lower()
    assert caught.value.address == address
    assert address not in caught.value.reason and email.strip() not in caught.value.reason
    assert str(caught.value) == f"{caught.value.reason}: {address!r}"


def test_optional_email_is_none_when_absent_and_strict_otherwise():
    assert optional_email(None) is None and optional_email("  ") is None
    assert optional_email(" Bo@X.io ") == "bo@x.io"
    with pytest.raises(InvalidEmail, match="malformed email"):
        optional_email("bo")


def test_ghl_contact_name_parts_tags_and_location():
    validator = spec_ghl_contacts().validator
    result = validate(validator, ghl_contact("c1", "Ann@X.io", first="Ann", last="Lee"))
    assert result.name == "Ann Lee" and result.email == "ann@x.io" and result.key == "c1"
    typed = values(result, validator)
    assert typed["location_id"] == "loc_1" and typed["tags"] == ["lead"]
    missing_location = {k: v for k, v in ghl_contact("c2", "b@x.io").items() if k != "locationId"}
    assert "locationId" in validate(validator, missing_location).reason


def test_sheet_rows_use_configured_column_names():
    from costudy_pipelines.sources.sheets.records import SheetColumns

    columns = SheetColumns(email="E-mail address", name=None, first_name="First", amount="Paid")
    validator = spec_sheet_rows("sheet1", "Sheet1", columns).validator
    row = {"e-mail ADDRESS ": "x@y.io", "First": "Bo", "Paid": "$1,234.50", "Date": "03/01/2025"}
    result = validate(validator, row)
    typed = values(result, validator)
    assert result.name == "Bo" and typed["amount"] == Decimal("1234.50")
    assert typed["occurred_at"] == datetime(2025, 3, 1, tzinfo=UTC)
    assert "sheet1" in typed["source_url"]
    assert "not an amount" in validate(validator, {**row, "Paid": "lots"}).reason


CURRENT_LAYOUT = {
    "Purchase Date (UTC)": "2025-01-02 10:00:00",
    "Student Name": "Bo Li",
    "Product Purchased": "Typing Pro",
    "Currency": "USD",
    "Order Total": "1,200.00",
    "Term (months)": "12",
    "First Payment": "100.00",
    "Fees": "30.00",
    "Net Amount": "1,170.00",
    "Type": "Funding",
    "Status": "Approved",
}
OLDER_LAYOUT = {
    "Purchase Date (UTC)": "01/02/2025",
    "Customer": "Bo Li",
    "Checkout": "Typing Pro",
    "Type": "In-House",
    "Term": "12",
    "Order Total": "1200",
    "Fees": "30",
    "Net Amount": "1170",
    "Status": "Approved",
}


@pytest.mark.parametrize("layout", [CURRENT_LAYOUT, OLDER_LAYOUT])
def test_elective_both_layouts_with_an_email_column(layout):
    validator = ElectiveRowValidator()
    result = validate(validator, {**layout, "Email": "Bo@Li.io"})
    typed = values(result, validator)
    assert result.email == "bo@li.io" and result.name == "Bo Li"
    assert typed["product"] == "Typing Pro" and typed["amount"] == Decimal("1200")


def test_elective_rows_without_email_are_rejected_with_the_policy_reason():
    result = validate(ElectiveRowValidator(), CURRENT_LAYOUT)
    assert isinstance(result, Reject)
    assert "no email column" in result.reason and "cannot tie the row to a person" in result.reason
    assert "ElectiveColumns.email" in result.reason
    empty_cell = validate(ElectiveRowValidator(), {**CURRENT_LAYOUT, "Email": " "})
    assert "no email; cannot tie the record to a person" in empty_cell.reason


def test_elective_mapping_names_a_custom_email_column():
    validator = ElectiveRowValidator(ElectiveColumns(email=("Buyer E-mail",)))
    assert validate(validator, {**OLDER_LAYOUT, "Buyer E-mail": "z@z.io"}).email == "z@z.io"


def test_sheet_row_from_gspread_numericised_values():
    validator = spec_sheet_rows("s", "w").validator
    result = validate(validator, sheet_row("n@x.io", "Nia", amount=12.5))
    assert values(result, validator)["amount"] == Decimal("12.5")


@pytest.mark.parametrize("pay_id", ["", "   ", "x" * 1001])
def test_blank_or_oversized_ids_are_rejected(pay_id):
    result = validate(WHOP, whop_payment(pay_id, "a@b.co"))
    assert isinstance(result, Reject) and result.reason.startswith("id: ")
    assert "should have" in result.reason


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("43831", datetime(2020, 1, 1, tzinfo=UTC)),  # a date cell formatted as a number
        (43831, datetime(2020, 1, 1, tzinfo=UTC)),  # numericised by gspread
        ("45352.75", datetime(2024, 3, 1, 18, 0, tzinfo=UTC)),  # the fraction is the time
        ("1", datetime(1899, 12, 31, tzinfo=UTC)),
    ],
)
def test_sheet_serial_number_dates(cell, expected):
    validator = spec_sheet_rows("s", "w").validator
    result = validate(validator, {"Email": "a@b.co", "Date": cell})
    assert values(result, validator)["occurred_at"] == expected


def test_sheet_dates_are_wall_time_in_the_spreadsheets_time_zone():
    validator = spec_sheet_rows("s", "w").validator
    validator.set_time_zone("America/New_York")
    new_york = ZoneInfo("America/New_York")
    for cell, expected in [
        ("2024-03-01 09:00", datetime(2024, 3, 1, 14, 0, tzinfo=UTC)),  # EST: UTC-5
        ("07/01/2024", datetime(2024, 7, 1, 4, 0, tzinfo=UTC)),  # EDT: UTC-4
        ("45352.375", datetime(2024, 3, 1, 9, 0, tzinfo=new_york)),
        ("2024-03-01T09:00:00+01:00", datetime(2024, 3, 1, 8, 0, tzinfo=UTC)),  # offset wins
    ]:
        result = validate(validator, {"Email": "a@b.co", "Date": cell})
        assert values(result, validator)["occurred_at"] == expected, cell


@pytest.mark.parametrize("cell", ["99999999", "0", "-3", "43831,5", "1e5"])
def test_numbers_that_are_not_serial_dates_are_still_refused(cell):
    result = validate(spec_sheet_rows("s", "w").validator, {"Email": "a@b.co", "Date": cell})
    assert isinstance(result, Reject) and "not a date" in result.reason


def test_an_unknown_time_zone_is_named():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        spec_sheet_rows("s", "w").validator.set_time_zone("Mars/Olympus")


def test_whop_payments_in_the_pinned_shape_link_by_customer_email():
    """The shape the client pins: the payer in customer_email, flat ids, Money objects."""
    world = World(WorldConfig(seed=3, people=60))
    checked = 0
    for entry in world.entries("whop_payments"):
        if entry.reject:
            continue
        record = entry.record
        result = validate(WHOP, record)
        assert isinstance(result, ValidRecord), result
        typed = values(result, WHOP)
        assert result.email == normalise_email(record["customer_email"])
        assert typed["membership_id"] == record["membership_id"]
        assert typed["product_id"] == record["product_id"]
        assert typed["whop_user_id"] == record["user"]["id"]
        assert typed["amount"] == Decimal(record["total"]["amount"])
        checked += 1
    assert checked > 20
