"""A webhook receiver for the project's own alerts (run failures), so alerting is tested for real.

Like a Slack or PagerDuty incoming webhook: POST a JSON object to the URL, get 2xx. The
receiver keeps what it got (GET lists it) for tests and for a person looking at the sandbox.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.servers.base import SandboxServer, json_response, read_json

PATH = "/hooks/alerts"


class AlertReceiverServer(SandboxServer):
    """POST {PATH} records one alert (a JSON object); GET {PATH} lists them."""

    system = "alerts"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._alerts: list[dict[str, Any]] = []
        super().__init__(host=host, port=port)

    @property
    def webhook_url(self) -> str:
        return self.base_url + PATH

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(alert) for alert in self._alerts]

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        return None  # an incoming webhook's secret is its URL

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self._alerts_endpoint, methods=["GET", "POST"])]

    async def _alerts_endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(200, {"data": self.received()})
        try:
            alert = await read_json(request)
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        if not isinstance(alert, dict):
            return json_response(422, {"error": "an alert is a JSON object"})
        with self._lock:
            self._alerts.append(alert)
        return json_response(202, {"ok": True})
