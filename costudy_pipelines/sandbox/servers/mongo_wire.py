"""A MongoDB server for the sandbox: the wire protocol (OP_MSG, and OP_QUERY for the first
handshake) over TCP on 127.0.0.1, serving in-memory collections, with faults on demand.

    server = MongoWireServer("course_analytics", {"user_activity": documents}).start()
    MongoClient(server.uri)[server.database]["user_activity"].find(...)
    server.add_fault(drop_connection(on_get_more=2))  # the 2nd getMore loses its connection
    server.stop()

No MongoDB server can be installed on these machines, and mongomock-style fakes skip the very
layer a driver talks to; this speaks the real protocol, so `pymongo.MongoClient` is used as
against a real deployment. What it answers (queries are mongo_query.py's; anything else gets
a MongoDB error document, `ok: 0` with errmsg, code and codeName, so a client relying on more
fails loudly):
  hello / isMaster, ping, buildInfo, endSessions;
  find: filter on top-level or dotted fields by equality or $eq/$gt/$gte/$lt/$lte/$in/$ne/$nin,
        and $and; sort (MongoDB's cross-type order); skip; limit; batchSize; singleBatch;
        projection of top-level fields (inclusion or exclusion);
  getMore, killCursors;
  aggregate: $match, $sort, $skip, $limit and a $group by a constant with {$sum: <number>}
        (what `Collection.count_documents` sends).
Authentication is optional: given `users` (name -> password), the server requires
SCRAM-SHA-256 (saslStart / saslContinue, see scram.py) before any read, as a deployment with
access control does; without them a client that tries to authenticate is told to drop the
credentials from its URI.

Faults are the sandbox's `Fault`s (sandbox/servers/faults.py), matched by command name in
place of a path (`Fault("drop", path="getMore", skip=1)`): kinds drop (close the connection
without answering), latency (answer late), hang (stall `seconds`, ended early by stop()) and
error (answer MongoDB error `status` as the code; 43 CursorNotFound also forgets the cursor,
as a server whose cursor timed out does).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import socketserver
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import Any, ClassVar, Self
from urllib.parse import quote_plus

import bson
from bson.codec_options import CodecOptions
from bson.int64 import Int64

from costudy_pipelines.sandbox.servers.faults import Fault, FaultPlan
from costudy_pipelines.sandbox.servers.mongo_query import (
    CommandError,
    Document,
    IndexedCollection,
    group_count,
    matches,
    project,
    sort_documents,
    unsupported,
)
from costudy_pipelines.sandbox.servers.scram import (
    MECHANISM,
    ScramCredential,
    ScramError,
    ScramExchange,
)

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
_HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
_INT32 = struct.Struct("<i")
_REPLY_PREFIX = struct.Struct("<iqii")  # responseFlags, cursorID, startingFrom, numberReturned
CHECKSUM_PRESENT, MORE_TO_COME = 1, 2
MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
MAX_WIRE_VERSION = 21  # MongoDB 7.0; pymongo 4.20 accepts 9 (MongoDB 4.4) to 29
DEFAULT_FIRST_BATCH = 101  # MongoDB's default first batch when the client sets none
FAULT_KINDS = ("drop", "latency", "hang", "error")
CURSOR_NOT_FOUND = 43
# What a client may run before it authenticates (the handshake, as MongoDB allows it).
OPEN_COMMANDS = frozenset(
    {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo", "saslStart", "saslContinue"}
)
_DECODE: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=UTC)


# ---------------------------------------------------------------- faults, as plain helpers
def drop_connection(on_get_more: int = 1, *, count: int | None = 1) -> Fault:
    """Close the connection, unanswered, on the `on_get_more`-th getMore (1 = the first)."""
    return Fault("drop", path="getMore", skip=on_get_more - 1, count=count)


def slow_get_more(seconds: float, *, count: int | None = None) -> Fault:
    return Fault("latency", path="getMore", seconds=seconds, count=count)


def cursor_not_found(on_get_more: int = 1, *, count: int | None = 1) -> Fault:
    """Answer CursorNotFound (code 43) on the `on_get_more`-th getMore and forget the cursor."""
    return Fault(
        "error", path="getMore", status=CURSOR_NOT_FOUND, skip=on_get_more - 1, count=count
    )


# ------------------------------------------------------------------------------- the server
@dataclass
class CommandRecord:
    """One command as the server saw it; ok None: no answer was sent (dropped)."""

    command: str
    database: str
    collection: str | None
    ok: bool | None = None


@dataclass
class _Connection:
    id: int
    sock: socket.socket
    user: str | None = None  # who authenticated on it
    exchange: ScramExchange | None = None  # an authentication in progress


@dataclass
class _Cursor:
    namespace: str
    documents: list[Document]
    position: int = 0


class MongoWireServer:
    """In-memory collections of one database behind the MongoDB wire protocol."""

    def __init__(
        self,
        database: str,
        collections: Mapping[str, Iterable[Document]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        request_log_size: int = 10_000,
        users: Mapping[str, str] | None = None,
        indexed_field: str | None = "createdAt",
    ) -> None:
        """`users` (name -> password): require SCRAM-SHA-256 authentication as one of them.
        `indexed_field`: the date field range queries are answered from an ordered index of."""
        self.database = database
        self.host = host
        self.port = port
        self.request_log: deque[CommandRecord] = deque(maxlen=request_log_size)
        self._indexed_field = indexed_field
        self._collections = {
            name: IndexedCollection(docs, indexed_field)
            for name, docs in (collections or {}).items()
        }
        self._cursors: dict[int, _Cursor] = {}
        self._credentials = {
            name: ScramCredential.from_password(password)
            for name, password in (users or {}).items()
        }
        self._cursor_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._plan = FaultPlan()
        self._rng = Random(0)
        self.set_faults(faults)
        self._tcp: _TcpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()

    # ----------------------------------------------------------------------------- data
    def insert(self, collection: str, documents: Iterable[Document]) -> int:
        """Add documents (an app writing new analytics); returns how many."""
        added = list(documents)
        with self._lock:
            self._collection(collection).add(added)
        return len(added)

    def replace(self, collection: str, documents: Iterable[Document]) -> None:
        with self._lock:
            self._collections[collection] = IndexedCollection(documents, self._indexed_field)

    def documents(self, collection: str) -> list[Document]:
        with self._lock:
            return list(self._collection(collection).documents)

    def _collection(self, name: str) -> IndexedCollection:
        """The collection `name` (created empty on first use, as MongoDB does); hold the lock."""
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = IndexedCollection((), self._indexed_field)
        return found

    @property
    def open_cursors(self) -> int:
        with self._lock:
            return len(self._cursors)

    # ----------------------------------------------------------------------------- faults
    @property
    def faults(self) -> FaultPlan:
        return self._plan

    def set_faults(self, plan: FaultPlan | None) -> None:
        plan = plan or FaultPlan()
        for fault in plan.faults:
            _check_fault(fault)
        self._plan, self._rng = plan, Random(plan.seed)

    def add_fault(self, fault: Fault) -> None:
        _check_fault(fault)
        self._plan.faults = [*self._plan.faults, fault]

    def clear_faults(self) -> None:
        self.set_faults(None)

    def _fault_for(self, command: str) -> Fault | None:
        """The fault that fires on this command, if any (latency faults are served here)."""
        delay, firing = 0.0, None
        with self._fault_lock:  # connections are served concurrently; counts must add up
            for fault in self._plan.faults:
                if fault.exhausted or not fault.matches("", command):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip or (
                    fault.rate < 1.0 and self._rng.random() >= fault.rate
                ):
                    continue
                fault.fired += 1
                if fault.kind != "latency":
                    firing = fault
                    break
                delay += fault.seconds
        self._stall(delay)
        return firing

    def _stall(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # -------------------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        """mongodb://host:port, as the HTTP servers' base_url (the stack reads ports from it)."""
        if not self.port:
            raise RuntimeError("sandbox mongo server is not started")
        return f"mongodb://{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        """A connection string for pymongo, without credentials."""
        return f"{self.base_url}/?directConnection=true"

    def uri_with(self, user: str, password: str) -> str:
        """A connection string that authenticates as `user` (a server made with `users`)."""
        credentials = f"{quote_plus(user)}:{quote_plus(password)}@"
        return self.uri.replace("mongodb://", f"mongodb://{credentials}", 1)

    def start(self) -> Self:
        """Serve on a background thread; the port is listening when this returns."""
        if self._thread is not None:
            raise RuntimeError("sandbox mongo server is already running")
        self._stopping.clear()
        self._tcp = _TcpServer((self.host, self.port), self)  # binds and listens
        self.port = self._tcp.server_address[1]
        self._thread = threading.Thread(
            target=self._tcp.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="sandbox-mongo",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every client connection; safe to call twice."""
        self._stopping.set()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()
        with self._lock:
            open_sockets, self._sockets = list(self._sockets), set()
        for sock in open_sockets:
            _close(sock)
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._tcp = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve until stop() is called from another thread (or the process is interrupted)."""
        self.start()
        try:
            self._stopping.wait()
        finally:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------- one connection
    def serve_connection(self, sock: socket.socket) -> None:
        """Answer messages on one connection until the client or a drop fault closes it."""
        conn = _Connection(next(self._connection_ids), sock)
        with self._lock:
            self._sockets.add(sock)
        try:
            while not self._stopping.is_set():
                message = _read_message(sock)
                if message is None:
                    return
                request_id, op_code, body = message
                if op_code == OP_MSG:
                    flags, command = _parse_op_msg(body)
                    reply = self._answer(command, conn)
                    if reply is None:
                        return  # dropped
                    if not flags & MORE_TO_COME:
                        sock.sendall(self._op_msg(request_id, reply))
                elif op_code == OP_QUERY:
                    command = _parse_op_query(body)
                    reply = self._answer(command, conn)
                    if reply is None:
                        return
                    sock.sendall(self._op_reply(request_id, reply))
                else:
                    return  # OP_COMPRESSED and legacy opcodes: never negotiated, so a bug
        except (OSError, ValueError, bson.errors.BSONError):
            return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            _close(sock)

    def _answer(self, command: Document, conn: _Connection) -> Document | None:
        name = next(iter(command), "")
        target = command.get(name)
        entry = CommandRecord(
            name, str(command.get("$db", "admin")), target if isinstance(target, str) else None
        )
        self.request_log.append(entry)
        fault = self._fault_for(name)
        if fault is not None and fault.kind in ("drop", "hang"):
            if fault.kind == "hang":
                self._stall(fault.seconds)
            else:
                _close(conn.sock)
                return None
        try:
            if fault is not None:  # an error fault
                if fault.status == CURSOR_NOT_FOUND:
                    self._forget_cursor(command.get(name))
                raise CommandError(fault.status, f"sandbox mongo: injected error {fault.status}")
            reply = self._dispatch(name, command, conn)
        except CommandError as exc:
            reply = exc.reply()
        except Exception as exc:  # a bug here must reach the client as an error, not a hangup
            reply = CommandError(1, f"sandbox mongo: {name} failed: {exc!r}").reply()
        entry.ok = bool(reply.get("ok"))
        return reply

    def _dispatch(self, name: str, command: Document, conn: _Connection) -> Document:
        handler = self._handlers.get(name)
        if handler is None:
            raise CommandError(59, f"no such command: '{name}'")
        if self._credentials and conn.user is None and name not in OPEN_COMMANDS:
            raise CommandError(13, f"command {name} requires authentication")
        return {**handler(self, command, conn), "ok": 1.0}

    # ----------------------------------------------------------------------- commands
    def _hello(self, command: Document, conn: _Connection) -> Document:
        primary = "isWritablePrimary" if "hello" in command else "ismaster"
        # The one mechanism, whoever is asked about: the answer tells no one which users exist.
        asked = self._credentials and "saslSupportedMechs" in command
        mechanisms = {"saslSupportedMechs": [MECHANISM]} if asked else {}
        return {
            **mechanisms,
            "helloOk": True,
            primary: True,
            "maxBsonObjectSize": MAX_BSON_SIZE,
            "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.now(UTC),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": conn.id,
            "minWireVersion": 0,
            "maxWireVersion": MAX_WIRE_VERSION,
            "readOnly": False,
        }

    def _ping(self, command: Document, conn: _Connection) -> Document:
        return {}

    def _build_info(self, command: Document, conn: _Connection) -> Document:
        return {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "sandbox": True}

    def _end_sessions(self, command: Document, conn: _Connection) -> Document:
        return {}

    def _sasl_start(self, command: Document, conn: _Connection) -> Document:
        if not self._credentials:
            raise CommandError(
                18, "sandbox mongo: this server has no users; use a URI without credentials"
            )
        if command.get("mechanism") != MECHANISM:
            raise CommandError(334, f"sandbox mongo: only {MECHANISM} is supported")
        conn.exchange = ScramExchange(self._credentials)
        return self._sasl_step(conn, conn.exchange.first, command, done=False)

    def _sasl_continue(self, command: Document, conn: _Connection) -> Document:
        exchange = conn.exchange
        if exchange is None:
            raise CommandError(17, "no SASL session state found")
        reply = self._sasl_step(conn, exchange.final, command, done=True)
        conn.user, conn.exchange = exchange.user, None
        return reply

    def _sasl_step(
        self, conn: _Connection, step: Callable[[bytes], bytes], command: Document, done: bool
    ) -> Document:
        payload = command.get("payload")
        try:
            if not isinstance(payload, bytes):
                raise ScramError("the SASL payload must be binary")
            answer = step(payload)
        except (ScramError, UnicodeDecodeError):
            conn.exchange = None  # the reason stays in the server: clients learn only "failed"
            raise CommandError(18, "Authentication failed.") from None
        return {"conversationId": 1, "done": done, "payload": answer}

    def _find(self, command: Document, conn: _Connection) -> Document:
        namespace = self._namespace(command, "find")
        documents = self._select(command["find"], _mapping(command, "filter"))
        documents = sort_documents(documents, _mapping(command, "sort"))
        skip, limit = _count(command, "skip"), abs(_count(command, "limit", signed=True))
        documents = documents[skip:]
        if limit:
            documents = documents[:limit]
        documents = project(documents, _mapping(command, "projection"))
        batch_size = _count(command, "batchSize", default=DEFAULT_FIRST_BATCH)
        single = bool(command.get("singleBatch")) or _count(command, "limit", signed=True) < 0
        return self._first_batch(namespace, documents, batch_size, single)

    def _aggregate(self, command: Document, conn: _Connection) -> Document:
        namespace = self._namespace(command, "aggregate")
        pipeline = command.get("pipeline")
        if not isinstance(pipeline, list):
            raise CommandError(2, "aggregate needs a pipeline array")
        if not isinstance(command.get("cursor"), Mapping):
            raise CommandError(9, "the 'cursor' option is required for aggregate")
        first = pipeline[0] if pipeline and isinstance(pipeline[0], Mapping) else {}
        documents = self._select(command["aggregate"], _mapping(first, "$match"))
        for stage in pipeline:
            if not isinstance(stage, Mapping) or len(stage) != 1:
                raise CommandError(40323, "a pipeline stage must be an object with one field")
            ((operator, argument),) = stage.items()
            if operator == "$match":
                documents = [doc for doc in documents if matches(doc, argument)]
            elif operator == "$sort":
                documents = sort_documents(documents, argument)
            elif operator == "$skip":
                documents = documents[_stage_count(operator, argument) :]
            elif operator == "$limit":
                documents = documents[: _stage_count(operator, argument)]
            elif operator == "$group":
                documents = group_count(documents, argument)
            else:
                raise unsupported(f"pipeline stage {operator}")
        batch_size = _count(command["cursor"], "batchSize", default=DEFAULT_FIRST_BATCH)
        return self._first_batch(namespace, documents, batch_size, single=False)

    def _get_more(self, command: Document, conn: _Connection) -> Document:
        cursor_id = command.get("getMore")
        collection = command.get("collection")
        if not isinstance(cursor_id, int) or not isinstance(collection, str):
            raise CommandError(2, "getMore needs a cursor id and a collection name")
        batch_size = _count(command, "batchSize")
        with self._lock:
            cursor = self._cursors.get(cursor_id)
            if cursor is None:
                raise CommandError(CURSOR_NOT_FOUND, f"cursor id {cursor_id} not found")
            namespace = f"{command.get('$db', '')}.{collection}"
            if cursor.namespace != namespace:
                raise CommandError(
                    13, f"cursor {cursor_id} belongs to {cursor.namespace}, not {namespace}"
                )
            batch = _take(cursor, batch_size)
            exhausted = cursor.position >= len(cursor.documents)
            if exhausted:
                del self._cursors[cursor_id]
        returned_id = 0 if exhausted else cursor_id
        return {"cursor": {"nextBatch": batch, "id": Int64(returned_id), "ns": namespace}}

    def _kill_cursors(self, command: Document, conn: _Connection) -> Document:
        ids = command.get("cursors")
        if not isinstance(ids, list):
            raise CommandError(2, "killCursors needs a cursors array")
        killed: list[Int64] = []
        missing: list[Int64] = []
        with self._lock:
            for cursor_id in ids:
                (killed if self._cursors.pop(cursor_id, None) else missing).append(Int64(cursor_id))
        return {
            "cursorsKilled": killed,
            "cursorsNotFound": missing,
            "cursorsAlive": [],
            "cursorsUnknown": [],
        }

    _handlers: ClassVar[dict[str, Callable[[MongoWireServer, Document, _Connection], Document]]] = {
        "hello": _hello,
        "isMaster": _hello,
        "ismaster": _hello,
        "ping": _ping,
        "buildInfo": _build_info,
        "buildinfo": _build_info,
        "endSessions": _end_sessions,
        "find": _find,
        "aggregate": _aggregate,
        "getMore": _get_more,
        "killCursors": _kill_cursors,
        "saslStart": _sasl_start,
        "saslContinue": _sasl_continue,
    }

    # ------------------------------------------------------------------------ helpers
    def _namespace(self, command: Document, name: str) -> str:
        collection = command.get(name)
        if not isinstance(collection, str) or not collection:
            raise CommandError(73, f"{name} needs a collection name")
        return f"{command.get('$db', '')}.{collection}"

    def _select(self, collection: str, query: Mapping[str, Any]) -> list[Document]:
        with self._lock:
            documents = self._collection(collection).candidates(query)
        return [doc for doc in documents if matches(doc, query)]

    def _first_batch(
        self, namespace: str, documents: list[Document], batch_size: int, single: bool
    ) -> Document:
        cursor = _Cursor(namespace, documents)
        batch = _take(cursor, batch_size)
        cursor_id = 0
        if not single and cursor.position < len(documents):
            with self._lock:
                cursor_id = next(self._cursor_ids)
                self._cursors[cursor_id] = cursor
        return {"cursor": {"firstBatch": batch, "id": Int64(cursor_id), "ns": namespace}}

    def _forget_cursor(self, cursor_id: Any) -> None:
        with self._lock:
            self._cursors.pop(cursor_id, None)

    def _op_msg(self, response_to: int, reply: Document) -> bytes:
        body = b"\x00\x00\x00\x00\x00" + bson.encode(reply)  # flags 0, one kind-0 section
        return _HEADER.pack(16 + len(body), next(self._request_ids), response_to, OP_MSG) + body

    def _op_reply(self, response_to: int, reply: Document) -> bytes:
        body = _REPLY_PREFIX.pack(0, 0, 0, 1) + bson.encode(reply)
        return _HEADER.pack(16 + len(body), next(self._request_ids), response_to, OP_REPLY) + body


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: MongoWireServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner.serve_connection(self.request)


# ---------------------------------------------------------------------------- wire format
def _check_fault(fault: Fault) -> None:
    if fault.kind not in FAULT_KINDS:
        raise ValueError(f"the mongo server cannot inject {fault.kind!r} faults; use {FAULT_KINDS}")


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_message(sock: socket.socket) -> tuple[int, int, bytes] | None:
    """(requestID, opCode, body) of the next message; None when the client has gone."""
    header = _recv_exactly(sock, _HEADER.size)
    if header is None:
        return None
    length, request_id, _, op_code = _HEADER.unpack(header)
    if not _HEADER.size <= length <= MAX_MESSAGE_SIZE:
        raise ValueError(f"message length {length} out of bounds")
    body = _recv_exactly(sock, length - _HEADER.size)
    return None if body is None else (request_id, op_code, body)


def _parse_op_msg(body: bytes) -> tuple[int, Document]:
    """(flagBits, command): the kind-0 body with each kind-1 document sequence added."""
    (flags,) = struct.unpack_from("<I", body)
    end = len(body) - (4 if flags & CHECKSUM_PRESENT else 0)
    position, command = 4, None
    sequences: Document = {}
    while position < end:
        kind = body[position]
        position += 1
        (size,) = _INT32.unpack_from(body, position)
        if kind == 0:
            command = bson.decode(body[position : position + size], _DECODE)
        elif kind == 1:
            name_end = body.index(b"\x00", position + 4)
            name = body[position + 4 : name_end].decode()
            sequences[name] = bson.decode_all(body[name_end + 1 : position + size], _DECODE)
        else:
            raise ValueError(f"unknown OP_MSG section kind {kind}")
        position += size
    if command is None:
        raise ValueError("OP_MSG without a body section")
    return flags, {**command, **sequences}


def _parse_op_query(body: bytes) -> Document:
    """The command of an OP_QUERY on `<db>.$cmd` (the legacy first handshake)."""
    name_end = body.index(b"\x00", 4)
    namespace = body[4:name_end].decode()
    start = name_end + 1 + 8  # numberToSkip, numberToReturn
    (size,) = _INT32.unpack_from(body, start)
    query = bson.decode(body[start : start + size], _DECODE)
    if not namespace.endswith(".$cmd"):
        return {"legacyQuery": namespace}  # answered as an unknown command
    if "$query" in query:  # a read preference wraps the command
        query = query["$query"]
    return {**query, "$db": namespace.removesuffix(".$cmd")}


def _mapping(command: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = command.get(field) or {}
    if not isinstance(value, Mapping):
        raise CommandError(2, f"'{field}' must be an object")
    return value


def _count(
    command: Mapping[str, Any], field: str, *, default: int = 0, signed: bool = False
) -> int:
    value = command.get(field, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and not signed):
        raise CommandError(2, f"'{field}' must be a non-negative integer, not {value!r}")
    return value


def _stage_count(operator: str, argument: Any) -> int:
    return _count({operator: argument}, operator)


def _take(cursor: _Cursor, batch_size: int) -> list[Document]:
    """The next batch: `batch_size` documents (0: no limit), never more than 16 MiB."""
    batch: list[Document] = []
    size = 0
    documents = cursor.documents
    while cursor.position < len(documents) and (not batch_size or len(batch) < batch_size):
        size += len(bson.encode(documents[cursor.position]))
        if batch and size > MAX_BSON_SIZE:
            break
        batch.append(documents[cursor.position])
        cursor.position += 1
    return batch


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
