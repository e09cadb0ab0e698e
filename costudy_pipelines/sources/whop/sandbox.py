"""The sandbox's Whop: its v1 API on 127.0.0.1, serving the world's Whop records."""

from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.generators.whop import members
from costudy_pipelines.sandbox.servers.whop import WhopServer
from costudy_pipelines.sandbox.world import World


def server(world: World, port: int, token: str) -> WhopServer:
    return WhopServer(
        api_key=token,
        payments=list(world.records("whop_payments")),
        memberships=list(world.records("whop_memberships")),
        users=list(world.records("whop_users")),
        members=members(world),
        port=port,
    )


def environment(context: SandboxContext) -> dict[str, str]:
    return {"WHOP_API_URL": f"{context.base_url}/api/v1", "WHOP_API_KEY": context.token or ""}


EMULATOR = Emulator(environment=environment, service="whop", server=server)
