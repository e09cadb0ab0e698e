"""E-mail addresses as the platform stores them: trimmed, lower-case, Unicode NFC, and valid.

The website keeps addresses as visitors typed them; the platform's `email_address` domain
refuses anything not normalised. An address that does not validate is a dead letter with the
validator's reason, never silently rewritten into something else.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    """The address is missing or malformed; the message says why (without the address)."""


def normalise_email(raw: str | None) -> str:
    """The normalised address, or InvalidEmail."""
    if raw is None or not raw.strip():
        raise InvalidEmail("no e-mail address")
    address = unicodedata.normalize("NFC", raw.strip()).lower()
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"invalid e-mail address: {exc}") from None
    return address


def optional_email(raw: str | None) -> str | None:
    """Like normalise_email, but an absent (empty) address is None rather than an error."""
    if raw is None or not raw.strip():
        return None
    return normalise_email(raw)
