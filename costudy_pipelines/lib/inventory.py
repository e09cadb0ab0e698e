"""What a database holds, in one round trip: for the operator's view of every connection."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

INVENTORY_SQL = sa.text(
    """
    select current_setting('server_version') as server_version,
           pg_database_size(current_database()) as size_bytes,
           (select count(*) from information_schema.tables
             where table_schema not in ('pg_catalog', 'information_schema')) as tables
    """
)


@dataclass(frozen=True)
class DatabaseInventory:
    server_version: str
    size_bytes: int
    tables: int


def take_inventory(conn: sa.Connection) -> DatabaseInventory:
    row = conn.execute(INVENTORY_SQL).one()
    return DatabaseInventory(str(row.server_version), int(row.size_bytes), int(row.tables))
