"""Finding the files of a database folder: numeric order, no duplicates, checksums."""

from __future__ import annotations

from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import DiscoveryError, discover
from costudy_pipelines_tests.lib.migrations.support import write_files


def test_numbers_order_numerically_not_lexically(folder: Path):
    write_files(folder, {f"{n}-step.sql": f"select {n};" for n in range(1, 12)})

    assert [m.version for m in discover(folder)] == list(range(1, 12))
    assert [m.name for m in discover(folder)][8:10] == ["9-step.sql", "10-step.sql"]


def test_down_files_attach_to_their_up_file(folder: Path):
    write_files(folder, {"001-a.sql": "select 1;", "001-a.down.sql": "select 0;", "002-b.sql": ""})
    first, second = discover(folder)

    assert first.down_sql == "select 0;" and first.down_name == "001-a.down.sql"
    assert second.down_sql is None


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"001-a.sql": "", "1-b.sql": ""},
            "version 1 is used by several files: 001-a.sql, 1-b.sql",
        ),
        ({"001-a.sql": "", "002-b.down.sql": ""}, "002-b.down.sql has no up file"),
        ({"001-a.sql": "", "001-b.down.sql": ""}, "001-b.down.sql does not match its up file"),
        ({"001-a.sql": "", "init.sql": ""}, "init.sql does not match NNN-name.sql"),
    ],
)
def test_folder_problems_are_errors(folder: Path, files: dict[str, str], message: str):
    write_files(folder, files)

    with pytest.raises(DiscoveryError, match=message):
        discover(folder)


def test_every_problem_is_reported_at_once(folder: Path):
    write_files(folder, {"1-a.sql": "", "1-b.sql": "", "3-c.down.sql": "", "notes.sql": ""})

    with pytest.raises(DiscoveryError) as raised:
        discover(folder)
    assert str(raised.value).count(";") == 2  # three problems


def test_gaps_are_allowed(folder: Path):
    write_files(folder, {"001-a.sql": "", "005-e.sql": ""})

    assert [m.version for m in discover(folder)] == [1, 5]


def test_checksum_ignores_line_endings_and_bom(tmp_path: Path):
    unix = write_files(tmp_path / "unix", {"001-a.sql": "select 1;\nselect 2;\n"})
    (tmp_path / "windows").mkdir()
    (tmp_path / "windows" / "001-a.sql").write_bytes(b"\xef\xbb\xbfselect 1;\r\nselect 2;\r\n")

    [from_unix], [from_windows] = discover(unix), discover(tmp_path / "windows")
    assert from_unix.checksum == from_windows.checksum
    assert from_windows.sql == "select 1;\nselect 2;\n"


def test_missing_or_empty_folder_has_no_migrations(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".gitkeep").touch()

    assert len(discover(tmp_path / "absent")) == 0
    assert len(discover(tmp_path / "empty")) == 0


def test_fingerprint_changes_with_any_file(folder: Path):
    write_files(folder, {"001-a.sql": "select 1;", "001-a.down.sql": "select 0;"})
    before = discover(folder).fingerprint()
    write_files(folder, {"001-a.down.sql": "select -1;"})

    assert discover(folder).fingerprint() != before
