"""The product platform database's users (id, email, name, username, created_at), by day."""

from costudy_pipelines.lib.clients.databases import TableExtract

PLATFORM_USERS = TableExtract("platform_users", "users")
