"""The course platform's core database: orders (with their items) and enrollments, by day.

orders(id, user_email, amount, currency, status, created_at) with order_items, and
enrollments(id, user_email, course_id, created_at).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.clients.databases import TableExtract, qualified, window_clause


@dataclass(frozen=True)
class OrdersExtract:
    """Course orders, each with its items as a JSON array `order_items` (ordered by item id).

    One query: the items come from a correlated subquery per order on the server (an index
    lookup per order, which suits daily windows), so there is no per-order round trip and an
    order never arrives without its items. `json` rather than `jsonb`: cheaper to build, and
    the client parses it the same way.
    """

    name: str = "course_orders"
    orders_table: str = "orders"
    items_table: str = "order_items"
    item_order_column: str = "order_id"
    created_column: str = "created_at"
    id_column: str = "id"
    schema: str | None = None

    def query(self, window: TimeWindow | None) -> sql.Composed:
        return sql.SQL(
            "select t.*, coalesce((select json_agg(i order by i.{id}) "
            "from {items} as i where i.{order_fk} = t.{id}), '[]'::json) as order_items "
            "from {orders} as t {where} order by t.{created}, t.{id}"
        ).format(
            orders=qualified(self.schema, self.orders_table),
            items=qualified(self.schema, self.items_table),
            order_fk=sql.Identifier(self.item_order_column),
            where=window_clause(self.created_column, window),
            created=sql.Identifier(self.created_column),
            id=sql.Identifier(self.id_column),
        )


COURSE_ORDERS = OrdersExtract()
COURSE_ENROLLMENTS = TableExtract("course_enrollments", "enrollments")
