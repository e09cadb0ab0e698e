"""The webhook receiver: signed pushes from the website, recorded in the platform's inbox.

The website POSTs `{"event_type": "demo_requests", "source_id": "42", ...}` to
`/webhooks/website` when a row changes, with three headers:

    X-Costudy-Delivery:  the delivery's unique id, at most 200 characters (a retry of the same
                         delivery reuses it)
    X-Costudy-Timestamp: Unix seconds when it was sent
    X-Costudy-Signature: "v1=" + hex HMAC-SHA256(secret, f"{timestamp}.{delivery}." + body)

Signing the timestamp and delivery id with the body means neither can be swapped: a stale
request is refused by its timestamp, a replayed one by its delivery id (unique among accepted
deliveries, enforced by the database, so two racing replays cannot both be accepted).

The signature is checked before any header is interpreted, so nothing a sender without the
secret chose reaches SQL. Requests refused before that point (unsigned, bad signature, too
large) leave no row each: they are tallied in memory per reason with a few samples and added
to `reverse_sync_webhook_refusals` every few seconds, so their number cannot grow a table.
Refusals of signed deliveries (stale, replayed, invalid) are kept in the inbox, one row each.

Accepted deliveries only name a row; the sync reads the row itself from the website database,
which stays the source of truth. An accepted delivery is committed with synchronous_commit on
before the 202 leaves, whatever the server's default: a crash after the answer loses nothing.

Answers: 202 accepted, 401 unsigned / bad signature / stale, 409 replayed, 413 too large
(and the connection closed), 422 signed but not a delivery we understand, 503 (with
Retry-After) too many deliveries in flight or the inbox cannot be written.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.loading.canonical import UnstorableRecord, canonical_json
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
# Deliveries handled at once; beyond it a sender gets 503 at once instead of a slow answer.
# The inbox writes through 4 connections: 32 in flight keep them busy with a short queue.
DEFAULT_MAX_IN_FLIGHT = 32
RETRY_AFTER_S = 1
# Unauthenticated refusals: how often the in-memory tally is written, samples kept per reason.
DEFAULT_TALLY_FLUSH_S = 5.0
SAMPLES_PER_REASON = 5
SOURCE_ID = re.compile(r"^[0-9]{1,19}$")
# Unix seconds, ASCII digits only: 11 digits reach the year 5138, within PostgreSQL's range.
TIMESTAMP = re.compile(r"^[0-9]{1,11}$")
log = logging.getLogger(__name__)


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
    """A delivery whose signature was verified (only those are written to the inbox)."""

    delivery_id: str
    sent_at: float | None
    event_type: str | None = None
    source_id: str | None = None
    payload: bytes | None = None


class Refused(Exception):
    """A signed delivery refused: recorded in the inbox with its reason."""

    def __init__(self, status: int, reason: str, delivery: Delivery) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.delivery = delivery


class Unauthenticated(Exception):
    """A request refused before its signature was verified: tallied, never a row of its own."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _single(headers: Headers, name: str) -> str | None:
    """The header's one value; None when absent; refused when repeated (which one is signed?)."""
    values = headers.getlist(name)
    if len(values) > 1:
        raise Unauthenticated(401, "repeated_header")
    return values[0] if values else None


def verify(
    secret: str, headers: Headers, body: bytes, *, now: float, tolerance_s: float
) -> Delivery:
    """The delivery the headers and body describe; Unauthenticated or Refused otherwise.

    Header values are only compared until the signature holds: they are read as opaque text
    (any length, any characters), so a malformed one is a 401, never an error further on.
    """
    delivery_id = _single(headers, DELIVERY_HEADER)
    stamp = _single(headers, TIMESTAMP_HEADER)
    given = _single(headers, SIGNATURE_HEADER)
    if not given or not delivery_id or not stamp:
        raise Unauthenticated(401, "unsigned")
    expected = signature(secret, stamp, delivery_id, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated(401, "bad_signature")
    # From here on the sender holds the secret: refusals are recorded one by one.
    if len(delivery_id) > MAX_DELIVERY_ID:
        shortened = Delivery(delivery_id[: MAX_DELIVERY_ID - 1] + "…", None)
        raise Refused(
            422,
            f"invalid_delivery_id: {DELIVERY_HEADER} is {len(delivery_id)} characters long, "
            f"at most {MAX_DELIVERY_ID} are accepted",
            shortened,
        )
    sent_at = float(stamp) if TIMESTAMP.match(stamp) else None
    if sent_at is None or abs(now - sent_at) > tolerance_s:
        raise Refused(401, "stale_timestamp", Delivery(delivery_id, sent_at))
    return _parsed(Delivery(delivery_id, sent_at), body)


def _parsed(verified: Delivery, body: bytes) -> Delivery:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the stack
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
    try:
        stored = canonical_json(payload)  # refuses NUL and broken Unicode, as the sync engine
    except UnstorableRecord as exc:
        raise Refused(422, f"invalid_payload: {exc}", verified) from None
    return Delivery(
        verified.delivery_id,
        verified.sent_at,
        event_type=event_type,
        source_id=source_id,
        payload=stored,
    )


@dataclass
class _ReasonTally:
    refusals: int
    first_at: float
    last_at: float
    samples: list[dict[str, str | None]] = field(default_factory=list)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def _sample_text(value: str | None, limit: int) -> str | None:
    """A header as sampled: shortened, control characters (NUL among them) replaced."""
    return None if value is None else _UNPRINTABLE.sub("?", value[:limit])


class RefusalTally:
    """Unauthenticated refusals since the last flush: per reason a count and a few samples.

    Reasons come from a fixed set and samples are capped, so memory stays bounded whatever
    arrives; the event loop is the only writer, so no lock is needed.
    """

    def __init__(self) -> None:
        self.reasons: dict[str, _ReasonTally] = {}

    def add(self, reason: str, headers: Headers, client: str | None, at: float) -> None:
        tally = self.reasons.setdefault(reason, _ReasonTally(0, at, at))
        tally.refusals += 1
        tally.last_at = at
        if len(tally.samples) < SAMPLES_PER_REASON:
            tally.samples.append(
                {
                    "delivery_id": _sample_text(headers.get(DELIVERY_HEADER), MAX_DELIVERY_ID),
                    "timestamp": _sample_text(headers.get(TIMESTAMP_HEADER), 40),
                    "client": client,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                }
            )

    def take(self) -> list[dict[str, Any]]:
        """The tally as rows for ADD_REFUSALS, and a fresh start."""
        taken, self.reasons = self.reasons, {}
        return [{"reason": reason, **asdict(tally)} for reason, tally in sorted(taken.items())]


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
    insert into reverse_sync_webhook_inbox (delivery_id, signature_verified, refusal, sent_at)
    values (:delivery_id, true, :refusal, to_timestamp(:sent_at))
    """
)
# One statement per flush; samples beyond SAMPLES_PER_REASON per hour and reason are dropped.
ADD_REFUSALS = sa.text(
    """
    insert into reverse_sync_webhook_refusals as t
        (window_start, reason, refusals, first_at, last_at, samples)
    select date_trunc('hour', to_timestamp(r.last_at)), r.reason, r.refusals,
           to_timestamp(r.first_at), to_timestamp(r.last_at), r.samples
    from jsonb_to_recordset(cast(:rows as jsonb))
        as r(reason text, refusals bigint, first_at float8, last_at float8, samples jsonb)
    on conflict (window_start, reason) do update set
        refusals = t.refusals + excluded.refusals,
        first_at = least(t.first_at, excluded.first_at),
        last_at = greatest(t.last_at, excluded.last_at),
        samples = (
            select coalesce(jsonb_agg(s.sample order by s.n), '[]')
            from jsonb_array_elements(t.samples || excluded.samples) with ordinality as s(sample, n)
            where s.n <= :cap
        )
    """
)


class Inbox:
    """The inbox table, through a pooled engine (one short transaction per delivery)."""

    def __init__(self, url: str, *, source: str) -> None:
        self.engine = pg.make_engine(url, source=source, pool_size=4)

    def accept(self, delivery: Delivery) -> int | None:
        """The new inbox id, or None when this delivery id was accepted before (a replay).

        The 202 that follows tells the sender it may forget the delivery, so the commit waits
        for the WAL flush even on a server run with synchronous_commit off.
        """
        assert delivery.payload is not None
        params = {
            "delivery_id": delivery.delivery_id,
            "event_type": delivery.event_type,
            "source_id": delivery.source_id,
            "payload": delivery.payload.decode(),
            "sent_at": delivery.sent_at,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.text("set local synchronous_commit = on"))
            return conn.execute(ACCEPT, params).scalar_one_or_none()

    def refuse(self, refused: Refused) -> None:
        params = {
            "delivery_id": refused.delivery.delivery_id,
            "refusal": refused.reason,
            "sent_at": refused.delivery.sent_at,
        }
        with self.engine.begin() as conn:
            conn.execute(REFUSE, params)

    def add_refusals(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(ADD_REFUSALS, {"rows": json.dumps(rows), "cap": SAMPLES_PER_REASON})


def _declared_too_large(headers: Headers) -> bool:
    length = headers.get("content-length", "")
    return length.isascii() and length.isdigit() and int(length) > MAX_BODY_BYTES


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past MAX_BODY_BYTES (read no further: a huge body costs no memory)."""
    if _declared_too_large(request.headers):
        return None
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
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    tally_flush_s: float = DEFAULT_TALLY_FLUSH_S,
) -> Starlette:
    """The receiver as an ASGI app (uvicorn serves it: `costudy webhook serve`)."""
    if not secret:
        raise ValueError(f"{SECRET_VAR} is empty: the receiver refuses to run without a secret")
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
    inbox = Inbox(platform_url, source=source)
    tally = RefusalTally()
    in_flight = 0

    async def handle(request: Request) -> int:
        body = await _read_body(request)
        if body is None:
            raise Unauthenticated(413, "too_large")
        delivery = verify(secret, request.headers, body, now=time.time(), tolerance_s=tolerance_s)
        inbox_id = await run_in_threadpool(inbox.accept, delivery)
        if inbox_id is None:
            raise Refused(409, "replayed", delivery)
        return inbox_id

    async def answer(request: Request) -> JSONResponse:
        try:
            try:
                inbox_id = await handle(request)
            except Refused as refused:
                await run_in_threadpool(inbox.refuse, refused)
                return JSONResponse({"error": refused.reason}, status_code=refused.status)
        except Unauthenticated as refused:
            client = request.client.host if request.client else None
            tally.add(refused.reason, request.headers, client, time.time())
            # A 413 leaves the rest of the body unread: the connection cannot be reused.
            close = {"Connection": "close"} if refused.status == 413 else None
            return JSONResponse({"error": refused.reason}, refused.status, headers=close)
        except sa.exc.OperationalError:
            return busy("inbox unavailable, retry later")
        return JSONResponse({"inbox_id": inbox_id}, status_code=202)

    def busy(reason: str) -> JSONResponse:
        return JSONResponse(
            {"error": reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    async def receive(request: Request) -> JSONResponse:
        nonlocal in_flight
        if in_flight >= max_in_flight:  # shed before reading the body: costs next to nothing
            return busy("too many deliveries in flight, retry later")
        in_flight += 1
        try:
            return await answer(request)
        finally:
            in_flight -= 1

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def flush() -> None:
        rows = tally.take()
        try:
            await run_in_threadpool(inbox.add_refusals, rows)
        except sa.exc.DBAPIError as exc:  # counts of refused requests only: carry on without
            log.warning("could not record %d kinds of refused requests: %s", len(rows), exc)

    async def flush_periodically() -> None:
        while True:
            await asyncio.sleep(tally_flush_s)
            await flush()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        flusher = asyncio.create_task(flush_periodically())
        yield
        flusher.cancel()
        with suppress(asyncio.CancelledError):
            await flusher
        await flush()
        inbox.engine.dispose()

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
