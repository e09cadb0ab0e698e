"""How the sandbox stands in for one source: what a source folder's sandbox.py declares.

The sandbox (`costudy sandbox up`) walks the registry of sources and, for each source's
EMULATOR, starts its server (if it has one) in the sandbox process, seeds what it owns
(databases, files), and writes the variables that point the source's resource at it. A new
source brings its own emulator in its folder; nothing here lists sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.changes import ChangeReport
    from costudy_pipelines.sandbox.servers.base import Server
    from costudy_pipelines.sandbox.world import World


@dataclass(frozen=True)
class SandboxContext:
    """What an emulator's hooks see: the world, the sandbox folder, the resolved database
    URLs (by variable), and its own server's address and token once it runs."""

    world: World
    folder: Path
    database_urls: Mapping[str, str]
    base_url: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Emulator:
    """service: the name of its server in the sandbox process (its port and token are kept
    under it); server(world, port, token): that server, not yet started (port 0: any free);
    environment(context): the variables pointing the source's resource at the emulator;
    seed(context): fill what it owns at `sandbox up`; advance(context, report): follow one
    advanced day (servers are rebuilt from the advanced world by themselves)."""

    environment: Callable[[SandboxContext], dict[str, str]]
    service: str | None = None
    server: Callable[[World, int, str], Server] | None = None
    seed: Callable[[SandboxContext], None] | None = None
    advance: Callable[[SandboxContext, ChangeReport], None] | None = None

    def __post_init__(self) -> None:
        if (self.service is None) != (self.server is None):
            raise ValueError("an emulator with a server names its service, and only then")
