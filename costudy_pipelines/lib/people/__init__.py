"""People across emails: which users are probably one person (matching.py)."""
