"""The sandbox's Google Sheets: the Sheets API v4 serving the world's spreadsheets."""

from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.servers.sheets import SheetsServer
from costudy_pipelines.sandbox.spreadsheets import spreadsheets
from costudy_pipelines.sandbox.world import World


def server(world: World, port: int, token: str) -> SheetsServer:
    return SheetsServer(spreadsheets(world), token=token, port=port)


def environment(context: SandboxContext) -> dict[str, str]:
    return {
        "GOOGLE_SHEETS_API_URL": context.base_url or "",
        "GOOGLE_SHEETS_TOKEN": context.token or "",
        "GOOGLE_SERVICE_ACCOUNT_FILE": "",  # the sandbox takes its token instead
    }


EMULATOR = Emulator(environment=environment, service="sheets", server=server)
