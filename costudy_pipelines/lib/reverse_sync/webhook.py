"""The webhook receiver: signed pushes from the website, recorded in the platform's inbox.

The website POSTs `{"event_type": "demo_requests", "source_id": "42", ...}` to
`/webhooks/website` when a row changes, with three headers:

    X-Costudy-Delivery:  the delivery's unique id (a retry of the same delivery reuses it)
    X-Costudy-Timestamp: Unix seconds when it was sent
    X-Costudy-Signature: "v1=" + hex HMAC-SHA256(secret, f"{timestamp}.{delivery}." + body)

Signing the timestamp and delivery id with the body means neither can be swapped: a stale
request is refused by its timestamp, a replayed one by its delivery id (unique among accepted
deliveries, enforced by the database, so two racing replays cannot both be accepted).

Accepted deliveries only name a row; the sync reads the row itself from the website database,
which stays the source of truth. Refused deliveries are recorded too (reason, no body), so an
operator can see a website that signs with the wrong secret.

Answers: 202 accepted, 401 unsigned / bad signature / stale, 409 replayed, 413 too large,
422 signed but not a delivery we understand, 503 the inbox cannot be written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.reverse_sync.events import EVENT_TYPES

SECRET_VAR = "WEBSITE_WEBHOOK_SECRET"
WEBHOOK_PATH = "/webhooks/website"
DELIVERY_HEADER = "X-Costudy-Delivery"
TIMESTAMP_HEADER = "X-Costudy-Timestamp"
SIGNATURE_HEADER = "X-Costudy-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300.0
MAX_BODY_BYTES = 64 * 1024
MAX_DELIVERY_ID = 200
SOURCE_ID = re.compile(r"^[0-9]{1,19}$")


def signature(secret: str, timestamp: str, delivery_id: str, body: bytes) -> str:
    signed = f"{timestamp}.{delivery_id}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(
    secret: str, body: bytes, *, delivery_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The headers a sender adds to `body` (for the website team, and for tests)."""
    delivery_id = delivery_id or uuid.uuid4().hex
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, stamp, delivery_id, body),
        "Content-Type": "application/json",
    }


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    sent_at: float | None
    event_type: str | None = None
    source_id: str | None = None
    payload: dict[str, Any] | None = None
    signature_verified: bool = False
    refusal: str | None = None


class Refused(Exception):
    def __init__(self, status: int, reason: str, delivery: Delivery) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.delivery = delivery


def verify(
    secret: str, headers: dict[str, str], body: bytes, *, now: float, tolerance_s: float
) -> Delivery:
    """The delivery the headers and body describe, or Refused (with what to record)."""
    delivery_id = headers.get(DELIVERY_HEADER.lower(), "")[:MAX_DELIVERY_ID]
    stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    sent_at = float(stamp) if stamp.isdigit() else None
    unverified = Delivery(delivery_id or "(none)", sent_at)
    given = headers.get(SIGNATURE_HEADER.lower())
    if not given or not delivery_id or sent_at is None:
        raise Refused(401, "unsigned", unverified)
    expected = signature(secret, stamp, delivery_id, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(401, "bad_signature", unverified)
    verified = Delivery(delivery_id, sent_at, signature_verified=True)
    if abs(now - sent_at) > tolerance_s:
        raise Refused(401, "stale_timestamp", verified)
    return _parsed(verified, body)


def _parsed(verified: Delivery, body: bytes) -> Delivery:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise Refused(422, "invalid_payload: not a JSON object", verified)
    event_type, source_id = payload.get("event_type"), str(payload.get("source_id", ""))
    if event_type not in EVENT_TYPES:
        raise Refused(
            422, f"invalid_payload: event_type must be one of {sorted(EVENT_TYPES)}", verified
        )
    if not SOURCE_ID.match(source_id):
        raise Refused(422, "invalid_payload: source_id must be the website row's id", verified)
    return Delivery(
        verified.delivery_id,
        verified.sent_at,
        event_type=event_type,
        source_id=source_id,
        payload=payload,
        signature_verified=True,
    )


ACCEPT = sa.text(
    """
    insert into reverse_sync_webhook_inbox
        (delivery_id, event_type, source_id, payload, signature_verified, sent_at)
    values (:delivery_id, :event_type, :source_id, cast(:payload as jsonb), true,
            to_timestamp(:sent_at))
    on conflict (delivery_id) where refusal is null do nothing
    returning id
    """
)
REFUSE = sa.text(
    """
    insert into reverse_sync_webhook_inbox
        (delivery_id, signature_verified, refusal, sent_at)
    values (:delivery_id, :signature_verified, :refusal, to_timestamp(:sent_at))
    """
)


class Inbox:
    """The inbox table, through a pooled engine (one short transaction per delivery)."""

    def __init__(self, url: str, *, source: str) -> None:
        self.engine = pg.make_engine(url, source=source, pool_size=4)

    def accept(self, delivery: Delivery) -> int | None:
        """The new inbox id, or None when this delivery id was accepted before (a replay)."""
        params = {
            "delivery_id": delivery.delivery_id,
            "event_type": delivery.event_type,
            "source_id": delivery.source_id,
            "payload": json.dumps(delivery.payload),
            "sent_at": delivery.sent_at,
        }
        with self.engine.begin() as conn:
            return conn.execute(ACCEPT, params).scalar_one_or_none()

    def refuse(self, delivery: Delivery, reason: str) -> None:
        params = {
            "delivery_id": delivery.delivery_id,
            "signature_verified": delivery.signature_verified,
            "refusal": reason,
            "sent_at": delivery.sent_at,
        }
        with self.engine.begin() as conn:
            conn.execute(REFUSE, params)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past MAX_BODY_BYTES (read no further: a huge body costs no memory)."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def create_app(
    *,
    secret: str,
    platform_url: str,
    source: str = "PLATFORM_DB_URL",
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> Starlette:
    """The receiver as an ASGI app (uvicorn serves it: `costudy webhook serve`)."""
    if not secret:
        raise ValueError(f"{SECRET_VAR} is empty: the receiver refuses to run without a secret")
    inbox = Inbox(platform_url, source=source)

    async def handle(request: Request) -> int:
        body = await _read_body(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        if body is None:
            delivery_id = headers.get(DELIVERY_HEADER.lower(), "(none)")[:MAX_DELIVERY_ID]
            raise Refused(413, "too_large", Delivery(delivery_id, None))
        delivery = verify(secret, headers, body, now=time.time(), tolerance_s=tolerance_s)
        inbox_id = await run_in_threadpool(inbox.accept, delivery)
        if inbox_id is None:
            raise Refused(409, "replayed", delivery)
        return inbox_id

    async def receive(request: Request) -> JSONResponse:
        try:
            try:
                inbox_id = await handle(request)
            except Refused as refused:
                await run_in_threadpool(inbox.refuse, refused.delivery, refused.reason)
                return JSONResponse({"error": refused.reason}, status_code=refused.status)
        except sa.exc.OperationalError:
            return JSONResponse({"error": "inbox unavailable, retry later"}, status_code=503)
        return JSONResponse({"inbox_id": inbox_id}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        inbox.engine.dispose()

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
