"""The sandbox's Elective: the world's exports written as CSV files into a drop folder."""

from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.elective_files import write_elective_exports
from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext


def drop_folder(context: SandboxContext) -> str:
    return str(context.folder / "elective")


def seed(context: SandboxContext) -> None:
    write_elective_exports(context.world, context.folder / "elective")


def advance(context: SandboxContext, report: ChangeReport) -> None:
    seed(context)


def environment(context: SandboxContext) -> dict[str, str]:
    return {
        "ELECTIVE_DROP_DIR": drop_folder(context),
        # The sandbox writes each export whole before a sync can start: no need to wait.
        "ELECTIVE_SETTLE_SECONDS": "0",
    }


EMULATOR = Emulator(environment=environment, seed=seed, advance=advance)
