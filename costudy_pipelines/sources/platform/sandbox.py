"""The sandbox's platform database: its schema from sql/platform, the world's users in it."""

from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.seed import apply_changes, seed_platform_users

URL_VAR = "PLATFORM_DB_URL"


def seed(context: SandboxContext) -> None:
    url = context.database_urls[URL_VAR]
    # The platform's users table comes from its migrations: apply them (tracked, so the
    # platform_schema_dev asset later finds them applied) before seeding its users.
    apply_pending(url, PROJECT_ROOT / "sql" / "platform", env_name="dev", source=URL_VAR)
    seed_platform_users(url, context.world)


def advance(context: SandboxContext, report: ChangeReport) -> None:
    url = context.database_urls[URL_VAR]
    apply_changes(url, context.world, report, "platform", source=URL_VAR)


# The database itself is the source: its variable is resolved like every database's.
EMULATOR = Emulator(environment=lambda context: {}, seed=seed, advance=advance)
