"""Dead letters replayed once the platform API recovers: through the command line, the job
`replay_dead_letters` and a full refresh; each event delivered exactly once (the sandbox
PlatformApiServer over HTTP, real website and platform databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.reverse_sync import PlatformApiResource
from costudy_pipelines.lib.reverse_sync import SyncOptions, event_type, sync_event_type
from costudy_pipelines.sandbox.servers import Fault
from costudy_pipelines_tests.lib.reverse_sync.support import (
    add_rows,
    api_client,
    api_root,
    demo_request,
    tracking,
)
from costudy_pipelines_tests.replay.support import costudy, op_metadata, replay_job, use_databases

DEMO = event_type("demo_requests")
LEADS_PATH = "/api/v1/leads"
DOWN = "POST /api/v1/leads answered 503"


@pytest.fixture
def dead_letter(website, platform, platform_api, api_token) -> str:
    """One demo request dead-lettered while the API answered 503 (retry cap 1); the API then
    recovers. Returns its source id."""
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    platform_api.add_fault(Fault("error", path=LEADS_PATH, status=503))
    with api_client(platform_api, api_token, max_attempts=1) as client:
        report = sync_event_type(
            DEMO, website, platform, SyncOptions(strategy="api", max_attempts=1), api=client
        )
    assert report.dead == 1 and tracking(platform, "demo_requests")[str(source_id)]["status"] == (
        "dead"
    )
    platform_api.clear_faults()
    return str(source_id)


def posts(server) -> int:
    return sum(1 for r in server.request_log if r.method == "POST")


@pytest.fixture
def cli_env(monkeypatch, tmp_path: Path, website_url, platform_url, platform_api, api_token):
    use_databases(monkeypatch, tmp_path, PLATFORM_DB_URL=platform_url, WEBSITE_DB_URL=website_url)
    monkeypatch.setenv("PLATFORM_API_URL", api_root(platform_api))
    monkeypatch.setenv("PLATFORM_API_TOKEN", api_token)
    monkeypatch.setenv("REVERSE_SYNC_STRATEGIES", "demo_requests=api")


def test_a_dead_letter_is_listed_and_replayed_once_after_the_api_recovers(
    dead_letter, cli_env, platform, platform_api
) -> None:
    listed = costudy("reverse-sync", "dead-letters", "list", "--source", "demo_requests")
    assert listed.exit_code == 0, listed.output
    assert dead_letter in listed.output and DOWN in listed.output
    assert "1 dead letter(s)" in listed.output
    before = posts(platform_api)

    replayed = costudy("reverse-sync", "dead-letters", "replay", "--reason", "answered 503")

    assert replayed.exit_code == 0, replayed.output
    [summary] = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert summary == {
        "event_type": "demo_requests",
        "replayed": 1,
        "delivered": 1,
        "failed_will_retry": 0,
        "still_dead": 0,
        "still_dead_by_reason": {},
    }
    [lead] = platform_api.created("leads")
    state = tracking(platform, "demo_requests")[dead_letter]
    assert (state["status"], state["target_id"]) == ("synced", lead["id"])

    again = costudy("reverse-sync", "dead-letters", "replay")
    assert again.exit_code == 0 and again.stdout == ""
    assert len(platform_api.created("leads")) == 1 and posts(platform_api) == before + 1


def test_an_unknown_event_type_is_refused(cli_env) -> None:
    result = costudy("reverse-sync", "dead-letters", "replay", "--source", "nope")
    assert result.exit_code == 1 and "unknown event type(s) ['nope']" in result.output


def test_a_full_refresh_retries_dead_letters(
    dead_letter, website, platform, platform_api, api_token
):
    with api_client(platform_api, api_token) as client:
        options = SyncOptions(strategy="api", full_refresh=True)
        first = sync_event_type(DEMO, website, platform, options, api=client)
        second = sync_event_type(DEMO, website, platform, options, api=client)

    assert (first.synced, first.dead, second.synced, second.unchanged) == (1, 0, 0, 1)
    assert len(platform_api.created("leads")) == 1
    assert tracking(platform, "demo_requests")[dead_letter]["status"] == "synced"


def test_the_replay_dead_letters_job_delivers_once_and_reports_what_is_still_dead(
    dead_letter, website_url, platform_url, platform, platform_api, api_token
) -> None:
    resources = {
        "website_db": PostgresResource(url=website_url, env_var="WEBSITE_DB_URL"),
        "platform_db": PostgresResource(url=platform_url, env_var="PLATFORM_DB_URL"),
        "platform_api": PlatformApiResource(base_url=api_root(platform_api), token=api_token),
    }
    job = replay_job("replay_dead_letters", resources, {"demo_requests": "api"})
    config = {"sources": ["demo_requests"], "ids": [dead_letter]}
    run_config = {"ops": {"replay_selected_dead_letters": {"config": config}}}

    result = job.execute_in_process(run_config=run_config)

    metadata = op_metadata(result, "replay_selected_dead_letters")
    assert (metadata["replayed"], metadata["delivered"], metadata["still_dead"]) == (1, 1, 0)
    assert len(platform_api.created("leads")) == 1
    again = op_metadata(
        job.execute_in_process(run_config=run_config), "replay_selected_dead_letters"
    )
    assert (again["replayed"], again["delivered"]) == (0, 0)
    assert len(platform_api.created("leads")) == 1
