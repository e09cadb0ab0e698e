"""The sandbox's course analytics: a MongoDB wire-protocol server (no MongoDB can be installed
on these machines) holding the world's activity, and the course users it refers to."""

from urllib.parse import quote_plus, urlsplit

from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.course_activity import (
    DATABASE,
    activity_server,
    seed_course_users,
)
from costudy_pipelines.sandbox.emulator import Emulator, SandboxContext
from costudy_pipelines.sandbox.servers.mongo_wire import MongoWireServer
from costudy_pipelines.sandbox.world import World

URL_VAR = "COURSE_DB_URL"
USER = "analyst"  # a deployment with access control: the token is its password


def server(world: World, port: int, token: str) -> MongoWireServer:
    return activity_server(world, port=port, users={USER: token})


def seed(context: SandboxContext) -> None:
    seed_course_users(context.database_urls[URL_VAR], context.world)


def advance(context: SandboxContext, report: ChangeReport) -> None:
    seed(context)  # newcomers join; the server is rebuilt from the advanced world


def environment(context: SandboxContext) -> dict[str, str]:
    address = urlsplit(context.base_url or "").netloc  # host:port of the sandbox's server
    password = quote_plus(context.token or "")
    return {
        "MONGO_URI": f"mongodb://{USER}:{password}@{address}/?directConnection=true",
        "MONGO_DB": DATABASE,
    }


EMULATOR = Emulator(
    environment=environment, service="mongo", server=server, seed=seed, advance=advance
)
