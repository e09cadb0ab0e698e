"""What every sandbox server shares: lifecycle, the request gate (auth, rate limit, faults) and
the admin endpoints under /_sandbox/.

A server is a Starlette app behind uvicorn on 127.0.0.1. `start()` runs it on a background
thread (tests, `costudy sandbox up` with several servers in one process); `serve_forever()` runs
it in the calling thread (a process of its own). Every request to the system's API passes the
gate first: the system's auth check, then its rate limit, then the fault plan.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from random import Random
from typing import Any, ClassVar, Protocol, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from costudy_pipelines.sandbox.servers.faults import (
    Fault,
    FaultPlan,
    LimitState,
    RateLimit,
    RateLimiter,
    retry_after_headers,
)
from costudy_pipelines.sandbox.servers.records import dump_json

Headers = list[tuple[bytes, bytes]]
ADMIN_PREFIX = "/_sandbox/"
STALL_TICK_SECONDS = 0.05

# Open connections by (local host, local port, peer host, peer port), so that a "drop" fault
# can close the very socket a request came in on. ASGI gives the app no handle on it.
_CONNECTIONS: dict[tuple[Any, ...], asyncio.BaseTransport] = {}


# uvicorn declares AutoHTTPProtocol as a variable (the class it picks at import time), which
# mypy will not take as a base class.
class _TrackedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        local = transport.get_extra_info("sockname") or ("", 0)
        peer = transport.get_extra_info("peername") or ("", 0)
        self._sandbox_key = (local[0], local[1], peer[0], peer[1])
        _CONNECTIONS[self._sandbox_key] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        key = getattr(self, "_sandbox_key", None)  # unset if the connection never opened
        if key is not None:
            _CONNECTIONS.pop(key, None)
        super().connection_lost(exc)


def expected_authorization(secret: str, owner: str) -> str:
    """The Authorization header a request must carry to pass a bearer check."""
    if not secret:
        raise ValueError(f"{owner} needs a secret to check bearer tokens against")
    return f"Bearer {secret}"


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(dump_json(body), status, headers=headers, media_type="application/json")


async def read_json(request: Request) -> Any:
    """The request body as JSON, or ValueError with a message a client can act on."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None


@dataclass
class RequestRecord:
    """One request as the server saw it (status 0: no answer was sent: dropped or still open)."""

    method: str
    path: str
    query: str
    status: int = 0


@dataclass
class _FaultState:
    plan: FaultPlan
    rng: Random
    limiter: RateLimiter


class Server(Protocol):
    """What the sandbox process needs of any server (HTTP or not): start it, stop it, and
    where it listens."""

    @property
    def base_url(self) -> str: ...

    def start(self) -> Self: ...

    def stop(self) -> None: ...


class SandboxServer:
    """Base of every emulated system. Subclasses give `routes()` and the system's answers to an
    unauthorised, rate-limited or failing request (each in that system's real error shape)."""

    system: ClassVar[str] = "sandbox"
    # The limit the real system documents; enforced only when a plan sets a rate limit (the
    # product's tests and benchmarks run at full speed unless they ask for it).
    documented_rate_limit: ClassVar[RateLimit] = RateLimit(max_requests=100, window_seconds=10.0)

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        request_log_size: int = 10_000,
    ) -> None:
        self.host = host
        self.port = port
        self.request_log: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._last_pages: dict[tuple[str, str], tuple[Message, bytes]] = {}
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._state = self._new_state(faults or FaultPlan())
        self._app = Starlette(
            routes=[*self._sandbox_routes(), *self.admin_routes(), *self.routes()]
        )

    # ----------------------------------------------------------- what each system defines
    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def admin_routes(self) -> list[BaseRoute]:
        """Extra /_sandbox/ endpoints (data loading)."""
        return []

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        """The refusal for a request this system would not accept, or None."""
        return None

    def error_body(self, status: int, path: str) -> object:
        return {"message": f"sandbox {self.system}: injected error {status}"}

    def rate_limited_body(self, state: LimitState, path: str) -> object:
        return {"message": "Too Many Requests"}

    def rate_limited_headers(self, state: LimitState) -> Headers:
        """The wait hint a 429 carries: Retry-After and retry-after-ms by default (systems that
        send none, like Google, override this)."""
        return retry_after_headers(state.retry_after or 0.0)

    def rate_limit_bucket(self, path: str) -> str:
        """What one rate-limit window counts: the whole API by default."""
        return "api"

    def rate_limit_headers(self, state: LimitState) -> Headers:
        """Headers reporting the limit on every answer (GoHighLevel does; most don't)."""
        return []

    # ----------------------------------------------------------------------- faults API
    @property
    def faults(self) -> FaultPlan:
        return self._state.plan

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Replace the fault plan (and reset rate-limit windows and the RNG)."""
        self._state = self._new_state(plan or FaultPlan())

    def add_fault(self, fault: Fault) -> None:
        plan = self._state.plan
        plan.faults = [*plan.faults, fault]

    def clear_faults(self) -> None:
        self.set_faults(FaultPlan())

    def _new_state(self, plan: FaultPlan) -> _FaultState:
        limit = plan.rate_limit or self.documented_rate_limit
        limiter = RateLimiter(limit, enforce=plan.rate_limit is not None)
        return _FaultState(plan, Random(plan.seed), limiter)

    # ------------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError(f"sandbox {self.system} server is not started")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Serve on a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"sandbox {self.system} server is already running")
        sock = self._bind()
        self._stopping = False
        self._uvicorn = uvicorn.Server(self._uvicorn_config())
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [sock]},
            name=f"sandbox-{self.system}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox {self.system} server failed to start on {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (requests stalled by a hang fault end at once); safe to call twice."""
        self._stopping = True
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._thread = None
        self._uvicorn = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until SIGINT/SIGTERM (a process of its own)."""
        sock = self._bind()
        uvicorn.Server(self._uvicorn_config()).run(sockets=[sock])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        return sock

    def _uvicorn_config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=_TrackedHTTPProtocol,
            timeout_graceful_shutdown=2,
        )

    # --------------------------------------------------------------------- the gate
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX):
            await self._app(scope, receive, send)
            return
        method = scope["method"]
        entry = RequestRecord(method, path, scope.get("query_string", b"").decode("latin-1"))
        self.request_log.append(entry)
        send = _recording_status(send, entry)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        state = self._state
        bucket = self.rate_limit_bucket(path)
        refusal = self.authorize(method, path, headers)
        if refusal is not None:
            limit_headers = self.rate_limit_headers(state.limiter.peek(bucket))
            await refusal(scope, receive, _adding_headers(send, limit_headers))
            return
        limit = state.limiter.admit(bucket)
        extra = self.rate_limit_headers(limit)
        if limit.retry_after is not None:
            body = self.rate_limited_body(limit, path)
            await _send_json(send, 429, body, extra + self.rate_limited_headers(limit))
            return
        if extra:
            send = _adding_headers(send, extra)
        await self._serve_with_faults(state, scope, receive, send)

    async def _serve_with_faults(
        self, state: _FaultState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        method, path = scope["method"], scope["path"]
        remember = False
        for fault in state.plan.faults:
            remember = remember or fault.kind == "repeat"
            if fault.exhausted or not fault.matches(method, path):
                continue
            fault.seen += 1
            if fault.seen <= fault.skip or (fault.rate < 1.0 and state.rng.random() >= fault.rate):
                continue
            if fault.kind == "repeat" and (method, path) not in self._last_pages:
                continue  # nothing served yet to repeat
            fault.fired += 1
            if fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "hang":
                await self._stall(fault.seconds)
            else:
                await self._fail(fault, state, scope, receive, send)
                return
        if remember:
            send = self._remembering(send, (method, path))
        await self._app(scope, receive, send)

    async def _fail(
        self, fault: Fault, state: _FaultState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        path = scope["path"]
        if fault.kind in ("error", "drop") and fault.after_handler:
            await self._app(scope, receive, _discard)
        if fault.kind == "error" and fault.status == 429:
            # answered as the system answers when its rate limit is hit (`send` already adds
            # the system's rate-limit headers to every answer)
            limit = replace(
                state.limiter.peek(self.rate_limit_bucket(path)),
                remaining=0,
                retry_after=fault.retry_after,
            )
            body = self.rate_limited_body(limit, path)
            await _send_json(send, 429, body, self.rate_limited_headers(limit))
        elif fault.kind == "error":
            await _send_json(send, fault.status, self.error_body(fault.status, path), [])
        elif fault.kind == "drop":
            await _drop_connection(scope)
        elif fault.kind == "repeat":
            start, body = self._last_pages[(scope["method"], path)]
            await send(start)
            await send({"type": "http.response.body", "body": body})
        elif fault.kind == "malformed":
            start, body = await self._capture(scope, receive)
            body = _malformed(body, fault.malformed)
            await send(_with_length(start, len(body)))
            await send({"type": "http.response.body", "body": body})

    async def _stall(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(STALL_TICK_SECONDS, max(0.0, deadline - time.monotonic())))

    async def _capture(self, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
        captured: list[Message] = []
        await self._app(scope, receive, _appending(captured))
        start = next(m for m in captured if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        return start, body

    def _remembering(self, send: Send, endpoint: tuple[str, str]) -> Send:
        """Keep the last 200 answer of an endpoint, for a "repeat" fault to serve again."""
        pending: list[Message] = []

        async def remembering(message: Message) -> None:
            pending.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                start = pending[0]
                if start.get("status") == 200:
                    body = b"".join(m.get("body", b"") for m in pending[1:])
                    self._last_pages[endpoint] = (start, body)
            await send(message)

        return remembering

    # ---------------------------------------------------------------- admin endpoints
    def _sandbox_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/health", self._health, methods=["GET"]),
            Route(
                "/_sandbox/faults", self._faults_endpoint, methods=["GET", "PUT", "POST", "DELETE"]
            ),
            Route("/_sandbox/requests", self._requests_endpoint, methods=["GET", "DELETE"]),
        ]

    async def _health(self, request: Request) -> Response:
        return json_response(200, {"system": self.system, "status": "ok"})

    async def _faults_endpoint(self, request: Request) -> Response:
        """GET the plan; PUT a whole plan; POST one fault to add; DELETE to clear."""
        try:
            if request.method == "PUT":
                self.set_faults(FaultPlan.from_dict(await read_json(request) or {}))
            elif request.method == "POST":
                self.add_fault(Fault.from_dict(await read_json(request) or {}))
            elif request.method == "DELETE":
                self.clear_faults()
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, self.faults.to_dict())

    async def _requests_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.request_log.clear()
        return json_response(200, [asdict(entry) for entry in self.request_log])


# ------------------------------------------------------------------- ASGI helpers
async def _send_json(send: Send, status: int, body: object, headers: Headers) -> None:
    payload = dump_json(body)
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": payload})


async def _discard(message: Message) -> None:
    return None


def _appending(messages: list[Message]) -> Send:
    async def append(message: Message) -> None:
        messages.append(message)

    return append


def _recording_status(send: Send, entry: RequestRecord) -> Send:
    async def recording(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry.status = message["status"]
        await send(message)

    return recording


def _adding_headers(send: Send, extra: Headers) -> Send:
    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return adding


def _with_length(start: Message, length: int) -> Message:
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    return {**start, "headers": [*headers, (b"content-length", str(length).encode())]}


def _malformed(body: bytes, mode: str) -> bytes:
    """A broken page: cut in half (not JSON), or the record list swapped for an object."""
    if mode == "invalid_json":
        return body[: max(1, len(body) // 2)]
    try:
        page = json.loads(body)
    except ValueError:
        return b'{"unexpected": true}'
    if isinstance(page, dict):
        for key, value in page.items():
            if isinstance(value, list):
                page[key] = {"unexpected": len(value)}
                return dump_json(page)
    return b'{"unexpected": true}'


async def _drop_connection(scope: Scope) -> None:
    server, client = scope.get("server") or ("", 0), scope.get("client") or ("", 0)
    transport = _CONNECTIONS.get((server[0], server[1], client[0], client[1]))
    if transport is not None:
        transport.close()
    # Let the loop deliver connection_lost, so uvicorn sees the peer gone and answers nothing.
    for _ in range(3):
        await asyncio.sleep(0)


def run_until_signalled(
    servers: Sequence[Server],
    on_ready: Callable[[Sequence[Server]], None] | None = None,
) -> None:
    """Start several servers in this process, call `on_ready`, block until SIGINT or SIGTERM,
    then stop them all. (`costudy sandbox up` runs this in a process of its own.)"""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    started: list[Server] = []
    try:
        for server in servers:
            started.append(server.start())
        if on_ready is not None:
            on_ready(started)
        stop.wait()
    finally:
        _stop_all(started)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(servers: Iterable[Server]) -> None:
    for server in servers:
        server.stop()
