"""Tiny real HTTP servers for the client tests: Starlette apps under uvicorn on 127.0.0.1.

They stand in for the sandbox servers until those are merged; every request they receive is
recorded (with the server-side arrival time) so tests assert what went over the wire.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Hit:
    at: float
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class Recorder:
    """Every request an app received, in order of arrival."""

    hits: list[Hit] = field(default_factory=list)

    async def record(self, request: Request) -> Hit:
        raw = await request.body()
        hit = Hit(
            at=time.monotonic(),
            method=request.method,
            path=request.url.path,
            params=dict(request.query_params),
            headers=dict(request.headers),
            body=raw.decode() if raw else None,
        )
        self.hits.append(hit)
        return hit


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run `app` on a free port in a background thread; yields its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Script:
    """An endpoint that answers with the next scripted handler (repeating the last one)."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = list(handlers)
        self.recorder = Recorder()

    async def handle(self, request: Request) -> Response:
        await self.recorder.record(request)
        handler = self.handlers.pop(0) if len(self.handlers) > 1 else self.handlers[0]
        return await handler(request)

    @property
    def hits(self) -> list[Hit]:
        return self.recorder.hits

    def app(self, path: str = "/items", methods: tuple[str, ...] = ("GET",)) -> Starlette:
        return Starlette(routes=[Route(path, self.handle, methods=list(methods))])


def answer(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: Request) -> Response:
        if isinstance(body, str | bytes):
            return Response(body, status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    return handler


def hang(seconds: float) -> Handler:
    async def handler(request: Request) -> Response:
        await asyncio.sleep(seconds)
        return JSONResponse({"late": True})

    return handler
