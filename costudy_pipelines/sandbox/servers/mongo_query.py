"""What the sandbox MongoDB server answers a query with: filters, sort, projection, the
$group that count_documents sends, and collections with an ordered index on a date field.

The supported subset of MongoDB's query language (anything else raises CommandError, which
the server answers as a MongoDB error, so a client relying on more fails loudly):
  equality and $eq/$ne/$gt/$gte/$lt/$lte/$in/$nin on top-level or dotted fields, and $and;
  range operators are type-bracketed and sorting follows MongoDB's cross-type order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bson.objectid import ObjectId

Document = dict[str, Any]

CODE_NAMES = {
    1: "InternalError",
    2: "BadValue",
    6: "HostUnreachable",
    13: "Unauthorized",
    17: "ProtocolError",
    18: "AuthenticationFailed",
    43: "CursorNotFound",
    59: "CommandNotFound",
    89: "NetworkTimeout",
    91: "ShutdownInProgress",
    115: "CommandNotSupported",
    189: "PrimarySteppedDown",
    334: "MechanismUnavailable",
}


class CommandError(Exception):
    """A command the server refuses: becomes an `ok: 0` reply, the connection stays open."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code

    def reply(self) -> Document:
        name = CODE_NAMES.get(self.code, f"Location{self.code}")
        return {"ok": 0.0, "errmsg": str(self), "code": self.code, "codeName": name}


def unsupported(what: str) -> CommandError:
    return CommandError(115, f"sandbox mongo: {what} is not supported")


_MISSING = object()
_RANGE = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


# MongoDB's comparison order of BSON types: null (1) < numbers < string < object < array <
# binary < ObjectId < boolean < date; bool before int, since a bool is an int to Python.
_TYPE_ORDER: tuple[tuple[type | tuple[type, ...], int], ...] = (
    (bool, 8),
    ((int, float), 2),
    (str, 3),
    (Mapping, 4),
    ((list, tuple), 5),
    (bytes, 6),
    (ObjectId, 7),
    (datetime, 9),
)


def _utc(value: Any) -> Any:
    """Naive datetimes are UTC (as BSON stores them), so they compare with aware ones."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _type_rank(value: Any) -> int:
    if value is None or value is _MISSING:
        return 1
    return next((rank for types, rank in _TYPE_ORDER if isinstance(value, types)), 10)


def _equal(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return value is None or value is _MISSING
    return _type_rank(value) == _type_rank(wanted) and value == wanted


def _operator_matches(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return _equal(value, operand)
    if operator == "$ne":
        return not _equal(value, operand)
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise CommandError(2, f"{operator} needs an array")
        found = any(_equal(value, item) for item in operand)
        return found if operator == "$in" else not found
    if operator in _RANGE:
        # Range operators are type-bracketed: a number never matches a date bound.
        if value is _MISSING or _type_rank(value) != _type_rank(operand):
            return False
        return _RANGE[operator](_utc(value), _utc(operand))
    raise unsupported(f"query operator {operator}")


def matches(document: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """Whether `document` satisfies the (supported subset of the) MongoDB query `query`."""
    for field, condition in query.items():
        if field == "$and":
            if not isinstance(condition, list) or not condition:
                raise CommandError(2, "$and needs a non-empty array")
            if not all(matches(document, part) for part in condition):
                return False
            continue
        if field.startswith("$"):
            raise unsupported(f"top-level operator {field}")
        value = _lookup(document, field)
        if isinstance(condition, Mapping) and condition and next(iter(condition)).startswith("$"):
            for operator, operand in condition.items():
                if not _operator_matches(value, operator, operand):
                    return False
        elif not _equal(value, condition):
            return False
    return True


def _sort_key(path: str) -> Callable[[Document], tuple[int, Any]]:
    def key(document: Document) -> tuple[int, Any]:
        value = _lookup(document, path)
        rank = _type_rank(value)
        if rank in (4, 5):
            raise unsupported(f"sorting by an object or array ({path})")
        return (rank, None if rank == 1 else _utc(value))

    return key


def sort_documents(documents: list[Document], spec: Mapping[str, Any]) -> list[Document]:
    """Stable sort by each key of `spec` (1 ascending, -1 descending), first key first."""
    for path, direction in reversed(list(spec.items())):
        if direction not in (1, -1):
            raise unsupported(f"sort direction {direction!r} on {path}")
        documents = sorted(documents, key=_sort_key(path), reverse=direction == -1)
    return documents


def project(documents: list[Document], projection: Mapping[str, Any] | None) -> list[Document]:
    """Top-level inclusion ({a: 1}, _id kept unless {_id: 0}) or exclusion ({a: 0})."""
    if not projection:
        return documents
    for field, flag in projection.items():
        if "." in field or field.startswith("$") or not isinstance(flag, bool | int):
            raise unsupported(f"projection {field}: {flag!r} (top-level fields, 0 or 1 only)")
    chosen = {field for field, flag in projection.items() if flag and field != "_id"}
    if chosen:
        if any(not flag for field, flag in projection.items() if field != "_id"):
            raise CommandError(31254, "cannot mix inclusion and exclusion in a projection")
        if projection.get("_id", 1):
            chosen.add("_id")
        return [{k: v for k, v in doc.items() if k in chosen} for doc in documents]
    dropped = {field for field, flag in projection.items() if not flag}
    return [{k: v for k, v in doc.items() if k not in dropped} for doc in documents]


def group_count(documents: list[Document], stage: Mapping[str, Any]) -> list[Document]:
    """$group by a constant _id with {$sum: <number>} accumulators (count_documents' shape)."""
    group_id = stage.get("_id")
    if isinstance(group_id, Mapping) or (isinstance(group_id, str) and group_id.startswith("$")):
        raise unsupported("$group by a field")
    result: Document = {"_id": group_id}
    for name, accumulator in stage.items():
        if name == "_id":
            continue
        summand = accumulator.get("$sum") if isinstance(accumulator, Mapping) else None
        if (
            len(accumulator) != 1
            or not isinstance(summand, int | float)
            or isinstance(summand, bool)
        ):
            raise unsupported(f"$group accumulator {name}: {accumulator!r}")
        result[name] = summand * len(documents)
    return [result] if documents else []


class IndexedCollection:
    """Documents in insertion order, with an ordered index on one date field: a day's range
    query bisects it instead of testing every document (a full scan of 100,000 documents per
    query made a month's backfill take minutes). The query is still applied to what the
    index yields, so the index only ever narrows, never decides."""

    def __init__(self, documents: Iterable[Document], indexed: str | None) -> None:
        self.documents = list(documents)
        self.indexed = indexed
        self._index: tuple[list[datetime], list[int]] | None = None

    def add(self, documents: list[Document]) -> None:
        self.documents.extend(documents)
        self._index = None

    def candidates(self, query: Mapping[str, Any]) -> list[Document]:
        """The documents that may match `query` (all, unless it bounds the indexed field)."""
        condition = query.get(self.indexed) if self.indexed else None
        if not isinstance(condition, Mapping):
            return list(self.documents)
        lows = [_utc(v) for op, v in condition.items() if op in ("$gt", "$gte")]
        highs = [_utc(v) for op, v in condition.items() if op in ("$lt", "$lte")]
        if not all(isinstance(v, datetime) for v in lows + highs) or not lows + highs:
            return list(self.documents)
        keys, positions = self._sorted()
        start = bisect_left(keys, max(lows)) if lows else 0
        end = bisect_right(keys, min(highs)) if highs else len(keys)
        return [self.documents[position] for position in sorted(positions[start:end])]

    def _sorted(self) -> tuple[list[datetime], list[int]]:
        if self._index is None:
            assert self.indexed is not None
            dated = sorted(
                (_utc(value), position)
                for position, document in enumerate(self.documents)
                if isinstance(value := _lookup(document, self.indexed), datetime)
            )
            self._index = ([key for key, _ in dated], [position for _, position in dated])
        return self._index
