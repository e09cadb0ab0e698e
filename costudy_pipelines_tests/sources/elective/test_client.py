"""The Elective drop-folder reader on real CSV files."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

from costudy_pipelines.sources.elective.client import ElectiveFileError, ElectiveReader

ORDERS_HEADER = [
    "Purchase Date (UTC)",
    "Student Name",
    "Product Purchased",
    "Currency",
    "Order Total",
    "Term (months)",
    "First Payment",
    "Fees",
    "Net Amount",
    "Type",
    "Status",
]
LEGACY_HEADER = [
    "Purchase Date (UTC)",
    "Customer",
    "Checkout",
    "Type",
    "Term",
    "Order Total",
    "Fees",
    "Net Amount",
    "Status",
]


def orders_row(n: int, name: str = "Zoë Ünal") -> list[str]:
    return [f"2025-03-0{1 + n % 9} 10:00:00", name, "Typing Pro", "USD", f"{100 + n}.00",
            "12", "10.00", "3.10", f"{96 + n}.90", "Funding", "Approved"]  # fmt: skip


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, age_s: float = 3600) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    settle(path, age_s)
    return path


def settle(path: Path, age_s: float = 3600) -> None:
    past = time.time() - age_s
    os.utime(path, (past, past))


def rows_of(reader: ElectiveReader) -> list[dict]:
    return [row for page in reader.pages(reader.scan()) for row in page]


def test_orders_layout_with_an_email_column(tmp_path: Path) -> None:
    header = [*ORDERS_HEADER[:2], "Email", *ORDERS_HEADER[2:]]
    first = orders_row(1)
    first.insert(2, " Zoe@Example.COM")
    second = orders_row(2, name='Bob "The Builder"\nO\'Brien; DROP TABLE')  # spans two lines
    second.insert(2, "bob@example.com")
    third = orders_row(3)
    third.insert(2, "carol@example.com")
    write_csv(tmp_path / "orders-2025-03.csv", header, [first, second, third])
    rows = rows_of(ElectiveReader(tmp_path))
    assert rows[0] == {
        "purchased_at": "2025-03-02 10:00:00",
        "name": "Zoë Ünal",
        "product": "Typing Pro",
        "currency": "USD",
        "order_total": "101.00",
        "term_months": "12",
        "first_payment": "10.00",
        "fees": "3.10",
        "net_amount": "97.90",
        "type": "Funding",
        "status": "Approved",
        "email": " Zoe@Example.COM",
        "_extra": {},
        "_file": "orders-2025-03.csv",
        "_line": 2,
        "_layout": "orders",
    }
    assert rows[1]["name"] == 'Bob "The Builder"\nO\'Brien; DROP TABLE'
    assert [row["_line"] for row in rows] == [2, 3, 5]


def test_legacy_layout_without_email(tmp_path: Path) -> None:
    row = ["2024-11-05 08:30:00", "Ann Lee", "Checkout A", "In-House", "6",
           "600.00", "18.00", "582.00", "Refunded"]  # fmt: skip
    write_csv(tmp_path / "old.csv", LEGACY_HEADER, [row])
    [record] = rows_of(ElectiveReader(tmp_path))
    assert record["_layout"] == "legacy"
    assert (record["name"], record["product"], record["term_months"]) == (
        "Ann Lee",
        "Checkout A",
        "6",
    )
    assert record["email"] is None
    assert record["currency"] is None and record["first_payment"] is None


def test_orders_layout_without_email_and_with_unknown_columns(tmp_path: Path) -> None:
    header = [*ORDERS_HEADER, "Coupon"]
    write_csv(tmp_path / "a.csv", header, [[*orders_row(1), "SPRING", "stray cell"]])
    [record] = rows_of(ElectiveReader(tmp_path))
    assert record["email"] is None
    assert record["_extra"] == {"Coupon": "SPRING", "column 13": "stray cell"}


def test_files_still_being_written_are_not_taken(tmp_path: Path) -> None:
    write_csv(tmp_path / "a-done.csv", ORDERS_HEADER, [orders_row(1)])
    fresh = write_csv(tmp_path / "b-fresh.csv", ORDERS_HEADER, [orders_row(2)], age_s=0)
    half = tmp_path / "c-half.csv"
    half.write_text(",".join(ORDERS_HEADER) + "\n2025-03-01 10:00:00,Half Writ", encoding="utf-8")
    settle(half)
    empty = tmp_path / "d-empty.csv"
    empty.touch()
    settle(empty)
    reader = ElectiveReader(tmp_path, settle_seconds=60)
    scan = reader.scan()
    assert scan.ready == [tmp_path / "a-done.csv"]
    reasons = {skipped.path: skipped.reason for skipped in scan.skipped}
    assert "may still be written" in reasons[fresh] and "modified" in reasons[fresh]
    assert reasons[half].startswith("no trailing newline")
    assert reasons[empty].startswith("empty")
    assert not scan.complete
    assert [row["name"] for row in rows_of(reader)] == ["Zoë Ünal"]


def test_an_unknown_layout_names_the_file_and_what_is_missing(tmp_path: Path) -> None:
    header = [column for column in ORDERS_HEADER if column not in ("Currency", "Fees")]
    write_csv(tmp_path / "weird.csv", header, [["x"] * len(header)])
    with pytest.raises(ElectiveFileError, match=r"weird\.csv: unknown export layout") as caught:
        rows_of(ElectiveReader(tmp_path))
    assert "'orders' lacks ['Currency', 'Fees']" in str(caught.value)


def test_duplicate_columns_and_undecodable_bytes_are_named(tmp_path: Path) -> None:
    write_csv(tmp_path / "dup.csv", [*ORDERS_HEADER, "Status"], [orders_row(1)])
    with pytest.raises(ElectiveFileError, match=r"dup\.csv: column 'Status' appears twice"):
        rows_of(ElectiveReader(tmp_path))
    (tmp_path / "dup.csv").unlink()
    latin = tmp_path / "latin.csv"
    latin.write_bytes((",".join(ORDERS_HEADER) + "\n").encode() + "Zoë\n".encode("latin-1"))
    settle(latin)
    with pytest.raises(ElectiveFileError, match=r"latin\.csv near line \d+: unreadable"):
        rows_of(ElectiveReader(tmp_path))


def test_chunks_are_bounded_and_a_file_changed_while_read_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "big.csv", ORDERS_HEADER, [orders_row(n) for n in range(12)])
    reader = ElectiveReader(tmp_path, chunk_size=5)
    assert [len(page) for page in reader.read_file(path)] == [5, 5, 2]
    pages = reader.read_file(path)
    next(pages)
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow(orders_row(99))
    with pytest.raises(ElectiveFileError, match="changed while it was being read"):
        list(pages)


def test_a_drop_folder_that_is_a_file_is_named_as_a_file(tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text("Purchase Date (UTC),Order Total\n")

    with pytest.raises(ElectiveFileError) as as_file:
        ElectiveReader(folder=export).scan()
    with pytest.raises(ElectiveFileError) as missing:
        ElectiveReader(folder=tmp_path / "nowhere").scan()

    assert str(as_file.value) == (
        f"Elective drop folder {export} is a file: "
        "name the folder Elective's exports are dropped into"
    )
    assert str(missing.value) == f"Elective drop folder {tmp_path / 'nowhere'} does not exist"
