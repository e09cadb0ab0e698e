"""Elective: CSV payment exports dropped into a folder, fully synced."""
