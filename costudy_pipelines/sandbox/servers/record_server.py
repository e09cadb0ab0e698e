"""A sandbox server whose data is collections of records (Whop, GoHighLevel), with the ways to
change that data while it runs: from Python, or over HTTP from another process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.servers.base import SandboxServer, json_response, read_json
from costudy_pipelines.sandbox.servers.faults import FaultPlan
from costudy_pipelines.sandbox.servers.records import (
    Record,
    RecordCollection,
    RecordSource,
    materialise,
)


class RecordServer(SandboxServer):
    """Serves `RecordCollection`s. Data changes build new indexes and swap them in, so requests
    in flight finish on the data they started with."""

    def __init__(
        self,
        collections: Iterable[RecordCollection],
        sources: Mapping[str, RecordSource | None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self.collections = {collection.name: collection for collection in collections}
        self._sources: dict[str, RecordSource] = {}
        self._data_lock = threading.Lock()
        for name, source in sources.items():
            if source is not None:
                self.replace(name, source)
        super().__init__(host=host, port=port, faults=faults)

    # ------------------------------------------------------------------ data, from Python
    def replace(self, collection: str, records: RecordSource) -> None:
        """Serve exactly these records from now on. A callable is kept, and read again by
        `refresh()` (e.g. the world generator's store after it advanced a day)."""
        target = self._collection(collection)
        if callable(records):
            self._sources[collection] = records
        with self._data_lock:
            target.replace(materialise(records))

    def upsert(self, collection: str, records: Iterable[Record]) -> None:
        """Add records, or replace those whose id is already served."""
        target = self._collection(collection)
        with self._data_lock:
            target.upsert(records)

    def delete(self, collection: str, ids: Iterable[str]) -> int:
        """Stop serving these ids; returns how many were served."""
        target = self._collection(collection)
        with self._data_lock:
            return target.delete(ids)

    def refresh(self) -> None:
        """Read every callable source again."""
        for name, source in self._sources.items():
            with self._data_lock:
                self.collections[name].replace(materialise(source))

    def count(self, collection: str) -> int:
        return len(self._collection(collection))

    def _collection(self, name: str) -> RecordCollection:
        try:
            return self.collections[name]
        except KeyError:
            known = ", ".join(sorted(self.collections))
            raise KeyError(f"{self.system} has no collection {name!r} (known: {known})") from None

    # ------------------------------------------------------------ data, over HTTP
    def admin_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/data", self._data_counts, methods=["GET"]),
            Route(
                "/_sandbox/data/{collection}",
                self._data_endpoint,
                methods=["PUT", "POST", "DELETE"],
            ),
        ]

    async def _data_counts(self, request: Request) -> Response:
        return json_response(200, {name: len(c) for name, c in self.collections.items()})

    async def _data_endpoint(self, request: Request) -> Response:
        """PUT: replace with the JSON-lines body; POST: upsert it; DELETE: a JSON list of ids."""
        name = request.path_params["collection"]
        if name not in self.collections:
            return json_response(404, {"error": f"unknown collection {name!r}"})
        try:
            if request.method == "DELETE":
                ids = await read_json(request)
                if not isinstance(ids, list):
                    raise ValueError("DELETE body must be a JSON list of ids")
                removed = await run_in_threadpool(self.delete, name, ids)
                return json_response(200, {"deleted": removed, "count": self.count(name)})
            records = _json_lines(await request.body())
            change = self.replace if request.method == "PUT" else self.upsert
            await run_in_threadpool(change, name, records)
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, {"count": self.count(name)})


def _json_lines(body: bytes) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number}: expected a JSON object")
        records.append(record)
    return records
