"""Email normalisation: one spelling per person, checked by a real validator (no DNS)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    """The value is not a usable email address; the message says why."""


def normalise_email(raw: object) -> str:
    """Trimmed, Unicode NFC, lower-case, and valid per email-validator (syntax only, no DNS).

    Raises InvalidEmail with a reason an operator can act on. The caller keeps the raw value.
    """
    if raw is None:
        raise InvalidEmail("no email")
    if not isinstance(raw, str):
        raise InvalidEmail(f"email is a {type(raw).__name__}, not text")
    candidate = unicodedata.normalize("NFC", raw.strip()).lower()
    if not candidate:
        raise InvalidEmail("email is empty")
    return _validated(candidate)


# Emails repeat across records (a person pays many times) and the validator costs ~45 µs a
# call: a bounded cache keeps memory flat while sparing the repeats.
@lru_cache(maxsize=1 << 17)
def _validated(candidate: str) -> str:
    try:
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"malformed email {candidate!r} ({exc})") from None
    return candidate
