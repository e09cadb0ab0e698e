"""The webhook receiver over real HTTP: signed pushes in, the platform's inbox table out."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from costudy_pipelines.lib.reverse_sync.webhook import (
    MAX_BODY_BYTES,
    SECRET_VAR,
    WEBHOOK_PATH,
    create_app,
    signature,
    signed_headers,
)
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.harness import TEST_URL_VAR, free_port
from costudy_pipelines_tests.lib.reverse_sync.support import rows

SECRET = secrets.token_hex(16)
BODY = json.dumps({"event_type": "demo_requests", "source_id": "42", "changed": ["company"]})


@dataclass
class Receiver:
    """A receiver served by uvicorn in a thread, and an httpx client for it."""

    client: httpx.Client
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Shut down as on SIGTERM (the tally of refusals is written on the way out)."""
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the receiver did not stop"


@contextmanager
def serving(platform_url: str, **options: Any) -> Iterator[Receiver]:
    app = create_app(secret=SECRET, platform_url=platform_url, source=TEST_URL_VAR, **options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the receiver did not start"
        time.sleep(0.01)
    port = sock.getsockname()[1]
    receiver = Receiver(
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30), server, thread
    )
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(platform_url: str) -> Iterator[httpx.Client]:
    with serving(platform_url) as served:
        yield served.client


def push(client: httpx.Client, body: str = BODY, **signing) -> httpx.Response:
    return client.post(
        WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body.encode(), **signing)
    )


def refusals(platform) -> list[dict]:
    return rows(
        platform,
        "select reason, refusals, samples from reverse_sync_webhook_refusals order by reason",
    )


def inbox(platform) -> list[dict]:
    return rows(
        platform,
        "select delivery_id, event_type, source_id, payload, signature_verified, "
        "refusal from reverse_sync_webhook_inbox order by id",
    )


def test_a_signed_delivery_is_accepted_into_the_inbox(receiver, platform) -> None:
    answer = push(receiver, delivery_id="d-1")

    assert answer.status_code == 202
    assert inbox(platform) == [
        {
            "delivery_id": "d-1",
            "event_type": "demo_requests",
            "source_id": "42",
            "payload": json.loads(BODY),
            "signature_verified": True,
            "refusal": None,
        }
    ]
    assert answer.json() == {
        "inbox_id": rows(platform, "select id from reverse_sync_webhook_inbox")[0]["id"]
    }


@pytest.mark.parametrize(
    ("headers", "refusal"),
    [
        pytest.param(lambda: {}, "unsigned", id="missing"),
        pytest.param(
            lambda: signed_headers("another-secret", BODY.encode()),
            "bad_signature",
            id="wrong-secret",
        ),
        pytest.param(
            lambda: signed_headers(SECRET, BODY.replace("42", "43").encode()),
            "bad_signature",
            id="body-changed-after-signing",
        ),
        pytest.param(
            lambda: {**signed_headers(SECRET, BODY.encode()), "X-Costudy-Delivery": "x"},
            "bad_signature",
            id="delivery-id-swapped",
        ),
    ],
)
def test_unsigned_and_wrongly_signed_deliveries_are_refused(
    platform_url, platform, headers, refusal
) -> None:
    with serving(platform_url) as receiver:
        answer = receiver.client.post(WEBHOOK_PATH, content=BODY, headers=headers())

    assert (answer.status_code, answer.json()) == (401, {"error": refusal})
    assert inbox(platform) == []  # tallied, not a row each: see the refusals test below
    [tallied] = refusals(platform)
    assert (tallied["reason"], tallied["refusals"]) == (refusal, 1)
    assert "body" not in json.dumps(tallied["samples"])  # an unverified body is not kept


def test_a_stale_delivery_is_refused_even_when_well_signed(receiver, platform) -> None:
    answer = push(receiver, timestamp=int(time.time()) - 3600)

    assert (answer.status_code, answer.json()) == (401, {"error": "stale_timestamp"})
    [recorded] = inbox(platform)
    assert (recorded["refusal"], recorded["signature_verified"]) == ("stale_timestamp", True)


def test_a_replayed_delivery_is_refused_and_changes_nothing(receiver, platform) -> None:
    headers = signed_headers(SECRET, BODY.encode(), delivery_id="d-7")
    first = receiver.post(WEBHOOK_PATH, content=BODY, headers=headers)
    replay = receiver.post(WEBHOOK_PATH, content=BODY, headers=headers)

    assert (first.status_code, replay.status_code) == (202, 409)
    assert [(r["delivery_id"], r["refusal"]) for r in inbox(platform)] == [
        ("d-7", None),
        ("d-7", "replayed"),
    ]


def test_racing_replays_are_accepted_once(receiver, platform) -> None:
    headers = signed_headers(SECRET, BODY.encode(), delivery_id="d-race")
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: receiver.post(WEBHOOK_PATH, content=BODY, headers=headers).status_code,
                range(8),
            )
        )

    assert sorted(answers) == [202] + [409] * 7
    accepted = [r for r in inbox(platform) if r["refusal"] is None]
    assert len(accepted) == 1


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"event_type": "page_views", "source_id": "1"}),
        json.dumps({"event_type": "votes", "source_id": "1; drop table votes"}),
        "not json",
        "[" * 30_000 + "]" * 30_000,  # nested deeper than the parser's recursion limit
    ],
    ids=["unknown-event", "bad-source-id", "not-json", "too-deep"],
)
def test_a_signed_but_meaningless_delivery_is_refused(receiver, platform, body) -> None:
    answer = push(receiver, body)

    assert answer.status_code == 422
    [recorded] = inbox(platform)
    assert recorded["refusal"].startswith("invalid_payload")
    assert recorded["signature_verified"] is True


def test_an_oversized_delivery_is_refused_and_its_connection_closed(platform_url, platform) -> None:
    body = json.dumps({"event_type": "votes", "source_id": "1", "pad": "x" * MAX_BODY_BYTES})

    with serving(platform_url) as receiver:
        answer = push(receiver.client, body)
        after = push(receiver.client)  # a new connection: the refused one was closed

    assert (answer.status_code, answer.headers["connection"]) == (413, "close")
    assert after.status_code == 202
    assert [(r["reason"], r["refusals"]) for r in refusals(platform)] == [("too_large", 1)]


def command_env(platform_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Every database variable set (nothing embedded starts); the platform's is the real one."""
    env = {k: v for k, v in os.environ.items() if k != SECRET_VAR}
    env.update({spec.env_var: platform_url for spec in DATABASES})
    return env | {"COSTUDY_HOME": str(tmp_path)} | extra


def test_costudy_webhook_serve_receives_signed_pushes(platform_url, platform, tmp_path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "costudy"), "webhook", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=command_env(platform_url, tmp_path, **{SECRET_VAR: SECRET}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, process.stderr.read().decode()
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "costudy webhook serve did not start"
                    time.sleep(0.1)
            assert push(client).status_code == 202
            assert push(client, timestamp=1).status_code == 401
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    assert [r["refusal"] for r in inbox(platform)] == [None, "stale_timestamp"]
    assert platform_url.split("@")[-1] in process.stderr.read().decode()  # says where it writes


def test_costudy_webhook_serve_refuses_to_start_without_a_secret(platform_url, tmp_path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "costudy"), "webhook", "serve"],
        cwd=PROJECT_ROOT,
        env=command_env(platform_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{SECRET_VAR} is not set" in result.stderr


@pytest.mark.parametrize(
    "stamp",
    ["99999999999999", "-5", "1e9", "12.5", "١٢٣".encode(), "0x10"],
    ids=["absurd", "negative", "exponent", "fraction", "arabic-digits", "hex"],
)
def test_a_malformed_timestamp_is_a_401_signed_or_not(receiver, platform, stamp) -> None:
    """The signature is checked before the timestamp means anything; none reaches SQL raw."""
    text = stamp.decode("latin-1") if isinstance(stamp, bytes) else stamp
    forged = {
        "X-Costudy-Delivery": "d-x",
        "X-Costudy-Timestamp": stamp,
        "X-Costudy-Signature": "v1=0",
    }
    signed = signed_headers(SECRET, BODY.encode(), delivery_id="d-signed") | {
        "X-Costudy-Timestamp": stamp,
        "X-Costudy-Signature": signature(SECRET, text, "d-signed", BODY.encode()),
    }

    unsigned = receiver.post(WEBHOOK_PATH, content=BODY, headers=forged)
    stale = receiver.post(WEBHOOK_PATH, content=BODY, headers=signed)

    assert (unsigned.status_code, unsigned.json()) == (401, {"error": "bad_signature"})
    assert (stale.status_code, stale.json()) == (401, {"error": "stale_timestamp"})
    [recorded] = rows(
        platform, "select delivery_id, refusal, sent_at from reverse_sync_webhook_inbox"
    )
    assert recorded == {"delivery_id": "d-signed", "refusal": "stale_timestamp", "sent_at": None}


def test_a_repeated_signature_header_is_refused(receiver, platform) -> None:
    headers = list(signed_headers(SECRET, BODY.encode()).items())
    headers.append(("X-Costudy-Signature", "v1=" + "0" * 64))

    answer = receiver.post(WEBHOOK_PATH, content=BODY, headers=headers)

    assert (answer.status_code, answer.json()) == (401, {"error": "repeated_header"})
    assert inbox(platform) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"event_type": "votes", "source_id": "1", "note": "a\\u0000b"}',
        '{"event_type": "votes", "source_id": "1", "a\\u0000": 1}',
        '{"event_type": "votes", "source_id": "1", "note": "\\ud800"}',
    ],
    ids=["nul-in-value", "nul-in-key", "lone-surrogate"],
)
def test_a_signed_body_postgresql_cannot_store_is_a_422_with_the_reason(
    receiver, platform, body
) -> None:
    answers = [push(receiver, body, delivery_id="d-nul") for _ in range(2)]  # a retry too

    assert [a.status_code for a in answers] == [422, 422]
    reason = answers[0].json()["error"]
    assert reason.startswith("invalid_payload: ")
    assert "NUL" in reason or "surrogates" in reason
    assert [(r["delivery_id"], r["refusal"]) for r in inbox(platform)] == [("d-nul", reason)] * 2


def test_beyond_its_concurrency_the_receiver_answers_503_with_retry_after(
    platform_url, platform
) -> None:
    """Two deliveries held in flight by a row lock fill max_in_flight=2; a third is shed."""
    blocker = psycopg.connect(platform_url)
    blocker.execute(
        "insert into reverse_sync_webhook_inbox (delivery_id, event_type, source_id, payload, "
        "signature_verified) values ('d-held', 'votes', '1', '{}', true)"
    )  # uncommitted: both deliveries of that id wait for it on the unique index
    try:
        with serving(platform_url, max_in_flight=2) as receiver, ThreadPoolExecutor(2) as pool:
            held = [pool.submit(push, receiver.client, delivery_id="d-held") for _ in range(2)]
            deadline = time.monotonic() + 60
            while waiting_on_locks(platform) < 2:
                assert time.monotonic() < deadline, "the deliveries never reached the lock"
                time.sleep(0.05)

            shed = push(receiver.client, delivery_id="d-other")
            health = receiver.client.get("/health")
            blocker.rollback()
            answers = sorted(future.result().status_code for future in held)
            after = push(receiver.client, delivery_id="d-other")
    finally:
        blocker.close()

    assert (shed.status_code, shed.headers["retry-after"]) == (503, "1")
    assert health.status_code == 200  # only deliveries count against the bound
    assert answers == [202, 409]
    assert after.status_code == 202
    assert [r["delivery_id"] for r in inbox(platform) if r["refusal"] is None] == [
        "d-held",
        "d-other",
    ]


def waiting_on_locks(platform) -> int:
    return rows(
        platform,
        "select count(*) as n from pg_stat_activity "
        "where datname = current_database() and wait_event_type = 'Lock'",
    )[0]["n"]


def test_unauthenticated_refusals_are_counted_and_sampled_not_stored_each(
    platform_url, platform
) -> None:
    wrong = signed_headers("another-secret", BODY.encode())
    for _ in range(2):  # two runs of the receiver: the second adds to the first's tally
        with serving(platform_url, tally_flush_s=3600) as receiver:
            for n in range(12):
                assert (
                    receiver.client.post(
                        WEBHOOK_PATH, content=BODY, headers={"X-Costudy-Delivery": f"u-{n}"}
                    ).status_code
                    == 401
                )
            for _ in range(3):
                assert (
                    receiver.client.post(WEBHOOK_PATH, content=BODY, headers=wrong).status_code
                    == 401
                )
            assert push(receiver.client).status_code == 202

    assert [r["refusal"] for r in inbox(platform)] == [None, None]  # the two accepted ones
    tallied = refusals(platform)
    assert [(r["reason"], r["refusals"]) for r in tallied] == [
        ("bad_signature", 6),
        ("unsigned", 24),
    ]
    unsigned = tallied[1]["samples"]
    assert [s["delivery_id"] for s in unsigned] == ["u-0", "u-1", "u-2", "u-3", "u-4"]
    assert {s["client"] for s in unsigned} == {"127.0.0.1"}


def test_an_accepted_delivery_commits_synchronously_on_a_server_that_does_not(
    platform_url, platform
) -> None:
    """A trigger records the synchronous_commit each inbox row was written under."""
    platform.execute(f'alter database "{platform.info.dbname}" set synchronous_commit = off')
    platform.execute("create table commit_modes (delivery_id text, mode text)")
    platform.execute(
        """
        create function record_commit_mode() returns trigger language plpgsql as $$
        begin
            insert into commit_modes
            values (new.delivery_id, current_setting('synchronous_commit'));
            return new;
        end $$;
        create trigger record_commit_mode after insert on reverse_sync_webhook_inbox
            for each row execute function record_commit_mode();
        """
    )

    with serving(platform_url) as receiver:
        assert push(receiver.client, delivery_id="d-durable").status_code == 202
        assert push(receiver.client, timestamp=1, delivery_id="d-stale").status_code == 401

    assert rows(platform, "select * from commit_modes order by delivery_id") == [
        {"delivery_id": "d-durable", "mode": "on"},
        {"delivery_id": "d-stale", "mode": "off"},  # the server's default: nothing acknowledged
    ]


def test_a_delivery_id_over_200_characters_is_refused_clearly_when_signed(
    receiver, platform
) -> None:
    long_id = "d" * 250

    signed = push(receiver, delivery_id=long_id)
    forged = receiver.post(
        WEBHOOK_PATH,
        content=BODY,
        headers=signed_headers("another-secret", BODY.encode(), delivery_id=long_id),
    )

    assert signed.status_code == 422
    assert signed.json()["error"] == (
        "invalid_delivery_id: X-Costudy-Delivery is 250 characters long, at most 200 are accepted"
    )
    assert (forged.status_code, forged.json()) == (401, {"error": "bad_signature"})
    [recorded] = inbox(platform)
    assert recorded["refusal"].startswith("invalid_delivery_id")
    assert recorded["delivery_id"] == "d" * 199 + "…"
