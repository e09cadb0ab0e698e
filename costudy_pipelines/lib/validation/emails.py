"""Email normalisation: one spelling per person, checked by a real validator (no DNS).

The one normaliser of the project: the sync engine keys people by it and the reverse sync
writes it into the platform (whose `email_address` domain refuses anything not normalised).
An internationalised domain has two spellings, Unicode (`bücher.de`) and ASCII
(`xn--bcher-kva.de`): both become the Unicode one by UTS-46 (the `idna` package), so
`anna@bücher.de` and `anna@xn--bcher-kva.de` are one person.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import idna
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
    """Trimmed, Unicode NFC, lower-case, the domain in its UTS-46 Unicode form, and valid per
    email-validator (syntax only, no DNS).

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


# A dot-atom local part of ASCII letters, digits and _+- and, beyond ASCII, letters and
# numbers of any script (\w, narrowed to Unicode categories L and N below): RFC 5322's base
# case and RFC 6531's, which email-validator always accepts (it refuses only what lies
# beyond them: quoted parts, unsafe or combining characters, dots out of place, lengths).
_PLAIN_ADDRESS = re.compile(r"([\w+-]+(?:\.[\w+-]+)*)@([a-z0-9.-]+)")
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254  # octets of UTF-8


def _plain(candidate: str) -> re.Match[str] | None:
    """The (local part, domain) match when the address is plain enough to skip the full check."""
    plain = _PLAIN_ADDRESS.fullmatch(candidate)
    if plain is None or len(plain[1]) > MAX_LOCAL_PART:
        return None
    if candidate.isascii():
        return plain if len(candidate) <= MAX_ADDRESS else None
    letters_and_numbers = all(
        unicodedata.category(char)[0] in "LN" for char in plain[1] if not char.isascii()
    )
    return plain if letters_and_numbers and len(candidate.encode()) <= MAX_ADDRESS else None


# Emails repeat across records (a person pays many times) and email-validator costs ~45 µs a
# call, mostly on the domain: bounded caches keep memory flat while sparing the repeats.
# (lru_cache keeps results only: an invalid address is checked again each time it comes.)
# 32k addresses hold ~5 MB; at 131k (2**17) a million-record load's RSS grew ~20 MB past a
# 100k one's. A plain address the cache missed costs ~2 µs (its domain stays cached).
@lru_cache(maxsize=1 << 15)
def _validated(candidate: str) -> str:
    candidate = _canonical_domain(candidate)
    plain = _plain(candidate)
    if plain is not None:
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


def _canonical_domain(candidate: str) -> str:
    """The address with an internationalised domain in its one Unicode spelling (UTS-46).

    ASCII domains without an `xn--` label, all but a few, are already canonical: untouched.
    """
    local, at, domain = candidate.rpartition("@")
    if not at or (domain.isascii() and "xn--" not in domain):
        return candidate
    try:
        return f"{local}@{_unicode_domain(domain)}"
    except idna.IDNAError as exc:
        raise InvalidEmail(f"malformed internationalised email domain ({exc})", candidate) from None


@lru_cache(maxsize=1 << 14)
def _unicode_domain(domain: str) -> str:
    return idna.decode(domain, uts46=True)


@lru_cache(maxsize=1 << 14)
def _validate_domain(domain: str) -> None:
    validate_email(f"x@{domain}", check_deliverability=False)
