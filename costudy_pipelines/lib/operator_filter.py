"""The filters an operator gives a replay (reason, ids, since) as parameterised SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql


def filter_clause(
    where: Sequence[str],
    *,
    reason: tuple[str, str | None],
    ids: tuple[str, str, Sequence[Any]],
    since: tuple[str, datetime | None],
) -> tuple[sql.Composed, dict[str, Any]]:
    """`where` (fixed conditions) and'ed with the filters that are set: reason = (column, text
    it must contain, any case), ids = (column, SQL array type, ids), since = (column, time).
    Column names and types come from the code, never from the operator."""
    parts: list[sql.Composable] = [sql.SQL(condition) for condition in where]
    params: dict[str, Any] = {}
    column, text = reason
    if text:
        parts.append(sql.SQL("strpos(lower({}), lower(%(reason)s)) > 0").format(sql.SQL(column)))
        params["reason"] = text
    column, array_type, values = ids
    if values:
        parts.append(sql.SQL("{} = any(%(ids)s::{})").format(sql.SQL(column), sql.SQL(array_type)))
        params["ids"] = list(values)
    column, time = since
    if time is not None:
        parts.append(sql.SQL("{} >= %(since)s").format(sql.SQL(column)))
        params["since"] = time
    return sql.SQL(" and ").join(parts), params
