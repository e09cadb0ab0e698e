"""Bar charts as standalone SVG files: revenue per day, rows/s per sync session.

Why files: the Dagster 1.13 UI sanitizes Markdown metadata (rehype-sanitize: image sources
only http(s), no raw HTML), so an inline or `data:` SVG never shows there. The chart is
written next to Dagster's artifacts, the chart server (lib/chart_server.py) serves it over
http, and the asset's metadata shows it inline from there and links to it. Every bar carries
its label and value (`data-label`, `data-value`, and a <title> the browser shows on hover),
so what is drawn can be checked against the data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from costudy_pipelines.lib.charts import dense_days
from costudy_pipelines.lib.settings import costudy_home
from costudy_pipelines.lib.sync_health import FeedHealth

WIDTH = 900
PANEL_HEIGHT = 220
PLOT_TOP = 34  # room for the panel's title
PLOT_BOTTOM = 40  # room for the first and last labels
LEFT = 70  # room for the scale
RIGHT = 20
BAR_COLOUR = "#4f43dd"


@dataclass(frozen=True)
class Panel:
    """One chart: a title, and bars in order (label, value >= 0)."""

    title: str
    bars: Sequence[tuple[str, float | Decimal]]


def _number(value: float) -> str:
    return f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"


def _panel(panel: Panel, top: int) -> list[str]:
    plot_height = PANEL_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    base = top + PLOT_TOP + plot_height
    values = [float(value) for _, value in panel.bars]
    largest = max(values, default=0.0)
    parts = [
        f'<g class="panel" data-title={quoteattr(panel.title)}>',
        f'<text x="{LEFT}" y="{top + 20}" font-size="15" font-weight="bold">'
        f"{escape(panel.title)}</text>",
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#999"/>',
        f'<text x="{LEFT - 6}" y="{top + PLOT_TOP + 10}" font-size="11" text-anchor="end">'
        f"{_number(largest)}</text>",
        f'<text x="{LEFT - 6}" y="{base}" font-size="11" text-anchor="end">0</text>',
    ]
    if not panel.bars:
        parts.append(f'<text x="{LEFT + 10}" y="{base - 10}" font-size="13">no data</text>')
    slot = (WIDTH - LEFT - RIGHT) / max(len(panel.bars), 1)
    for index, ((label, _), value) in enumerate(zip(panel.bars, values, strict=True)):
        height = value / largest * plot_height if largest > 0 and value > 0 else 0.0
        x = LEFT + index * slot + slot * 0.1
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - height:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{height:.1f}" fill="{BAR_COLOUR}" data-label={quoteattr(label)} '
            f'data-value="{value}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
    for index in {0, len(panel.bars) - 1} if panel.bars else ():
        label = panel.bars[index][0]
        x = LEFT + index * slot + slot / 2
        anchor = "start" if index == 0 else "end"
        parts.append(
            f'<text x="{x:.1f}" y="{base + 18}" font-size="11" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    parts.append("</g>")
    return parts


def bar_chart_svg(title: str, panels: Sequence[Panel]) -> str:
    """One SVG document: a title, then the panels stacked, each scaled to its own largest bar
    (so currencies, or feeds, are never drawn against each other's scale)."""
    height = 40 + PANEL_HEIGHT * max(len(panels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="26" font-size="18">{escape(title)}</text>',
    ]
    if not panels:
        parts.append(f'<text x="{LEFT}" y="80" font-size="14">no data yet</text>')
    for index, panel in enumerate(panels):
        parts += _panel(panel, 40 + index * PANEL_HEIGHT)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_chart(folder: Path, name: str, svg: str) -> Path:
    """Write `<folder>/<name>.svg` whole: a reader sees the old chart or the new, never half."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.svg"
    partial = folder / f".{name}.svg.{os.getpid()}.tmp"
    partial.write_text(svg, encoding="utf-8")
    partial.replace(path)
    return path


def charts_folder() -> Path:
    """Where charts are written: beside Dagster's artifacts (COSTUDY_ARTIFACTS)."""
    artifacts = os.environ.get("COSTUDY_ARTIFACTS") or str(costudy_home() / "dagster")
    return Path(artifacts) / "charts"


def revenue_chart(series: dict[str, list[tuple[date, Decimal]]]) -> str:
    """Net revenue per UTC day, one panel per currency, every day from its first to its last."""
    panels = [
        Panel(f"{currency}: net per day", [(str(day), net) for day, net in dense_days(points)])
        for currency, points in series.items()
    ]
    return bar_chart_svg("Revenue per day (revenue_by_user_day)", panels)


def throughput_chart(feeds: Sequence[FeedHealth]) -> str:
    """Rows/s of each feed's recent sessions, oldest first, labelled by partition (or start)."""
    panels = [
        Panel(
            f"{feed.feed}: rows/s per session",
            [
                (
                    run["partition_key"] or f"{run['started_at']:%Y-%m-%d %H:%M}",
                    run["rows_per_s"] or 0,
                )
                for run in feed.recent
            ],
        )
        for feed in feeds
        if feed.recent
    ]
    return bar_chart_svg("Sync throughput (sync_runs, latest sessions per feed)", panels)
