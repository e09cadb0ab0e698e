"""The sandbox's website database: the world's website tables, seeded and kept day by day."""

from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.seed import apply_changes, seed_website

URL_VAR = "WEBSITE_DB_URL"


def seed(context: SandboxContext) -> None:
    seed_website(context.database_urls[URL_VAR], context.world)


def advance(context: SandboxContext, report: ChangeReport) -> None:
    url = context.database_urls[URL_VAR]
    apply_changes(url, context.world, report, "website", source=URL_VAR)


# The database itself is the source: its variable is resolved like every database's.
EMULATOR = Emulator(environment=lambda context: {}, seed=seed, advance=advance)
