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
from pathlib import Path

import httpx
import pytest
import uvicorn

from costudy_pipelines.lib.reverse_sync.webhook import (
    MAX_BODY_BYTES,
    SECRET_VAR,
    WEBHOOK_PATH,
    create_app,
    signed_headers,
)
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.harness import TEST_URL_VAR, free_port
from costudy_pipelines_tests.reverse_sync.support import rows

SECRET = secrets.token_hex(16)
BODY = json.dumps({"event_type": "demo_requests", "source_id": "42", "changed": ["company"]})


@pytest.fixture
def receiver(platform_url: str) -> Iterator[httpx.Client]:
    """The receiver served by uvicorn on a free port, and an httpx client for it."""
    app = create_app(secret=SECRET, platform_url=platform_url, source=TEST_URL_VAR)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the receiver did not start"
        time.sleep(0.01)
    port = sock.getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


def push(client: httpx.Client, body: str = BODY, **signing) -> httpx.Response:
    return client.post(
        WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body.encode(), **signing)
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
    receiver, platform, headers, refusal
) -> None:
    answer = receiver.post(WEBHOOK_PATH, content=BODY, headers=headers())

    assert (answer.status_code, answer.json()) == (401, {"error": refusal})
    [recorded] = inbox(platform)
    assert (recorded["refusal"], recorded["signature_verified"]) == (refusal, False)
    assert recorded["payload"] is None  # an unverified body is not kept


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
    ],
)
def test_a_signed_but_meaningless_delivery_is_refused(receiver, platform, body) -> None:
    answer = push(receiver, body)

    assert answer.status_code == 422
    [recorded] = inbox(platform)
    assert recorded["refusal"].startswith("invalid_payload")
    assert recorded["signature_verified"] is True


def test_an_oversized_delivery_is_refused_without_reading_it_all(receiver, platform) -> None:
    body = json.dumps({"event_type": "votes", "source_id": "1", "pad": "x" * MAX_BODY_BYTES})

    answer = push(receiver, body)

    assert answer.status_code == 413
    assert [r["refusal"] for r in inbox(platform)] == ["too_large"]


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
