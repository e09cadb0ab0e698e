"""Shape drift of one partition against a feed's declaration and what was seen before
(lib/validation/shape.py)."""

from __future__ import annotations

from typing import Any

import pytest

from costudy_pipelines.lib.validation.shape import (
    FeedShape,
    PartitionShape,
    drift,
    json_type,
    merged,
)

SHAPE = FeedShape.of(ignored=("_ours",), id="string", email="string|null", total="number|object")


def partition(*records: dict[str, Any]) -> PartitionShape:
    observed = PartitionShape()
    for record in records:
        observed.observe(record, SHAPE)
    return observed


def test_json_types() -> None:
    values = [None, True, 3, 2.5, "x", {"a": 1}, [1]]
    assert [json_type(v) for v in values] == [
        "null", "boolean", "number", "number", "string", "object", "array",
    ]  # fmt: skip


def test_a_partition_as_declared_and_as_seen_before_is_quiet() -> None:
    first = partition({"id": "a", "email": None, "total": 1, "bio": "x", "_ours": {}})
    assert drift(SHAPE, first, None) == []
    known = merged(None, first)
    assert "_ours" not in known  # the product's own key is never the source's shape
    again = partition({"id": "b", "email": "b@x.io", "total": 2, "bio": None})
    assert drift(SHAPE, again, known) == []  # null, and a declared type: nothing new


def test_rename_retype_and_removal_are_each_reported_with_an_example() -> None:
    known = merged(None, partition({"id": "a", "email": "a@x.io", "total": 1, "bio": "x"}))
    later = partition(
        {"id": "b", "mail": "b@x.io", "total": {"amount": "2.00"}},
        {"id": "c", "mail": "c@x.io", "total": 3},
    )
    found = {(item.field, item.kind): item for item in drift(SHAPE, later, known)}
    assert set(found) == {
        ("email", "disappeared"),
        ("mail", "appeared"),
        ("total", "changed_type"),
        ("bio", "disappeared"),
    }
    gone, retyped = found["email", "disappeared"], found["total", "changed_type"]
    assert (gone.records, gone.declared, gone.example_id) == (2, True, "b")
    assert (retyped.expected, retyped.found, retyped.example_id) == (("number",), ("object",), "b")
    assert not found["mail", "appeared"].declared


def test_a_type_the_declaration_does_not_allow_is_reported_without_history() -> None:
    found = drift(SHAPE, partition({"id": 7, "email": "a@x.io", "total": "12"}), None)
    assert {(item.field, item.kind) for item in found} == {
        ("id", "changed_type"),
        ("total", "changed_type"),
    }


def test_a_declaration_names_json_types_only() -> None:
    with pytest.raises(ValueError, match="JSON types"):
        FeedShape.of(id="str")
