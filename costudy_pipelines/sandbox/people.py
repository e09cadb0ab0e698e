"""The people of the world: names (Unicode and SQL metacharacters on purpose), emails, styles.

A person is a pure function of (seed, index). Each source shows the person's name in its own
style (GoHighLevel keeps first/last, Whop often only a first name, sheets "Last, First"), so
the same person carries different names in different sources and the warehouse's source
priority decides which one wins. A rename (advance_day) changes the last name in one source.

Names come from two pools: the short lists below (Unicode and SQL metacharacters on purpose,
shared by many people, like "John Smith") and generated syllable names (thousands, each shared
by few), so that a world of a million people has realistic name frequencies. A family may also
show a typo of the name or a nickname, the same in every record of that family.

Some people have two or three addresses (`alternate_email`): the population decides which
family sees which (population.Profile.addresses); the person only knows how they are spelled.
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
# Generated names: 30 x 10 given names, 20 x 10 x 10 surnames (drawn for GENERATED_SHARE of
# people, independently for the given name and the surname).
GIVEN_STARTS = (
    "Ka", "Le", "Mi", "Ro", "Sa", "Ta", "Vi", "Na", "Jo", "El", "Ar", "Be", "Da", "Fe", "Gi",
    "Ha", "Is", "Lu", "Ma", "Ne", "Ol", "Pe", "Ra", "Si", "Te", "Ul", "Va", "Wi", "Ya", "Ze",
)  # fmt: skip
GIVEN_ENDS = ("n", "ra", "lia", "ro", "na", "vin", "tte", "mir", "sha", "do")
SURNAME_STARTS = (
    "Ber", "Cal", "Dor", "Fal", "Gar", "Hol", "Kar", "Lin", "Mor", "Nor", "Pel", "Quin", "Ros",
    "Sten", "Tor", "Val", "Wes", "Yor", "Zan", "Ash",
)  # fmt: skip
SURNAME_MIDDLES = ("a", "e", "i", "o", "u", "en", "ar", "il", "om", "ud")
SURNAME_ENDS = ("berg", "field", "ton", "wick", "ski", "son", "man", "ley", "ford", "ez")
GENERATED_SHARE = 0.6
# Nicknames some families show instead of the given name ("nicknames light": a short list).
NICKNAMES = {
    "Olivia": "Liv", "Emma": "Em", "Lucas": "Luke", "Łukasz": "Luke", "Sofía": "Sofi",
    "Mary Ann": "Mary", "Дмитрий": "Дима", "Александра": "Саша", "Ingrid": "Inga",
    "Jean-Luc": "Jean", "Noah": "No", "Robert'); DROP TABLE users;--": "Bob",
}  # fmt: skip
NICKNAME_RATE = 0.15  # per (person, family) whose given name has a nickname
TYPO_RATE = 0.06  # per (person, family): one typo in the surname (or, 1 in 4, the given name)
# Where second and third addresses live: other providers, or a work or school address.
ALTERNATE_DOMAINS = ("mail.example.net", "post.example.org", "work.example.com",
                     "uni.example.edu", "inbox.example.com")  # fmt: skip

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
    surname: str | None = None  # a generated surname (None: LAST_NAMES[last_index])

    @property
    def last(self) -> str:
        return self.surname or LAST_NAMES[self.last_index]

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def last_after_renames(self, epoch: int) -> str:
        """The last name after `epoch` renames (7 and the pool size are coprime: each differs;
        a generated surname is never in the pool)."""
        if epoch == 0:
            return self.last
        return LAST_NAMES[(self.last_index + 7 * epoch) % len(LAST_NAMES)]


@lru_cache(maxsize=8192)
def person(seed: int, index: int) -> Person:
    draw = Draw(seed, "person", index)
    first = draw.choice(FIRST_NAMES)
    last_index = draw.below(len(LAST_NAMES))
    names = Draw(seed, "person-names", index)
    if names.chance(GENERATED_SHARE):
        first = names.choice(GIVEN_STARTS) + names.choice(GIVEN_ENDS)
    surname = None
    if names.chance(GENERATED_SHARE):
        surname = (
            names.choice(SURNAME_STARTS)
            + names.choice(SURNAME_MIDDLES)
            + names.choice(SURNAME_ENDS)
        )
    last = surname or LAST_NAMES[last_index]
    slugs = [s for s in (ascii_slug(first), ascii_slug(last)) if s] or ["user"]
    suffix = base36(index)
    email = f"{'.'.join(slugs)}.{suffix}@{draw.choice(DOMAINS)}"
    phone = f"+1{draw.between(201, 989)}{draw.between(200, 999)}{draw.between(0, 9999):04d}"
    username = f"{''.join(slugs)[:24]}{suffix}"
    return Person(index, first, last_index, email, username, phone, surname)


@lru_cache(maxsize=65536)
def alternate_email(seed: int, who: Person, number: int) -> str:
    """The person's `number`-th other address (1 or 2), never anyone else's: the same local
    part at another provider (45 %), the local part rearranged (50 %), or (5 %) a work
    address with the initial, the surname and a scrambled form of the person's number (unique,
    not similar): an address only a name ties to its owner, so found only for rare names."""
    draw = Draw(seed, "alternate-email", who.index, number)
    local = who.email.split("@")[0]
    first, last = ascii_slug(who.first) or "x", ascii_slug(who.last) or "x"
    # a person's addresses are at different providers, none of them DOMAINS: never equal
    home = Draw(seed, "alternate-domain", who.index).below(len(ALTERNATE_DOMAINS))
    domain = ALTERNATE_DOMAINS[(home + number) % len(ALTERNATE_DOMAINS)]
    kind = draw.below(20)
    if kind < 9:  # same local part, another provider
        return f"{local}@{domain}"
    suffix = base36(who.index)  # after the last separator: unique to the person
    if kind < 19:  # rearranged: "zoeobrien.1a", "obrien.zoe.1a", "zobrien_1a"
        shapes = (
            f"{first}{last}.{suffix}",
            f"{last}.{first}.{suffix}",
            f"{first[0]}{last}_{suffix}",
        )
        return f"{shapes[draw.below(3)]}@{domain}"
    scrambled = base36((who.index * 2_654_435_761 + 40_503) % 4_294_967_311)  # a bijection
    return f"{first[0]}.{last}+{scrambled}@{domain}"  # "+": no other shape has one


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


def typo(text: str, draw: Draw) -> str:
    """One slip of the keyboard: a letter dropped, doubled, or swapped with the next."""
    if len(text) < 3:
        return text + text[-1:]
    at = 1 + draw.below(len(text) - 2)
    kind = draw.below(3)
    if kind == 0:
        return text[:at] + text[at + 1 :]
    if kind == 1:
        return text[:at] + text[at] + text[at:]
    return text[:at] + text[at + 1] + text[at] + text[at + 2 :]


@lru_cache(maxsize=65536)
def varied_names(seed: int, who: Person, family: str, last: str) -> tuple[str, str]:
    """The (first, last) a family writes: sometimes a nickname, sometimes a typo, always the
    same in that family."""
    draw = Draw(seed, "name-variation", family, who.index)
    first = who.first
    nickname = NICKNAMES.get(first)
    if draw.chance(NICKNAME_RATE) and nickname:
        first = nickname
    if draw.chance(TYPO_RATE):
        if draw.below(4) == 0:
            first = typo(first, draw)
        else:
            last = typo(last, draw)
    return first, last


def first_last(seed: int, who: Person, family: str, epoch: int) -> tuple[str, str]:
    """The (first, last) name a family shows after `epoch` renames, in the family's style."""
    style = name_style(seed, family, who.index)
    first, last = varied_names(seed, who, family, who.last_after_renames(epoch))
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
