"""The sandbox's stand-in for the source: its API on 127.0.0.1, serving a contact for every
platform user of the world (so the same people appear here and in the other sources)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.servers.base import (
    SandboxServer,
    expected_authorization,
    json_response,
)
from costudy_pipelines.sandbox.world import World

from .client import PATH
from .spec import API, NAME


def _created(contact: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(contact["created_at"])


class ContactsServer(SandboxServer):
    """GET /contacts?created_after&created_before&limit&cursor → {data, next_cursor, total}."""

    system = NAME

    def __init__(self, contacts: list[dict[str, Any]], *, token: str, port: int = 0) -> None:
        self.contacts = sorted(contacts, key=lambda contact: contact["id"])
        self._authorization = expected_authorization(token, self.system)
        super().__init__(port=port)

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        if path.startswith(PATH) and headers.get("authorization") != self._authorization:
            return json_response(401, {"error": "invalid token"})
        return None

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self._contacts, methods=["GET"])]

    async def _contacts(self, request: Request) -> Response:
        query = request.query_params
        try:
            start = datetime.fromisoformat(query["created_after"])
            end = datetime.fromisoformat(query["created_before"])
            limit = int(query.get("limit", "100"))
        except (KeyError, ValueError) as exc:
            return json_response(400, {"error": f"bad query: {exc}"})
        day = [c for c in self.contacts if start <= _created(c) < end]
        offset = int(query.get("cursor") or 0)
        page = day[offset : offset + limit]
        more = offset + limit < len(day)
        cursor = str(offset + limit) if more else None
        return json_response(200, {"data": page, "next_cursor": cursor, "total": len(day)})


def contacts(world: World) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{NAME}-{index}",
            "email": user.get("email"),
            "name": user.get("name"),
            "created_at": _timestamp(user.get("created_at")),
        }
        for index, user in enumerate(world.records("platform_users"))
    ]


def _timestamp(value: object) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def server(world: World, port: int, token: str) -> ContactsServer:
    return ContactsServer(contacts(world), token=token, port=port)


def environment(context: SandboxContext) -> dict[str, str]:
    """The variables spec.py's API reads, pointing at this server."""
    variables = API.environment
    return {variables["base_url"]: context.base_url or "", variables["token"]: context.token or ""}


EMULATOR = Emulator(environment=environment, service=NAME, server=server)
