"""The product platform's HTTP API, the target of the reverse sync's API strategy.

No real reference exists (the platform is CoStudy's own): the shape is ours and kept small.
Four kinds of record, each under its path: `POST {path}` creates one, `GET {path}` lists them
all (so tests can assert that every website event landed exactly once), `GET {path}/{id}` reads
one and `PATCH {path}/{id}` updates one. Every request passes the same gate (bearer token, rate
limit, fault plan; see base.py).

An `Idempotency-Key` header makes a create safe to retry: the same key with the same body
answers the first result again (header `Idempotent-Replayed: true`) without creating anything;
the same key with another body is 422.

A PATCH sets the fields its body names and leaves the others alone (the id, `created_at`, and
whatever the platform's own users set on the record); it answers the whole record (200), 404
for an id the platform does not have, 422 for a body that would leave the record invalid.
Applying the same PATCH twice leaves the same record, so it is retried without a key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.servers.base import (
    SandboxServer,
    expected_authorization,
    json_response,
    read_json,
)
from costudy_pipelines.sandbox.servers.faults import FaultPlan, LimitState, RateLimit
from costudy_pipelines.sandbox.servers.records import dump_json

API = "/api/v1"
# kind -> (path under /api/v1, id prefix)
KINDS: dict[str, tuple[str, str]] = {
    "leads": ("/leads", "lead"),
    "engagements": ("/engagements", "eng"),
    "mailing_list": ("/mailing-list/subscribers", "sub"),
    "support_tickets": ("/support-tickets", "tkt"),
}

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]
# Set by the platform on create; a PATCH may not change them.
READ_ONLY = frozenset({"id", "created_at", "updated_at"})


@dataclass(frozen=True)
class _Remembered:
    fingerprint: str
    status: int
    body: bytes


class PlatformApiServer(SandboxServer):
    """Leads, engagements, mailing-list subscribers and support tickets, in memory."""

    system = "platform"
    documented_rate_limit = RateLimit(max_requests=50, window_seconds=1.0)  # ours, not a real one

    def __init__(
        self,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self._authorization = expected_authorization(token, "PlatformApiServer")
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._idempotent: dict[str, _Remembered] = {}
        super().__init__(host=host, port=port, faults=faults)

    def created(self, kind: str) -> list[dict[str, Any]]:
        """Every record of one kind (leads, engagements, mailing_list, support_tickets) in the
        order they were created, as they are now (updates applied)."""
        if kind not in self._records:
            raise KeyError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
        with self._lock:
            return [dict(item) for item in self._records[kind].values()]

    def reset(self) -> None:
        """Forget every record and every idempotency key."""
        with self._lock:
            self._records = {kind: {} for kind in KINDS}
            self._idempotent.clear()

    # ------------------------------------------------------------ system error shapes
    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        if headers.get("authorization") == self._authorization:
            return None
        return _error(401, "unauthorized", "missing or invalid bearer token")

    def error_body(self, status: int, path: str) -> object:
        return {"error": {"code": "internal_error", "message": "internal server error"}}

    def rate_limited_body(self, state: LimitState, path: str) -> object:
        return {"error": {"code": "rate_limited", "message": "too many requests"}}

    # -------------------------------------------------------------------- endpoints
    def routes(self) -> list[BaseRoute]:
        collections: list[BaseRoute] = [
            Route(f"{API}{path}", self._endpoint(kind), methods=["GET", "POST"])
            for kind, (path, _) in KINDS.items()
        ]
        records = [
            Route(
                f"{API}{path}/{{record_id}}", self._record_endpoint(kind), methods=["GET", "PATCH"]
            )
            for kind, (path, _) in KINDS.items()
        ]
        return collections + records

    def _endpoint(self, kind: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            if request.method == "GET":
                return json_response(200, {"data": self.created(kind)})
            return await self._create(kind, request)

        return endpoint

    def _record_endpoint(self, kind: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            record_id = request.path_params["record_id"]
            if request.method == "PATCH":
                return await self._update(kind, record_id, request)
            with self._lock:
                record = self._records[kind].get(record_id)
                return _not_found(kind, record_id) if record is None else json_response(200, record)

        return endpoint

    async def _create(self, kind: str, request: Request) -> Response:
        body = await _object_body(request)
        if isinstance(body, Response):
            return body
        problem = _validation_problem(body)
        if problem:
            return _error(422, "validation_error", problem)
        key = request.headers.get("idempotency-key")
        fingerprint = f"{request.url.path}\n{json.dumps(body, sort_keys=True)}"
        # No await from here on: check-and-create is atomic on the event loop.
        if key:
            remembered = self._idempotent.get(key)
            if remembered is not None:
                if remembered.fingerprint != fingerprint:
                    message = "this Idempotency-Key was used with a different request"
                    return _error(422, "idempotency_key_reused", message)
                headers = {"Idempotent-Replayed": "true"}
                return Response(remembered.body, remembered.status, headers, "application/json")
        created = self._store(kind, body)
        payload = dump_json(created)
        if key:
            self._idempotent[key] = _Remembered(fingerprint, 201, payload)
        return Response(payload, 201, media_type="application/json")

    def _store(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            records = self._records[kind]
            prefix = KINDS[kind][1]
            created = {
                **body,
                "id": f"{prefix}_{len(records) + 1:06d}",
                "created_at": datetime.now(UTC).isoformat(),
            }
            records[created["id"]] = created
            return dict(created)

    async def _update(self, kind: str, record_id: str, request: Request) -> Response:
        body = await _object_body(request)
        if isinstance(body, Response):
            return body
        if fixed := sorted(READ_ONLY & body.keys()):
            return _error(422, "validation_error", f"read-only field(s) {fixed}")
        with self._lock:
            record = self._records[kind].get(record_id)
            if record is None:
                return _not_found(kind, record_id)
            problem = _validation_problem({**record, **body})
            if problem:
                return _error(422, "validation_error", problem)
            record.update(body, updated_at=datetime.now(UTC).isoformat())
            return json_response(200, record)


async def _object_body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, or the answer refusing it (400 not JSON, 422 not an object)."""
    try:
        body = await read_json(request)
    except ValueError as exc:
        return _error(400, "invalid_json", str(exc))
    if not isinstance(body, dict):
        return _error(422, "validation_error", "request body must be a JSON object")
    return body


def _validation_problem(body: dict[str, Any]) -> str | None:
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        return "email is required and must be an email address"
    return None


def _not_found(kind: str, record_id: str) -> Response:
    return _error(404, "not_found", f"no {kind} record {record_id!r}")


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})
