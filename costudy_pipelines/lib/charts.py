"""Charts as text, for Markdown metadata in the Dagster UI.

Why text: Dagster 1.13 renders Markdown metadata with react-markdown, whose default URL
transform drops `data:` image sources (and raw HTML such as inline SVG is shown as text), so
an embedded PNG or SVG would show as an empty image; matplotlib is not installed either.
Unicode block characters in a Markdown table render in every browser and copy as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar

BLOCKS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉"  # partial cells of a horizontal bar, 0/8 .. 7/8
FULL = "█"
SPARK_DAYS = 120  # a sparkline of at most this many days stays on one line
# float or Decimal, but one of them per series: Decimal and float do not divide each other
Number = TypeVar("Number", float, Decimal)


def sparkline(values: Sequence[Number]) -> str:
    """One character per value, heights scaled from zero to the largest value."""
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    last = len(BLOCKS) - 1
    return "".join(BLOCKS[round((value if value > 0 else 0) / top * last)] for value in values)


def bar(value: float | Decimal, top: float | Decimal, width: int = 20) -> str:
    """A horizontal bar of `width` cells at most, in eighths of a cell; empty for value <= 0."""
    if top <= 0 or value <= 0:
        return ""
    eighths = round(float(value) / float(top) * width * 8)
    full, rest = divmod(eighths, 8)
    return FULL * full + (EIGHTHS[rest] if rest else "")


def bar_cell(value: float | Decimal, top: float | Decimal, shown: str, width: int = 20) -> str:
    """A table cell: the bar (as code, so it keeps its width) and the value as shown."""
    drawn = bar(value, top, width)
    return f"`{drawn}` {shown}" if drawn else shown


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def daily_bars(
    series: dict[str, list[tuple[date, Decimal]]], *, days: int = 31, width: int = 20
) -> str:
    """A Markdown chart: per currency its total and a sparkline of its last SPARK_DAYS days,
    then a bar table of the last `days` days (one column per currency, each scaled to its own
    largest day). Currencies are never summed together."""
    if not series:
        return "_no revenue yet_"
    lines = [
        f"| currency | first day | last day | total | per day (last {SPARK_DAYS} at most) |",
        "|---|---|---|---:|---|",
    ]
    for currency, points in series.items():
        values = [value for _, value in points]
        lines.append(
            f"| {currency} | {points[0][0]} | {points[-1][0]} | {money(sum(values, Decimal(0)))} "
            f"| `{sparkline([v for _, v in dense_days(points)][-SPARK_DAYS:])}` |"
        )
    currencies = list(series)
    by_day = {currency: dict(points) for currency, points in series.items()}
    recent = sorted({day for points in series.values() for day, _ in points})[-days:]
    tops = {c: max((by_day[c].get(d, Decimal(0)) for d in recent), default=0) for c in currencies}
    lines += ["", "| day | " + " | ".join(currencies) + " |", "|---|" + "---|" * len(currencies)]
    for day in recent:
        cells = []
        for currency in currencies:
            value = by_day[currency].get(day)
            shown = (
                bar_cell(value, tops[currency], money(value), width) if value is not None else ""
            )
            cells.append(shown)
        lines.append(f"| {day} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dense_days(points: list[tuple[date, Decimal]]) -> list[tuple[date, Decimal]]:
    """One point per calendar day from the first to the last (days without revenue are 0)."""
    values = dict(points)
    days = map(date.fromordinal, range(points[0][0].toordinal(), points[-1][0].toordinal() + 1))
    return [(day, values.get(day, Decimal(0))) for day in days]
