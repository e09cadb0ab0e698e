"""The charts (lib/svg_charts.py) served over http, so the Dagster UI links to them and shows
them inline (its Markdown takes http(s) images only; a `file://` link opens nothing in a
browser, and nothing at all on a remote webserver).

`costudy ui` starts this server beside `dg dev` (it stops when its parent does); elsewhere run
`python -m costudy_pipelines.lib.chart_server --port 8788` next to the webserver and set
COSTUDY_CHARTS_URL to the address the operators' browsers reach it at. It serves GET
/charts/<name>.svg from the charts folder and nothing else: no listing, no other file.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from costudy_pipelines.lib.svg_charts import charts_folder

CHARTS_URL_VAR = "COSTUDY_CHARTS_URL"
CHARTS_PORT_VAR = "COSTUDY_CHARTS_PORT"
DEFAULT_PORT = 8788
CHART_PATH = re.compile(r"^/charts/([a-z0-9_]+)\.svg$")


def charts_url() -> str:
    """Where browsers reach the chart server: COSTUDY_CHARTS_URL, else this machine's port."""
    base = os.environ.get(CHARTS_URL_VAR)
    if base:
        return base.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get(CHARTS_PORT_VAR) or DEFAULT_PORT}"


def chart_url(name: str, version: str = "") -> str:
    """The address of chart `name`; `version` (its content's digest) keeps a browser from
    showing a cached older chart."""
    return f"{charts_url()}/charts/{name}.svg" + (f"?v={version}" if version else "")


def handler_for(folder: Path) -> type[BaseHTTPRequestHandler]:
    class ChartHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            match = CHART_PATH.match(self.path.split("?", 1)[0])
            path = folder / f"{match.group(1)}.svg" if match else None
            if path is None or not path.is_file():
                self.send_error(HTTPStatus.NOT_FOUND, "no such chart")
                return
            body = path.read_bytes()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "image/svg+xml")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the UI asks for charts often; nothing worth a log line

    return ChartHandler


def chart_server(port: int, folder: Path | None = None) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:`port` (0: any free port) for the charts in `folder`."""
    return ThreadingHTTPServer(("127.0.0.1", port), handler_for(folder or charts_folder()))


def serve_while_parent_lives(server: ThreadingHTTPServer) -> None:
    """Serve until the process that started this one ends (then this one is re-parented)."""
    parent = os.getppid()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while os.getppid() == parent:
        time.sleep(1)
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the project's charts over http.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--with-parent", action="store_true", help="stop when the starting process ends"
    )
    arguments = parser.parse_args()
    server = ThreadingHTTPServer((arguments.host, arguments.port), handler_for(charts_folder()))
    if arguments.with_parent:
        serve_while_parent_lives(server)
    else:
        server.serve_forever()


if __name__ == "__main__":
    main()
