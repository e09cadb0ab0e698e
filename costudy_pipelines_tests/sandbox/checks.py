"""Independent readers of the world's records, written from the API shapes (not from the world's
code), so the tests can check what the world claims about its records."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from email_validator import EmailNotValidError, validate_email

# source -> where the email, amounts and dates are, as paths into the record
EMAIL_PATHS = {
    "whop_payments": [("user", "email"), ("customer_email",)],
    "ghl_contacts": [("email",)],
    "votes": [("email",)],
    "demo_requests": [("email",)],
    "email_subscriptions": [("email",)],
    "contact_submissions": [("email",)],
    "analytics_events": [("email",)],
    "enrollments": [("user_email",)],
    "orders": [("user_email",)],
}
AMOUNT_PATHS = {"whop_payments": [("total",), ("usd_total",)], "orders": [("amount",)]}
DATE_PATHS = {
    "whop_users": [("created_at",)],
    "whop_memberships": [("created_at",)],
    "whop_payments": [("created_at",)],
    "ghl_contacts": [("dateAdded",)],
}
SHEET_COLUMNS = {  # worksheet -> (email, amount, date) columns
    "Payments": ("Email", "Amount", "Date"),
    "Upsells Q1": ("Email", "Amount", "Date"),
    "Form responses 1": ("Email Address", "Amount Paid", "Timestamp"),
}
ELECTIVE_EMAIL = {"orders": "Student Email", "orders_legacy": "Customer Email"}


def dig(record: dict, path: tuple[str, ...]) -> object:
    for part in path:
        if not isinstance(record, dict) or part not in record:
            return KeyError
        record = record[part]
    return record


def email_problem(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "missing_email"
    try:
        validate_email(value.strip().lower(), check_deliverability=False)
    except EmailNotValidError:
        return "invalid_email"
    return None


def amount_problem(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("amount")
    if isinstance(value, float):
        return None
    try:
        Decimal(str(value))
    except InvalidOperation:
        return "bad_amount"
    return None


def date_problem(value: object) -> str | None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return "bad_date"
    return None


def problems(source: str, record: dict) -> set[str]:
    """Every reason a validating sync would reject this record for."""
    found: set[str] = set()
    if source == "sheet_rows":
        email, amount, date = SHEET_COLUMNS[record["worksheet"]]
        values = record["values"]
        cells = [(email_problem, values[email]), (amount_problem, values[amount])]
        cells.append((date_problem, values[date]))
    elif source == "elective_rows":
        values = record["values"]
        cells = [
            (amount_problem, values["Order Total"]),
            (date_problem, values["Purchase Date (UTC)"]),
        ]
        if record["layout"] in ELECTIVE_EMAIL:
            cells.append((email_problem, values[ELECTIVE_EMAIL[record["layout"]]]))
    else:
        emails = [dig(record, path) for path in EMAIL_PATHS.get(source, [])]
        present = [value for value in emails if value is not KeyError]
        cells = [(email_problem, value) for value in present[:1]]
        cells += [(amount_problem, dig(record, p)) for p in AMOUNT_PATHS.get(source, [])]
        cells += [(date_problem, dig(record, p)) for p in DATE_PATHS.get(source, [])]
    for check, value in cells:
        problem = check(value)
        if problem:
            found.add(problem)
    return found


def raw_email(source: str, record: dict) -> str | None:
    """The email as written (None where the record has no email field)."""
    if source == "sheet_rows":
        return record["values"][SHEET_COLUMNS[record["worksheet"]][0]]
    if source == "elective_rows":
        column = ELECTIVE_EMAIL.get(record["layout"])
        return record["values"][column] if column else None
    for path in EMAIL_PATHS.get(source, []):
        value = dig(record, path)
        if value is not KeyError:
            return value
    return None
