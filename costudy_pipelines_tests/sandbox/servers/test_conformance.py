"""The sandbox servers against the real APIs' own descriptions in shared/reference (read, never
copied): GoHighLevel's contacts OpenAPI, Whop's v2 OpenAPI and Google Sheets traffic recorded
by gspread's test suite. Paths, parameters, envelopes, error bodies and rate-limit headers are
checked against those files, so the sandbox cannot drift from the real APIs unnoticed. (Whop
v1 is checked against the official SDK's models: test_whop_conformance.)

Schema checking covers the OpenAPI subset the reference files use: $ref within the file,
object/array/string/number/integer/boolean types, enums. `null` passes where a value is
optional: the live APIs send nulls the files do not mark nullable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox.servers import (
    FaultPlan,
    GoHighLevelServer,
    RateLimit,
    SheetsServer,
    WhopServer,
)
from costudy_pipelines.sandbox.servers.gohighlevel import LIST_PARAMETERS
from costudy_pipelines.sandbox.world import World, WorldConfig

WORLD = World(WorldConfig(seed=5, people=80, start=date(2024, 1, 1), days=5))


def reference_dir() -> Path:
    """shared/reference beside the checkout (as CI lays it), or COSTUDY_REFERENCE_DIR."""
    named = os.environ.get("COSTUDY_REFERENCE_DIR")
    candidates = [Path(named)] if named else []
    candidates += [parent / "shared" / "reference" for parent in PROJECT_ROOT.parents[:3]]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.skip(f"no shared/reference found (looked in {', '.join(map(str, candidates))})")


@cache
def openapi(name: str) -> dict[str, Any]:
    return json.loads((reference_dir() / name).read_text())


def violations(spec: dict[str, Any], schema: dict[str, Any], value: Any, at: str) -> list[str]:
    """Where `value` does not follow `schema` (an OpenAPI 3 schema inside `spec`)."""
    if not schema.get("$ref", "#/").startswith("#/"):
        return []  # a schema in another file, not in the reference set
    schema = resolved(spec, schema)
    if value is None:
        return []
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind in checks and not checks[kind](value):
        return [f"{at}: expected {kind}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']}"]
    found: list[str] = []
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                found += violations(spec, sub, value[name], f"{at}.{name}")
    if isinstance(value, list) and "items" in schema:
        for number, item in enumerate(value):
            found += violations(spec, schema["items"], item, f"{at}[{number}]")
    return found


def resolved(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = spec
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        schema = target
    return schema


def response_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    content = spec["paths"][path][method]["responses"]["200"]["content"]
    return resolved(spec, content["application/json"]["schema"])


# --------------------------------------------------------------------------- GoHighLevel
GHL = "gohighlevel/contacts.json"
GHL_RATE_HEADERS = (  # shared/reference/README.md
    "x-ratelimit-max",
    "x-ratelimit-remaining",
    "x-ratelimit-interval-milliseconds",
    "x-ratelimit-limit-daily",
    "x-ratelimit-daily-remaining",
)


@pytest.fixture(scope="module")
def ghl() -> Iterator[tuple[GoHighLevelServer, httpx.Client]]:
    token = "conformance"  # not a secret: the sandbox checks what it is given
    with GoHighLevelServer(token=token, contacts=list(WORLD.records("ghl_contacts"))) as server:
        version = openapi(GHL)["paths"]["/contacts/"]["get"]["parameters"][0]["schema"]["enum"][0]
        headers = {"Authorization": f"Bearer {token}", "Version": version}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            yield server, http


def test_ghl_paths_and_methods_are_the_references(
    ghl: tuple[GoHighLevelServer, httpx.Client],
) -> None:
    server, _ = ghl
    paths = openapi(GHL)["paths"]
    served = {(route.path, method.lower()) for route in server.routes() for method in route.methods}
    served -= {(path, "head") for path, _ in served}
    assert served <= {(path, method) for path, methods in paths.items() for method in methods}


def test_ghl_list_parameters_are_the_references(
    ghl: tuple[GoHighLevelServer, httpx.Client],
) -> None:
    parameters = openapi(GHL)["paths"]["/contacts/"]["get"]["parameters"]
    assert {p["name"] for p in parameters if p["in"] == "query"} == LIST_PARAMETERS
    assert {p["name"] for p in parameters if p["in"] == "header"} == {"Version"}


def test_ghl_list_answers_follow_the_reference_schema(
    ghl: tuple[GoHighLevelServer, httpx.Client],
) -> None:
    _, http = ghl
    spec = openapi(GHL)
    schema = response_schema(spec, "/contacts/", "get")
    location = WORLD.ghl_locations[0]
    params: dict[str, Any] = {"locationId": location, "limit": 10}
    pages = 0
    while True:
        answer = http.get("/contacts/", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(schema["properties"]) <= set(body)  # contacts, count
        assert violations(spec, schema, body, "GET /contacts/") == []
        assert all(name in answer.headers for name in GHL_RATE_HEADERS)
        pages += 1
        if not body["meta"]["nextPageUrl"]:
            break
        params.update(
            startAfter=body["meta"]["startAfter"], startAfterId=body["meta"]["startAfterId"]
        )
    assert pages > 1


def test_ghl_search_contacts_follow_the_reference_contact_schema(
    ghl: tuple[GoHighLevelServer, httpx.Client],
) -> None:
    _, http = ghl
    spec = openapi(GHL)
    contact = spec["components"]["schemas"]["ContactsSearchSchema"]
    body = {"locationId": WORLD.ghl_locations[0], "pageLimit": 500}
    found = http.post("/contacts/search", json=body).json()
    assert found["contacts"] and isinstance(found["total"], int)
    for number, record in enumerate(found["contacts"]):
        assert violations(spec, contact, record, f"contacts[{number}]") == []


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        ({"method": "GET", "url": "/contacts/", "params": {"limit": 5}}, 422),
        ({"method": "POST", "url": "/contacts/search", "json": {"sort": "x"}}, 422),
    ],
)
def test_ghl_errors_have_the_nestjs_shape(
    ghl: tuple[GoHighLevelServer, httpx.Client], request_: dict[str, Any], status: int
) -> None:
    _, http = ghl
    answer = http.request(**request_)
    assert answer.status_code == status
    body = answer.json()
    assert body["statusCode"] == status and body["error"] == "Unprocessable Entity"
    assert isinstance(body["message"], list) and all(isinstance(m, str) for m in body["message"])


def test_ghl_rate_limited_answers_carry_the_documented_headers() -> None:
    plan = FaultPlan(rate_limit=RateLimit(max_requests=1, window_seconds=30.0, daily_max=10))
    with GoHighLevelServer(token="t", faults=plan) as server:
        headers = {"Authorization": "Bearer t", "Version": "2021-07-28"}
        answers = [
            httpx.get(f"{server.base_url}/contacts/?locationId=a", headers=headers)
            for _ in range(2)
        ]
    assert [answer.status_code for answer in answers] == [200, 429]
    assert all(name in answers[1].headers for name in GHL_RATE_HEADERS)
    assert answers[1].json() == {"statusCode": 429, "message": "Too Many Requests"}


# ---------------------------------------------------------------------------------- Whop v2
WHOP_V2 = "whop/v2.json"


@pytest.mark.parametrize("collection", ["payments", "memberships"])
def test_whop_v2_lists_follow_the_reference_schema(collection: str) -> None:
    spec = openapi(WHOP_V2)
    path = f"/v2/{collection}"
    schema = response_schema(spec, path, "get")
    with WhopServer(
        api_key="k", **{collection: list(WORLD.records(f"whop_{collection}"))}
    ) as server:
        answer = httpx.get(
            f"{server.base_url}/api{path}",
            params={"per": 50},
            headers={"Authorization": "Bearer k"},
        )
    body = answer.json()
    assert answer.status_code == 200 and body["data"]
    pagination = spec["components"]["schemas"]["Pagination"]
    assert set(body["pagination"]) <= set(pagination["properties"])
    assert violations(spec, schema, body, f"GET {path}") == []
    parameters = {p["name"] for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"}
    assert {"page", "per"} <= parameters


def test_whop_v2_rate_limit_body_is_the_documented_one() -> None:
    # the documented limit and cooldown, with room for two requests only
    plan = FaultPlan(rate_limit=replace(WhopServer.V2_RATE_LIMIT, max_requests=2))
    with WhopServer(api_key="k", faults=plan) as server:
        answers = [
            httpx.get(f"{server.base_url}/api/v2/payments", headers={"Authorization": "Bearer k"})
            for _ in range(3)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json() == {"message": "You are being rate limited"}
    assert int(answers[2].headers["retry-after"]) == 60  # the documented cooldown


# ----------------------------------------------------------------------------- Google Sheets
SHEETS_API = "https://sheets.googleapis.com"


def recorded_sheets() -> list[tuple[str, list[dict[str, Any]]]]:
    """(cassette, its Sheets API GETs) from the recorded gspread traffic."""
    found = []
    for cassette in sorted((reference_dir() / "google-sheets").glob("*.json")):
        interactions = json.loads(cassette.read_text())["interactions"]
        gets = [
            i
            for i in interactions
            if i["request"]["method"] == "GET" and i["request"]["uri"].startswith(SHEETS_API)
        ]
        found.append((cassette.name, gets))
    return found


def shape(value: Any) -> Any:
    """A JSON value's structure: key names and value types, not contents."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def missing_from(recorded: Any, served: Any, at: str = "") -> list[str]:
    """Keys the sandbox serves that Google's answer lacks, or with another type."""
    if isinstance(served, dict):
        if not isinstance(recorded, dict):
            return [f"{at}: Google sends {recorded}, the sandbox an object"]
        problems = []
        for key, item in served.items():
            if key not in recorded:
                problems.append(f"{at}.{key}: not in Google's answer")
            else:
                problems += missing_from(recorded[key], item, f"{at}.{key}")
        return problems
    if isinstance(served, list):
        if recorded and served:
            return missing_from(recorded[0], served[0], f"{at}[0]")
        return []
    return [] if recorded == served else [f"{at}: Google sends {recorded}, the sandbox {served}"]


def range_title(a1: str) -> str:
    """The sheet title of an A1 range as Google writes it ('It''s'!A1:B2 → It's)."""
    title = a1.rpartition("!")[0]
    if title.startswith("'"):
        title = title[1:-1].replace("''", "'")
    return title


def test_sheets_answers_have_googles_recorded_shape() -> None:
    """Each recorded spreadsheet is rebuilt in the sandbox from its recorded answers (titles,
    time zone, the last values of each sheet), the recorded requests are replayed, and every
    key the sandbox answers must be in Google's answer, with the same type."""
    checked = 0
    for cassette, gets in recorded_sheets():
        metadata = [g for g in gets if "/values/" not in g["request"]["uri"]]
        if not metadata:
            continue
        recorded_meta = json.loads(metadata[-1]["response"]["body"]["string"])
        key = recorded_meta["spreadsheetId"]
        values = [g for g in gets if f"{key}/values/" in g["request"]["uri"]]
        worksheets: dict[str, list[list[str]]] = {
            sheet["properties"]["title"]: [] for sheet in recorded_meta["sheets"]
        }
        last_values: dict[str, dict[str, Any]] = {}
        for get in values:  # later answers of a sheet replace earlier ones, as its cells did
            body = json.loads(get["response"]["body"]["string"])
            worksheets[range_title(body["range"])] = body.get("values", [])
            last_values[range_title(body["range"])] = get
        spreadsheet = {
            "title": recorded_meta["properties"]["title"],
            "worksheets": worksheets,
            "time_zone": recorded_meta["properties"]["timeZone"],
        }
        with SheetsServer({key: spreadsheet}) as server:
            for get in [metadata[-1], *last_values.values()]:
                uri = urlsplit(get["request"]["uri"])
                answer = httpx.get(f"{server.base_url}{unquote(uri.path)}?{uri.query}")
                assert answer.status_code == get["response"]["status"]["code"], (cassette, uri)
                recorded = json.loads(get["response"]["body"]["string"])
                problems = missing_from(shape(recorded), shape(answer.json()))
                assert problems == [], (cassette, uri.path)
                if "values" in recorded:  # ragged alike: trailing empty cells trimmed
                    assert answer.json()["values"] == recorded["values"], (cassette, uri.path)
                checked += 1
    assert checked >= 4


def test_sheets_error_and_rate_limit_answers_have_googles_shape() -> None:
    plan = FaultPlan(rate_limit=RateLimit(max_requests=1, window_seconds=30.0))
    with SheetsServer({}, faults=plan) as server:
        answers = [httpx.get(f"{server.base_url}/v4/spreadsheets/none") for _ in range(2)]
    assert [a.status_code for a in answers] == [404, 429]
    for answer in answers:
        error = answer.json()["error"]
        assert set(error) == {"code", "message", "status"}
        assert error["code"] == answer.status_code
    assert answers[1].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "retry-after" not in answers[1].headers  # Google sends no hint
