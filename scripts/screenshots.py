#!/usr/bin/env python3
"""Screenshots of the charts, taken in headless Chromium against a running `costudy ui`.

After `costudy demo` and `costudy ui --port PORT`:

    .venv/bin/python scripts/screenshots.py --ui http://127.0.0.1:PORT --out /tmp/shots

writes PNGs of whop_payments' plots by partition (Dagster's own, one point per day of the
demo), its partitions view (one day selected: that day's own figures and nothing of the
run's), the latest materializations of revenue_by_user_day and sync_health_report (their
text charts and their SVG charts drawn inline from the chart server), and each SVG chart
opened from the link on its asset's page (http, served by `costudy ui`'s chart server).
Needs Chromium (`apt-get install chromium`) and the Python package playwright
(`uv pip install playwright`: it drives that Chromium, no browser download); not part of
`make test` (CI has no browser).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The UI's "Join the Dagster community" dialog covers the page on 127.0.0.1 until dismissed;
# dismissed in this browser only (the key the UI's own Skip button sets), not in the instance.
NO_COMMUNITY_DIALOG = "localStorage.setItem('communityNux', '1')"


# pages where a button shows what to capture: PNG name -> the button's text
CLICK = {"whop_payments_plots": "Plots"}  # the Overview's Metadata section: Table | Plots


def pages(ui: str, day: str) -> dict[str, tuple[str, str]]:
    """PNG name -> (the page, a text that shows once its data has loaded)."""
    return {
        "whop_payments_plots": (f"{ui}/assets/whop_payments?view=overview", "records_in"),
        "whop_payments_partitions": (
            f"{ui}/assets/whop_payments?view=partitions&partition={day}",
            "records_in",
        ),
        "revenue_by_user_day": (f"{ui}/assets/revenue_by_user_day?view=events", "revenue_chart"),
        "sync_health_report": (f"{ui}/assets/sync_health_report?view=events", "throughput_chart"),
    }


# chart (and PNG) name -> (the asset whose page links to it, a text the chart shows)
CHARTS = {
    "revenue_chart": ("revenue_by_user_day", "Revenue per day"),
    "throughput_chart": ("sync_health_report", "Sync throughput"),
}


def open_chart(
    page: Page, ui: str, asset: str, name: str, title: str, png: Path, timeout_s: float
) -> str:
    """Follow the chart's link from its asset's latest materialization (as an operator
    would) and screenshot the chart the browser gets: the http URL it opened."""
    page.goto(f"{ui}/assets/{asset}?view=events")
    link = page.locator(f"a[href*='/charts/{name}.svg']").first
    link.wait_for(timeout=timeout_s * 1000)
    href = link.get_attribute("href")
    assert href and href.startswith("http"), href
    page.goto(href)
    page.get_by_text(title).first.wait_for(timeout=timeout_s * 1000)
    page.locator("svg").first.screenshot(path=png)
    return href


def screenshot(
    page: Page, url: str, loaded: str, png: Path, timeout_s: float, click: str | None = None
) -> None:
    """The whole page once `loaded` shows (the UI is a JS app that loads its data), after
    clicking the button `click` if given."""
    page.goto(url)
    page.get_by_text(loaded).first.wait_for(timeout=timeout_s * 1000)
    if click:
        page.get_by_role("button", name=click).first.click()
        page.locator(".recharts-surface, canvas, svg").last.wait_for(timeout=timeout_s * 1000)
        page.wait_for_timeout(2000)  # the plots' animation
    page.wait_for_load_state("networkidle")
    page.screenshot(path=png)  # the UI scrolls inside its own panes: the viewport is the page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ui", default="http://127.0.0.1:3000", help="the running costudy ui")
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="folder for PNGs")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    parser.add_argument(
        "--day", default=yesterday, help="the partition to show (default: the demo's last day)"
    )
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--timeout", type=float, default=120, help="seconds for a page to load")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(
            f"no Chromium at {args.chromium} (apt-get install chromium, or --chromium)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1600})
        page.add_init_script(NO_COMMUNITY_DIALOG)
        for name, (url, loaded) in pages(args.ui.rstrip("/"), args.day).items():
            png = args.out / f"{name}.png"
            screenshot(page, url, loaded, png, args.timeout, CLICK.get(name))
            print(f"{png}  <- {url}", file=sys.stderr)
        for name, (asset, title) in CHARTS.items():
            png = args.out / f"{name}.png"
            href = open_chart(page, args.ui.rstrip("/"), asset, name, title, png, args.timeout)
            print(f"{png}  <- {href}", file=sys.stderr)
        browser.close()


if __name__ == "__main__":
    main()
