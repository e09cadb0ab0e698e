"""`costudy` sub-command groups; each module exposes one click group that cli.py registers."""
