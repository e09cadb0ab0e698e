"""The marketing website database: the people behind its events, by day."""
