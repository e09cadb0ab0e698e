"""Sandbox servers: Whop, GoHighLevel, Google Sheets and the platform API on 127.0.0.1, each
speaking its system's real protocol, with faults on demand (see `faults`)."""

from costudy_pipelines.sandbox.servers.base import (
    RequestRecord,
    SandboxServer,
    run_until_signalled,
)
from costudy_pipelines.sandbox.servers.faults import Fault, FaultPlan, RateLimit
from costudy_pipelines.sandbox.servers.gohighlevel import GoHighLevelServer
from costudy_pipelines.sandbox.servers.platform_api import PlatformApiServer
from costudy_pipelines.sandbox.servers.sheets import SheetsServer
from costudy_pipelines.sandbox.servers.whop import WhopServer

__all__ = [
    "Fault",
    "FaultPlan",
    "GoHighLevelServer",
    "PlatformApiServer",
    "RateLimit",
    "RequestRecord",
    "SandboxServer",
    "SheetsServer",
    "WhopServer",
    "run_until_signalled",
]
