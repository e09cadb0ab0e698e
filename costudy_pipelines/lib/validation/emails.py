"""Email normalisation: one spelling per person, checked by a real validator (no DNS).

The one normaliser of the project: the sync engine keys people by it and the reverse sync
writes it into the platform (whose `email_address` domain refuses anything not normalised).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    """The value is not a usable email address.

    `reason` says why without the address, for where addresses must not be shown (the reverse
    sync's dead letters end up in Dagster UI metadata); `address` is the offending value as
    normalised (None when there is none). str() names both, for the sync engine's rejects,
    which are stored with the raw record anyway.
    """

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(reason if address is None else f"{reason}: {address!r}")
        self.reason = reason
        self.address = address


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


def optional_email(raw: object) -> str | None:
    """Like normalise_email, but an absent (None or blank) address is None rather than an error."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return normalise_email(raw)


# A plain ASCII dot-atom local part: RFC 5322's base case, which email-validator always
# accepts (it only refuses local parts beyond it: quoted, Unicode, dots out of place, > 64).
_PLAIN_ADDRESS = re.compile(r"([a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)@([a-z0-9.-]+)")
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254


# Emails repeat across records (a person pays many times) and email-validator costs ~45 µs a
# call, mostly on the domain: bounded caches keep memory flat while sparing the repeats.
# (lru_cache keeps results only: an invalid address is checked again each time it comes.)
@lru_cache(maxsize=1 << 17)
def _validated(candidate: str) -> str:
    plain = _PLAIN_ADDRESS.fullmatch(candidate)
    if plain and len(plain[1]) <= MAX_LOCAL_PART and len(candidate) <= MAX_ADDRESS:
        try:  # the domain rules stay email-validator's, once per domain
            _validate_domain(plain[2])
        except EmailNotValidError as exc:
            raise InvalidEmail(f"malformed email domain ({exc})", candidate) from None
        return candidate
    try:
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"malformed email ({exc})", candidate) from None
    return candidate


@lru_cache(maxsize=1 << 14)
def _validate_domain(domain: str) -> None:
    validate_email(f"x@{domain}", check_deliverability=False)
