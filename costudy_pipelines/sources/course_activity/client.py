"""The course platform's analytics in MongoDB (`user_activity`), read a day at a time.

    with ActivityReader(uri, database) as reader:        # MONGO_URI, MONGO_DB
        extract = activity_extract(reader, partial(course_user_emails, course_engine))
        extract(window)                                  # the day's pages, users joined
        reader.count(window)                             # what MongoDB says the day holds

`pymongo.MongoClient(uri)` does the talking, so whatever the URI asks (TLS, replica set,
credentials) is honoured as written. A day is the documents whose `createdAt` lies in the
window, read in `_id` order in bounded batches. A connection lost mid-cursor, or a cursor the
server no longer knows (CursorNotFound: it timed out while a page was being loaded), is
resumed with a new query for `_id` greater than the last one read, a bounded number of
times: documents are neither repeated nor skipped. Past that the read fails with an error
naming the collection and window; the sync engine then writes nothing of the partition.
Documents come out JSON-able: ObjectIds as their hex text, datetimes as ISO-8601 in UTC.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Self, TypeGuard

import sqlalchemy as sa

from costudy_pipelines.lib.clients.base import Page, TimeWindow

if TYPE_CHECKING:  # pymongo (and bson) are imported by a reader only: loading the definitions
    from bson.decimal128 import Decimal128  # or another source's run does not pay for them
    from bson.objectid import ObjectId
    from pymongo import MongoClient

COLLECTION = "user_activity"
DEFAULT_BATCH_SIZE = 1000
MAX_RESUMES = 3
# Added to each document by join_course_users: the course user its userId names, or None.
COURSE_USER = "_course_user"


@cache
def _bson_types() -> tuple[type[ObjectId], type[Decimal128]]:
    from bson.decimal128 import Decimal128
    from bson.objectid import ObjectId

    return ObjectId, Decimal128


class ActivityReadError(RuntimeError):
    """Reading a window failed for good; says which collection and window."""


class ActivityReader:
    """Days of one activity collection; one MongoClient (a connection pool) per reader."""

    def __init__(
        self,
        uri: str,
        database: str,
        collection: str = COLLECTION,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_resumes: int = MAX_RESUMES,
        timeout_ms: int = 10_000,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if not database:
            raise ValueError("no MongoDB database given (MONGO_DB)")
        self.name = f"{database}.{collection}"
        self.batch_size = batch_size
        self.max_resumes = max_resumes
        from pymongo import MongoClient

        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=6 * timeout_ms,
            appname="costudy-pipelines",
        )
        self._collection = self._client[database][collection]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, window: TimeWindow) -> int:
        """How many documents MongoDB holds for the window (count_documents)."""
        from pymongo.errors import PyMongoError

        try:
            return self._collection.count_documents(_window_filter(window))
        except PyMongoError as exc:
            raise ActivityReadError(
                f"counting {self.name} for {_describe(window)} failed: {exc}"
            ) from exc

    def pages(self, window: TimeWindow) -> Iterator[Page]:
        """The window's documents in `_id` order, as lists of at most `batch_size` dicts."""
        from pymongo import ASCENDING
        from pymongo.errors import AutoReconnect, CursorNotFound, PyMongoError

        resumable = (AutoReconnect, CursorNotFound)  # NetworkTimeout is an AutoReconnect
        page: Page = []
        last_id: Any = None
        resumes = 0
        while True:
            query = _window_filter(window)
            if last_id is not None:
                query["_id"] = {"$gt": last_id}
            cursor = self._collection.find(
                query, sort=[("_id", ASCENDING)], batch_size=self.batch_size
            )
            try:
                for document in cursor:
                    last_id = document["_id"]
                    page.append(jsonable(document))
                    if len(page) == self.batch_size:
                        yield page
                        page = []
            except resumable as exc:
                resumes += 1
                if resumes > self.max_resumes:
                    raise ActivityReadError(
                        f"reading {self.name} for {_describe(window)}: gave up after "
                        f"{self.max_resumes} resumes ({type(exc).__name__}: {exc})"
                    ) from exc
                time.sleep(min(2.0, 0.1 * 2**resumes))
                continue
            except PyMongoError as exc:
                raise ActivityReadError(
                    f"reading {self.name} for {_describe(window)} failed: {exc}"
                ) from exc
            finally:
                cursor.close()  # kills the server-side cursor when the caller stops early
            if page:
                yield page
            return


def _window_filter(window: TimeWindow) -> dict[str, Any]:
    return {"createdAt": {"$gte": window.start, "$lt": window.end}}


def _describe(window: TimeWindow) -> str:
    return f"createdAt in [{window.start.isoformat()}, {window.end.isoformat()})"


def jsonable(value: Any) -> Any:
    """A document with BSON types made JSON-able: ObjectId → hex, datetime → ISO-8601 UTC,
    Decimal128 → Decimal, binary → base64; everything else as it is."""
    object_id, decimal128 = _bson_types()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, object_id):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, decimal128):
        return Decimal(str(value.to_decimal()))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


# ----------------------------------------------------------------- who each document is about
EmailLookup = Callable[[Collection[int]], Mapping[int, str]]


def course_user_emails(engine: sa.Engine, user_ids: Collection[int]) -> dict[int, str]:
    """The email of each course user id that exists (course DB `users`), in one query."""
    if not user_ids:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("select id, email from users where id = any(:ids)"), {"ids": list(user_ids)}
        )
        return {int(row.id): row.email for row in rows}


def join_course_users(pages: Iterable[Page], emails: EmailLookup) -> Iterator[Page]:
    """Each page with `_course_user` ({"id", "email"}, or None when no user has the document's
    userId) added to every document: one lookup per page, so the validator can tie an
    activity to a person (the warehouse links people by email) or reject it as unknown."""
    for page in pages:
        ids = {user for document in page if _is_id(user := document.get("userId"))}
        found = emails(ids)
        for document in page:
            user = document.get("userId")
            email = found.get(user) if _is_id(user) else None
            document[COURSE_USER] = None if email is None else {"id": user, "email": email}
        yield page


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def activity_extract(
    reader: ActivityReader, emails: EmailLookup
) -> Callable[[TimeWindow], Iterator[Page]]:
    """The day extract the sync engine runs (an Extract: window -> pages): a window's documents,
    each joined to its course user."""
    return lambda window: join_course_users(reader.pages(window), emails)
