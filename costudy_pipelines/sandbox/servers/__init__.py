"""Sandbox servers: Whop, GoHighLevel, Google Sheets and the platform API on 127.0.0.1, each
speaking its system's real protocol, with faults on demand (see `faults`).

    whop = WhopServer(api_key=key, payments=records, memberships=..., users=...).start()
    whop.base_url                      # http://127.0.0.1:<free port>; the API is under /api/v1
    whop.upsert("payments", changed)   # or replace(...), delete(...), refresh()
    whop.add_fault(Fault("error", status=503, count=3))   # fail the next 3 requests
    whop.set_faults(FaultPlan(rate_limit=WhopServer.V2_RATE_LIMIT.scaled(0.01)))
    whop.stop()

Every server also answers, without auth or faults, under /_sandbox/: `health`, `faults` (GET;
PUT a plan; POST one fault; DELETE), `requests` (the request log) and `data` (load or change
records from another process). `run_until_signalled(servers)` runs several in one process.
"""

from costudy_pipelines.sandbox.servers.alerts import AlertReceiverServer
from costudy_pipelines.sandbox.servers.base import (
    RequestRecord,
    SandboxServer,
    Server,
    run_until_signalled,
)
from costudy_pipelines.sandbox.servers.faults import Fault, FaultPlan, RateLimit
from costudy_pipelines.sandbox.servers.gohighlevel import GoHighLevelServer
from costudy_pipelines.sandbox.servers.platform_api import PlatformApiServer
from costudy_pipelines.sandbox.servers.sheets import SheetsServer
from costudy_pipelines.sandbox.servers.whop import WhopServer

__all__ = [
    "AlertReceiverServer",
    "Fault",
    "FaultPlan",
    "GoHighLevelServer",
    "PlatformApiServer",
    "RateLimit",
    "RequestRecord",
    "SandboxServer",
    "Server",
    "SheetsServer",
    "WhopServer",
    "run_until_signalled",
]
