"""The SVG charts the revenue view and the sync-health report write and show: every bar
drawn is a day's (or a session's) value read independently from the loaded warehouse, and
its height is that value on its panel's scale; the UI reaches them over http from the chart
server (inline Markdown and a link), never through a file:// link."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from costudy_pipelines.lib.chart_server import CHARTS_URL_VAR, chart_server
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.svg_charts import (
    PANEL_HEIGHT,
    PLOT_BOTTOM,
    PLOT_TOP,
    Panel,
    bar_chart_svg,
)
from costudy_pipelines_tests.defs.finance.support import REPORT, VIEW_ASSETS, run

SVG = "{http://www.w3.org/2000/svg}"
PLOT_HEIGHT = PANEL_HEIGHT - PLOT_TOP - PLOT_BOTTOM
REVENUE_VIEWS = [VIEW_ASSETS[name] for name in ("revenue_lines", "revenue_by_user_day")]
SYNC_VIEWS = [VIEW_ASSETS["sync_runs"], VIEW_ASSETS["sync_health"]]


@pytest.fixture(autouse=True)
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Charts go under COSTUDY_ARTIFACTS/charts: a folder of this test's own, served by a chart
    server of this test's own (COSTUDY_CHARTS_URL)."""
    monkeypatch.setenv("COSTUDY_ARTIFACTS", str(tmp_path / "artifacts"))
    folder = tmp_path / "artifacts" / "charts"
    server = chart_server(0, folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(CHARTS_URL_VAR, f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield folder
    finally:
        server.shutdown()
        server.server_close()


def panels(svg: str) -> dict[str, list[tuple[str, float, float]]]:
    """Panel title -> its bars as drawn: (label, value, height)."""
    root = ElementTree.fromstring(svg)
    return {
        group.attrib["data-title"]: [
            (
                rect.attrib["data-label"],
                float(rect.attrib["data-value"]),
                float(rect.attrib["height"]),
            )
            for rect in group.iter(f"{SVG}rect")
        ]
        for group in root.iter(f"{SVG}g")
    }


def assert_scaled(bars: list[tuple[str, float, float]]) -> None:
    """Each bar's height is its value over the panel's largest, on the plot's height."""
    largest = max(value for _, value, _ in bars)
    for label, value, height in bars:
        assert height == pytest.approx(value / largest * PLOT_HEIGHT, abs=0.06), label


def linked_chart(metadata, name: str, folder: Path) -> str:
    """The chart as the browser gets it from the UI's link (and inline image): over http, the
    file the asset wrote."""
    path = Path(metadata[f"{name}_path"].value)
    assert path == folder / f"{name}.svg"
    url = metadata[name].value
    assert url.startswith(os.environ[CHARTS_URL_VAR] + f"/charts/{name}.svg?v=")
    assert f"![{name}]({url})" in metadata[f"{name}_view"].value  # drawn inline in the UI
    assert not any("file:" in str(value.value) for value in metadata.values())
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert answer.text == path.read_text()
    return answer.text


def warehouse_rows(url: str, query: str) -> list[tuple]:
    """The loaded warehouse's answer, read independently of the chart's own queries."""
    with connect(url, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        return conn.execute(query).fetchall()


def test_the_revenue_chart_draws_each_days_net_per_currency(dbs, instance, artifacts):
    result = run(dbs, instance, REVENUE_VIEWS)
    metadata = result.asset_materializations_for_node("revenue_by_user_day")[0].metadata
    drawn = panels(linked_chart(metadata, "revenue_chart", artifacts))

    rows = warehouse_rows(
        dbs.warehouse,
        "select currency, day, sum(net) from revenue_lines l join users u on u.id = l.user_id"
        " where day is not null group by currency, day",
    )
    expected: dict[str, dict[date, Decimal]] = {}
    for currency, day, net in rows:
        expected.setdefault(currency, {})[day] = net
    assert set(drawn) == {f"{currency}: net per day" for currency in expected}
    assert len(expected) >= 2
    for currency, days in expected.items():
        bars = drawn[f"{currency}: net per day"]
        first, last = min(days), max(days)
        every_day = [first + timedelta(n) for n in range((last - first).days + 1)]
        assert [label for label, _, _ in bars] == [str(day) for day in every_day]
        assert [value for _, value, _ in bars] == [
            float(days.get(day, Decimal(0))) for day in every_day
        ]
        assert_scaled(bars)


def test_the_throughput_chart_draws_each_feeds_latest_sessions(dbs, instance, artifacts):
    result = run(dbs, instance, [*SYNC_VIEWS, REPORT])
    metadata = result.asset_materializations_for_node("sync_health_report")[0].metadata
    drawn = panels(linked_chart(metadata, "throughput_chart", artifacts))

    rows = warehouse_rows(
        dbs.warehouse,
        "select feed, partition_key, coalesce(rows_per_s, 0) from ("
        " select *, row_number() over (partition by feed"
        "  order by started_at desc, sync_log_id desc) as age from sync_runs) newest"
        " where age <= 14 order by feed, age desc",
    )
    expected: dict[str, list[tuple[str, float]]] = {}
    for feed, partition, rows_per_s in rows:
        expected.setdefault(feed, []).append((partition, float(rows_per_s)))
    assert set(drawn) == {f"{feed}: rows/s per session" for feed in expected}
    assert "whop_payments: rows/s per session" in drawn
    for feed, sessions in expected.items():
        bars = drawn[f"{feed}: rows/s per session"]
        dated = [(label, value) for label, value, _ in bars]
        # full syncs have no partition: labelled by when they started
        assert [
            (p or label, v) for (p, v), (label, _) in zip(sessions, dated, strict=True)
        ] == dated
        if any(value for _, value in sessions):
            assert_scaled(bars)


def test_a_chart_escapes_its_labels_and_draws_nothing_for_zero():
    svg = bar_chart_svg("a <b> & c", [Panel("x & y", [("<day>", 0), ("d2", 5)]), Panel("e", [])])
    drawn = panels(svg)  # parses: the labels are escaped
    assert drawn == {"x & y": [("<day>", 0.0, 0.0), ("d2", 5.0, PLOT_HEIGHT)], "e": []}
    assert "no data" in svg
    assert "no data yet" in bar_chart_svg("t", [])


def test_the_chart_server_serves_charts_and_nothing_else(artifacts: Path) -> None:
    artifacts.mkdir(parents=True)
    (artifacts / "revenue_chart.svg").write_text("<svg/>")
    (artifacts / "secret.txt").write_text("no")
    base = os.environ[CHARTS_URL_VAR]
    assert httpx.get(f"{base}/charts/revenue_chart.svg?v=1", timeout=10).text == "<svg/>"
    for path in ("/charts/secret.txt", "/charts/", "/charts/..%2Fsecret.txt",
                 "/charts/missing.svg", "/"):  # fmt: skip
        assert httpx.get(base + path, timeout=10).status_code == 404, path
