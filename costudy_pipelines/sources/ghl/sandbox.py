"""The sandbox's GoHighLevel: LeadConnector v2 contacts of the world's locations."""

from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.servers.gohighlevel import GoHighLevelServer
from costudy_pipelines.sandbox.world import World


def server(world: World, port: int, token: str) -> GoHighLevelServer:
    return GoHighLevelServer(
        token=token,
        contacts=list(world.records("ghl_contacts")),
        location_ids=world.ghl_locations,
        port=port,
    )


def environment(context: SandboxContext) -> dict[str, str]:
    return {
        "GHL_API_URL": context.base_url or "",
        "GHL_TOKEN": context.token or "",
        "GHL_LOCATION_IDS": ",".join(context.world.ghl_locations),
    }


EMULATOR = Emulator(environment=environment, service="ghl", server=server)
