"""The running sandbox: every emulated system up at once, and the env block that points at it.

`up()` starts, in a process of its own (it outlives the command, like the embedded
PostgreSQL), the server of every source whose emulator has one (the registry of sources: each
source folder's sandbox.py) plus the platform API and the alert receiver; runs every
emulator's seed (databases, files); and writes the variables the product's resources read.
The world is (config, day): the server process rebuilds it from `state.json`, so
`advance_day()` is "day + 1, restart the servers on the same ports, let every emulator follow
the day (databases, files)".
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeGuard

import psutil

from costudy_pipelines.lib import settings
from costudy_pipelines.lib.settings import costudy_home
from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.servers import (
    AlertReceiverServer,
    PlatformApiServer,
    Server,
    run_until_signalled,
)
from costudy_pipelines.sandbox.servers.alerts import PATH as ALERT_PATH
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.config import PARTITIONS_START_VAR
from costudy_pipelines.sources.registry import load_registry

# Services of the sandbox that are not sources: the reverse sync's target, and alerts.
PLATFORM, ALERTS = "platform", "alerts"
ES = ("whop", "ghl", "sheets", "platform", "alerts")
READY_TIMEOUT_S = 120
ENV_BLOCK_START = "# >>> costudy sandbox (written by `costudy sandbox up`; do not edit inside)"
ENV_BLOCK_END = "# <<< costudy sandbox"


class SandboxError(RuntimeError):
    """The sandbox cannot start or is not running; the message says what to do."""


@dataclass
class SandboxState:
    world: dict
    day: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)  # what write_env_block writes
    pid: int | None = None

    def build_world(self) -> World:
        world = World(WorldConfig.from_dict(self.world))
        for _ in range(self.day):
            world.advance_day()
        return world

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


def sandbox_dir() -> Path:
    return costudy_home() / "sandbox"


def state_path() -> Path:
    return sandbox_dir() / "state.json"


def read_state() -> SandboxState | None:
    try:
        return SandboxState(**json.loads(state_path().read_text()))
    except FileNotFoundError:
        return None


def write_state(state: SandboxState) -> None:
    state_path().parent.mkdir(parents=True, exist_ok=True)
    temporary = state_path().with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2))
    temporary.chmod(0o600)  # holds the sandbox's API tokens
    temporary.replace(state_path())


def is_running(state: SandboxState | None) -> TypeGuard[SandboxState]:
    if state is None or state.pid is None:
        return False
    try:
        process = psutil.Process(state.pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# -- the server process ---------------------------------------------------------------------
def emulators() -> dict[str, Emulator]:
    """Every registered source's emulator, by source name."""
    return {source.name: source.emulator() for source in load_registry()}


def services() -> list[str]:
    """The servers of the sandbox process, in start order: each source's, then the others."""
    served = [e.service for e in emulators().values() if e.service is not None]
    return [*served, PLATFORM, ALERTS]


def build_servers(world: World, state: SandboxState) -> list[Server]:
    ports, tokens = state.ports, state.tokens
    servers = [
        emulator.server(world, ports.get(emulator.service, 0), tokens[emulator.service])
        for emulator in emulators().values()
        if emulator.server is not None and emulator.service is not None
    ]
    return [
        *servers,
        PlatformApiServer(token=tokens[PLATFORM], port=ports.get(PLATFORM, 0)),
        AlertReceiverServer(port=ports.get(ALERTS, 0)),
    ]


def serve() -> None:
    """Entry point of the server process: serve the world of state.json until signalled."""
    state = read_state()
    if state is None:
        raise SandboxError(f"no sandbox state at {state_path()}")
    servers = build_servers(state.build_world(), state)

    def record_ports(started: Sequence[Server]) -> None:
        ports = {
            name: int(server.base_url.rsplit(":", 1)[1])
            for name, server in zip(services(), started, strict=True)
        }
        ready = sandbox_dir() / "ready.json"
        ready.write_text(json.dumps({"pid": os.getpid(), "ports": ports}))

    run_until_signalled(servers, on_ready=record_ports)


def _spawn(state: SandboxState) -> SandboxState:
    ready = sandbox_dir() / "ready.json"
    ready.unlink(missing_ok=True)
    log = (sandbox_dir() / "servers.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "costudy_pipelines.sandbox.stack"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # outlives `costudy sandbox up`
        env={**os.environ, "COSTUDY_HOME": str(costudy_home())},
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = (sandbox_dir() / "servers.log").read_text(errors="replace")[-1500:]
            raise SandboxError(f"the sandbox servers did not start:\n{tail}")
        time.sleep(0.1)
    answer = json.loads(ready.read_text())
    state.pid, state.ports = answer["pid"], answer["ports"]
    write_state(state)
    return state


def _stop_process(state: SandboxState) -> bool:
    if not is_running(state):
        return False
    process = psutil.Process(state.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except psutil.TimeoutExpired:
        process.kill()
    return True


# -- the commands -----------------------------------------------------------------------------
def up(config: WorldConfig, *, database_urls: dict[str, str]) -> SandboxState:
    """Start (or reuse) the sandbox for `config`; seed databases and files; write the env block.

    database_urls: WEBSITE_DB_URL, COURSE_DB_URL, PLATFORM_DB_URL already resolved.
    A running sandbox of the same world is reused as it is (its day included).
    """
    current = read_state()
    if is_running(current) and current.world == config.to_dict():
        write_env_block(current)
        return current
    if current is not None:
        _stop_process(current)
    world = World(config)
    state = SandboxState(
        world=config.to_dict(),
        tokens={service: secrets.token_urlsafe(24) for service in services()},
    )
    write_state(state)
    state = _spawn(state)
    for emulator in emulators().values():
        if emulator.seed is not None:
            emulator.seed(_context(world, state, emulator, database_urls))
    state.environment = emulated_environment(state, world)
    write_state(state)
    write_env_block(state)
    return state


def down() -> bool:
    """Stop the sandbox servers; the databases and files stay."""
    state = read_state()
    stopped = _stop_process(state) if state else False
    if state is not None:
        state.pid = None
        write_state(state)
    return stopped


def advance_day(*, database_urls: dict[str, str]) -> ChangeReport:
    """One day passes in every source: servers restarted on their ports, databases and files
    replayed. Returns what changed (the ground truth a sync is compared against)."""
    state = read_state()
    if state is None or not is_running(state):
        raise SandboxError("the sandbox is not running: `costudy sandbox up` first")
    world = state.build_world()
    report = world.advance_day()
    _stop_process(state)
    state.day += 1
    write_state(state)
    _spawn(state)
    for emulator in emulators().values():
        if emulator.advance is not None:
            emulator.advance(_context(world, state, emulator, database_urls), report)
    return report


# -- what the product reads ---------------------------------------------------------------------
def _context(
    world: World, state: SandboxState, emulator: Emulator, database_urls: dict[str, str]
) -> SandboxContext:
    served = emulator.service is not None and emulator.service in state.ports
    return SandboxContext(
        world=world,
        folder=sandbox_dir(),
        database_urls=database_urls,
        base_url=state.base_url(emulator.service) if served and emulator.service else None,
        token=state.tokens.get(emulator.service or ""),
    )


def emulated_environment(state: SandboxState, world: World) -> dict[str, str]:
    """What every source's emulator says its resource needs, once the servers run."""
    environment: dict[str, str] = {}
    for emulator in emulators().values():
        environment |= emulator.environment(_context(world, state, emulator, {}))
    return environment


def sandbox_environment(state: SandboxState) -> dict[str, str]:
    """The variables that point every external-system resource at the running sandbox."""
    return state.environment | {
        "PLATFORM_API_URL": state.base_url(PLATFORM) + "/api/v1",
        "PLATFORM_API_TOKEN": state.tokens[PLATFORM],
        "ALERT_WEBHOOK_URL": state.base_url(ALERTS) + ALERT_PATH,
        # the partitions begin on the world's first day (sources/config.py)
        PARTITIONS_START_VAR: state.world["start"],
    }


def write_env_block(state: SandboxState) -> Path:
    """Replace the sandbox block of the env file, keeping every line the user wrote."""
    return settings.write_env_block(ENV_BLOCK_START, ENV_BLOCK_END, sandbox_environment(state))


if __name__ == "__main__":
    serve()
