"""An operator's view of every database the project is connected to."""

import dagster as dg

from costudy_pipelines.defs.resources import DATABASE_RESOURCES, PostgresResource
from costudy_pipelines.lib.inventory import take_inventory


@dg.asset(
    group_name="operations",
    required_resource_keys=set(DATABASE_RESOURCES),
    kinds={"postgres"},
    description="Server version, size and table count of every configured database.",
)
def database_inventory(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    rows = []
    for key in sorted(DATABASE_RESOURCES):
        database: PostgresResource = getattr(context.resources, key)
        with database.begin() as conn:
            inventory = take_inventory(conn)
        rows.append(
            dg.TableRecord(
                {
                    "resource": key,
                    "url": database.masked_url,
                    "server_version": inventory.server_version,
                    "size_mb": round(inventory.size_bytes / 1_048_576, 1),
                    "tables": inventory.tables,
                }
            )
        )
    return dg.MaterializeResult(
        metadata={
            "databases": dg.MetadataValue.table(
                rows,
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn("resource", "string"),
                        dg.TableColumn("url", "string"),
                        dg.TableColumn("server_version", "string"),
                        dg.TableColumn("size_mb", "float"),
                        dg.TableColumn("tables", "int"),
                    ]
                ),
            ),
            "database_count": len(rows),
        }
    )


defs = dg.Definitions(assets=[database_inventory])
