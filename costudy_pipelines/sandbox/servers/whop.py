"""Whop, as the product sees it: the v1 cursor API and the older v2 page API, bearer key checked.

Shapes follow shared/reference/whop (v2 OpenAPI), Whop's public v1 docs and, for v1, the models
of Whop's official SDK (`whop-sdk` 2.6.0) at the API version the client pins: v1 serves that
version only (`Api-Version-Date`: a request without it is refused, as the real API refuses it,
and so is another date, as this sandbox cannot answer in its shapes). v1 has list routes and
get-by-id routes (`GET /api/v1/payments/{id}`: 404 in Whop's error shape when there is none)
for payments, memberships, members and users; `GET /members?user_ids=...` (repeated) narrows
the members to those users, at most `max_page_size` ids per request (our limit: Whop documents
none). The last page of a list carries no cursor. Where the docs are silent the choice is ours and
said so: v1's default and maximum page size, its default order, and whether
created_after/created_before include the boundary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.servers.base import expected_authorization, json_response
from costudy_pipelines.sandbox.servers.faults import FaultPlan, LimitState, RateLimit
from costudy_pipelines.sandbox.servers.paging import (
    Page,
    cursor_page,
    parse_count,
    parse_moment,
)
from costudy_pipelines.sandbox.servers.record_server import RecordServer
from costudy_pipelines.sandbox.servers.records import (
    UNDATED,
    CursorError,
    Key,
    RecordCollection,
    RecordIndex,
    RecordSource,
    decode_cursor,
    encode_cursor,
    epoch_us,
)
from costudy_pipelines.sources.whop.client import WHOP_API_VERSION

V1 = "/api/v1/"
V2 = "/api/v2/"
COLLECTIONS = ("payments", "memberships", "members", "users")
V2_COLLECTIONS = ("payments", "memberships")  # v2 lists no users (it has members/customers)
V1_DEFAULT_PAGE = 10  # undocumented; 10 is the SDKs' usual default
V2_DEFAULT_PER, V2_MAX_PER = 10, 50  # documented: "a limit of 50 results per page"
# v1 statuses v2 does not know, mapped to the nearest v2 one (draft/open/paid/uncollectible/void).
MONEY_FIELDS = frozenset(
    {"usd_total", "total", "subtotal", "final_amount", "refunded_amount", "amount_after_fees"}
)
V2_PAYMENT_STATUS = {"pending": "open", "authorized": "open", "unresolved": "uncollectible"}
# v2 timestamps are Unix seconds: those ending in _at, and the renewal period's bounds
V2_TIMESTAMPS = frozenset({"renewal_period_start", "renewal_period_end"})

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class WhopServer(RecordServer):
    """Whop's payments, memberships and users: `GET /api/v1/{collection}` (cursor) and
    `GET /api/v2/{payments,memberships}` (page/per). Records are v1 dicts, served as given
    (money fields as float or Money object alike); v2 answers are converted from them."""

    system = "whop"
    # v1: "600 requests per minute per operation and API credential" (docs.whop.com).
    documented_rate_limit = RateLimit(max_requests=600, window_seconds=60.0)
    # v2 (and v5, at 20): 100 requests per 10 s, then a 60 s cooldown.
    V2_RATE_LIMIT = RateLimit(max_requests=100, window_seconds=10.0, cooldown_seconds=60.0)

    def __init__(
        self,
        *,
        api_key: str,
        payments: RecordSource | None = None,
        memberships: RecordSource | None = None,
        users: RecordSource | None = None,
        members: RecordSource | None = None,
        company_id: str = "biz_sandbox",
        max_page_size: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self._authorization = expected_authorization(api_key, "WhopServer")
        self.company_id = company_id
        self.max_page_size = max_page_size
        self._members_by_user: tuple[RecordIndex | None, dict[str, tuple[Key, bytes]]] = (None, {})
        super().__init__(
            [RecordCollection(name, time_field="created_at") for name in COLLECTIONS],
            {"payments": payments, "memberships": memberships, "members": members, "users": users},
            host=host,
            port=port,
            faults=faults,
        )

    def routes(self) -> list[BaseRoute]:
        v1 = [
            Route(f"{V1}{name}", self._v1_endpoint(name), methods=["GET"]) for name in COLLECTIONS
        ]
        v1 += [
            Route(f"{V1}{name}/{{record_id}}", self._v1_get_endpoint(name), methods=["GET"])
            for name in COLLECTIONS
        ]
        v2 = [
            Route(f"{V2}{name}", self._v2_endpoint(name), methods=["GET"])
            for name in V2_COLLECTIONS
        ]
        return [*v1, *v2]

    # ------------------------------------------------------------ system error shapes
    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        if headers.get("authorization") == self._authorization:
            version = headers.get("api-version-date")
            if path.startswith(V1) and version is None:
                message = (
                    "the Api-Version-Date header is required: name the API version whose shapes "
                    f"you read (this sandbox answers in {WHOP_API_VERSION}'s)"
                )
                return _v1_error(400, "invalid_request", message)
            if path.startswith(V1) and version != WHOP_API_VERSION:
                message = (
                    f"Api-Version-Date {version!r} is not served by this sandbox: it answers in "
                    f"the shapes of {WHOP_API_VERSION} only"
                )
                return _v1_error(400, "invalid_request", message)
            return None
        if path.startswith(V2):
            return json_response(401, {"error": {"code": 401, "message": "Unauthorized"}})
        return _v1_error(401, "unauthorized", "The API key is missing, invalid or revoked.")

    def error_body(self, status: int, path: str) -> object:
        if path.startswith(V2):
            return {"error": {"code": status, "message": "Internal Server Error"}}
        return {"error": {"type": "internal_server_error", "message": "Something went wrong."}}

    def rate_limited_body(self, state: LimitState, path: str) -> object:
        if path.startswith(V2):
            return {"message": "You are being rate limited"}
        wait = math.ceil(state.retry_after or 0)
        return {
            "error": {"type": "rate_limit_exceeded", "message": f"Try again in {wait} seconds."}
        }

    def rate_limit_bucket(self, path: str) -> str:
        return "v2" if path.startswith(V2) else path  # v1 counts per operation

    # ------------------------------------------------------------------------------ v1
    def _v1_endpoint(self, name: str) -> Endpoint:
        async def list_v1(request: Request) -> Response:
            try:
                page = self._v1_page(name, request)
            except (ValueError, CursorError) as exc:
                return _v1_error(400, "invalid_request", str(exc))
            except PermissionError as exc:
                return _v1_error(403, "forbidden", str(exc))
            return Response(_v1_body(page), media_type="application/json")

        return list_v1

    def _v1_get_endpoint(self, name: str) -> Endpoint:
        singular = name.removesuffix("s")

        async def get_v1(request: Request) -> Response:
            record_id = request.path_params["record_id"]
            found = self.collections[name].find(record_id)
            if found is None:
                return _v1_error(404, "not_found", f"{singular} {record_id!r} was not found")
            return Response(found, media_type="application/json")

        return get_v1

    def _v1_page(self, name: str, request: Request) -> Page:
        query = request.query_params
        for parameter in ("account_id", "company_id"):  # account_id in 2.6.0, company_id before
            company = query.get(parameter)
            if company and company != self.company_id:
                raise PermissionError(f"this API key has no access to company {company!r}")
        first = parse_count("first", query.get("first"), default=None, maximum=self.max_page_size)
        last = parse_count("last", query.get("last"), default=None, maximum=self.max_page_size)
        if first is not None and last is not None:
            raise ValueError("pass either first or last, not both")
        if first is None and last is None:
            first = V1_DEFAULT_PAGE
        direction = query.get("direction", "desc")  # undocumented default: newest first
        if direction not in ("asc", "desc"):
            raise ValueError(f"direction must be asc or desc, got {direction!r}")
        after, before = query.get("after"), query.get("before")
        index = self.collections[name].index()
        user_ids = query.getlist("user_ids")
        if name == "members" and user_ids:
            if len(user_ids) > self.max_page_size:
                raise ValueError(f"user_ids takes at most {self.max_page_size} ids per request")
            index = self._members_of(index, set(user_ids))
        return cursor_page(
            index,
            window=(
                parse_moment("created_after", query.get("created_after")),
                parse_moment("created_before", query.get("created_before")),
            ),
            after=decode_cursor(after, "after") if after else None,
            before=decode_cursor(before, "before") if before else None,
            first=first,
            last=last,
            descending=direction == "desc",
        )

    def _members_of(self, index: RecordIndex, user_ids: set[str]) -> RecordIndex:
        """The members of these users (the user id read once per served index)."""
        built, by_user = self._members_by_user
        if built is not index:
            by_user = {}
            for key, blob in index.entries():
                user = json.loads(blob).get("user") or {}
                if user.get("id"):
                    by_user[user["id"]] = (key, bytes(blob))
            self._members_by_user = (index, by_user)
        return RecordIndex([by_user[user] for user in user_ids if user in by_user])

    # ------------------------------------------------------------------------------ v2
    def _v2_endpoint(self, name: str) -> Endpoint:
        async def list_v2(request: Request) -> Response:
            query = request.query_params
            try:
                number = max(1, parse_count("page", query.get("page"), default=1, maximum=10**9))
                per = parse_count(
                    "per", query.get("per"), default=V2_DEFAULT_PER, maximum=V2_MAX_PER
                )
            except ValueError as exc:
                return json_response(400, {"error": {"code": 400, "message": str(exc)}})
            index = self.collections[name].index()
            per = max(1, per or V2_DEFAULT_PER)
            total = len(index)
            offset = (number - 1) * per
            if query.get("direction", "desc") == "asc":
                positions = range(offset, min(total, offset + per))
            else:
                positions = range(total - 1 - offset, max(-1, total - 1 - offset - per), -1)
            data = [_as_v2(index.record(position), name) for position in positions]
            pagination = {
                "current_page": number,
                "total_page": math.ceil(total / per),
                "total_count": total,
            }
            return json_response(200, {"pagination": pagination, "data": data})

        return list_v2


def _v1_error(status: int, kind: str, message: str) -> Response:
    return json_response(status, {"error": {"type": kind, "message": message}})


def _v1_body(page: Page) -> bytes:
    first, last = page.first_key, page.last_key
    # the last page carries no cursor: there is nothing after it to point at
    page_info = b'{"end_cursor":%s,"start_cursor":%s,"has_next_page":%s,"has_previous_page":%s}' % (
        _json_string(encode_cursor(last) if last and page.has_next else None),
        _json_string(encode_cursor(first) if first else None),
        b"true" if page.has_next else b"false",
        b"true" if page.has_previous else b"false",
    )
    return b'{"data":[' + page.body() + b'],"page_info":' + page_info + b"}"


def _json_string(value: str | None) -> bytes:
    # Cursors are base64url: no character needs escaping.
    return b"null" if value is None else b'"' + value.encode() + b'"'


def _as_v2(record: dict[str, Any], collection: str) -> dict[str, Any]:
    """A v1 record the way v2 shows it: Unix-second timestamps, float money, related objects as
    ids, v2's payment statuses."""
    converted: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and "amount" in value and "currency" in value:
            converted[key] = _float_or_none(value["amount"])
        elif key in MONEY_FIELDS and isinstance(value, int | float | str):
            converted[key] = _float_or_none(value)
        elif isinstance(value, dict) and "id" in value:
            converted[key] = value["id"]
        elif (key in V2_TIMESTAMPS or key.endswith("_at")) and isinstance(value, str):
            converted[key] = _unix_seconds(value)
        else:
            converted[key] = value
    if collection == "payments" and "status" in converted:
        converted["status"] = V2_PAYMENT_STATUS.get(converted["status"], converted["status"])
    if "final_amount" not in converted and ("usd_total" in converted or "total" in converted):
        converted["final_amount"] = converted.get("usd_total", converted.get("total"))
    return converted


def _float_or_none(value: str | float) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _unix_seconds(value: str) -> int | None:
    moment = epoch_us(value)
    return None if moment == UNDATED else moment // 1_000_000
