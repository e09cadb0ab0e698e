"""The product platform database: its users, by day."""
