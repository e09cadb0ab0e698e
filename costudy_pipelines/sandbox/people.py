"""The people of the world: names (Unicode and SQL metacharacters on purpose), emails, styles.

A person is a pure function of (seed, index). Each source shows the person's name in its own
style (GoHighLevel keeps first/last, Whop often only a first name, sheets "Last, First"), so
the same person carries different names in different sources and the warehouse's source
priority decides which one wins. A rename (advance_day) changes the last name in one source.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from costudy_pipelines.sandbox.draw import Draw, Weighted

FIRST_NAMES = (
    "Zoë", "José", "Ana", "Li", "Wei", "Mia", "Noah", "Olivia", "Liam", "Emma", "Ava", "Lucas",
    "Sofía", "Chloé", "Mateo", "Aarav", "Yuki", "Fatima", "Omar", "Björn", "Ingrid", "Søren",
    "Zofia", "Łukasz", "Amélie", "Jürgen", "Priya", "Kwame", "Aoife", "Siobhán", "D'Arcy",
    "Jean-Luc", "Mary Ann", "Hana 🌸", "明", "Дмитрий", "Александра", "Γιώργος", "محمد",
    "Robert'); DROP TABLE users;--",
)  # fmt: skip
LAST_NAMES = (
    "O'Brien", "Smith", "Müller", "García", "Nguyễn", "李", "王", "Kowalski", "Ødegaard",
    "Dubois", "Johnson", "Brown", "Rossi", "Silva", "Tanaka", "Kim", "Patel", "Okafor",
    "MacDonald", "van der Berg", "de la Cruz", "Smith-Jones", "Ivanov", "Иванова", "Öztürk",
    "Nørgaard", "Costa 🎉", "Back\\slash", "100%_Sure", "\"; DROP TABLE users; --",
    "Tab\tSeparated", "Quote \"Doc\" Holliday", "Ng", "Lee", "Wright", "Hughes", "Yılmaz",
)  # fmt: skip
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "students.example.edu")

BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = BASE36[digit] + digits
        if number == 0:
            return digits


@lru_cache(maxsize=1024)
def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only (for email local parts and usernames)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in folded.lower() if char.isalnum())


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    first: str
    last_index: int
    email: str  # canonical: lower-case, trimmed; every source shows a variant of it
    username: str
    phone: str

    @property
    def last(self) -> str:
        return LAST_NAMES[self.last_index]

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def last_after_renames(self, epoch: int) -> str:
        """The last name after `epoch` renames (7 and the pool size are coprime: each differs)."""
        return LAST_NAMES[(self.last_index + 7 * epoch) % len(LAST_NAMES)]


@lru_cache(maxsize=8192)
def person(seed: int, index: int) -> Person:
    draw = Draw(seed, "person", index)
    first = draw.choice(FIRST_NAMES)
    last_index = draw.below(len(LAST_NAMES))
    slugs = [s for s in (ascii_slug(first), ascii_slug(LAST_NAMES[last_index])) if s] or ["user"]
    suffix = base36(index)
    email = f"{'.'.join(slugs)}.{suffix}@{draw.choice(DOMAINS)}"
    phone = f"+1{draw.between(201, 989)}{draw.between(200, 999)}{draw.between(0, 9999):04d}"
    return Person(index, first, last_index, email, f"{''.join(slugs)[:24]}{suffix}", phone)


# How each source family writes a name. Weights are per person; ~half of the people in two
# families therefore see two different spellings of their name.
GHL_STYLES = Weighted((("plain", 0.85), ("lower", 0.15)))
WHOP_STYLES = Weighted(
    (("plain", 0.6), ("first", 0.15), ("lower", 0.1), ("upper", 0.1), ("none", 0.05))
)
SHEET_STYLES = Weighted((("plain", 0.5), ("last_first", 0.3), ("upper", 0.15), ("blank", 0.05)))
PLAIN = Weighted((("plain", 1.0),))
STYLES = {"ghl": GHL_STYLES, "whop": WHOP_STYLES, "sheets": SHEET_STYLES}


@lru_cache(maxsize=65536)
def name_style(seed: int, family: str, index: int) -> str:
    return Draw(seed, "style", family, index).weighted(STYLES.get(family, PLAIN))


def first_last(seed: int, who: Person, family: str, epoch: int) -> tuple[str, str]:
    """The (first, last) name a family shows after `epoch` renames, in the family's style."""
    style = name_style(seed, family, who.index)
    first, last = who.first, who.last_after_renames(epoch)
    if style == "lower":
        return first.lower(), last.lower()
    if style == "upper":
        return first.upper(), last.upper()
    return first, last


def display_name(seed: int, who: Person, family: str, epoch: int) -> str | None:
    """The single-field name a family shows (None or "" where the source has none)."""
    style = name_style(seed, family, who.index)
    first, last = first_last(seed, who, family, epoch)
    if style == "none":
        return None
    if style == "blank":
        return ""
    if style == "first":
        return first
    if style == "last_first":
        return f"{last}, {first}"
    return f"{first} {last}"


EMAIL_VARIANTS = Weighted(
    (
        ("canonical", 0.7),
        ("upper", 0.08),
        ("capitalised", 0.1),
        ("padded", 0.08),
        ("tabbed", 0.04),
    )
)


def email_variant(canonical: str, draw: Draw) -> str:
    """The canonical email as one record writes it: case and surrounding whitespace vary."""
    variant = draw.weighted(EMAIL_VARIANTS)
    if variant == "upper":
        return canonical.upper()
    if variant == "capitalised":
        local, domain = canonical.split("@")
        return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.title()
    if variant == "padded":
        return f"  {canonical} "
    if variant == "tabbed":
        return f"\t{canonical.title()}\n"
    return canonical


def normalise_email(raw: str) -> str:
    """The warehouse's key for a person: trimmed, lower-case."""
    return raw.strip().lower()
