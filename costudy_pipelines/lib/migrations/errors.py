"""Errors of the migration runner. Each message names the database, environment and file."""

from __future__ import annotations


class MigrationError(RuntimeError):
    """A migration problem an operator can act on; the message says what, where and the fix."""


class DiscoveryError(MigrationError):
    """The migration folder itself is wrong: bad names, gaps, duplicate numbers, orphan files."""


class ConfigError(MigrationError):
    """sql/environments.toml is missing, malformed, or names a variable that is not set."""


class PlanRefused(MigrationError):
    """Nothing was applied: edited or missing files, dirty versions, or files the runner refuses."""

    def __init__(self, label: str, problems: list[str], hint: str | None = None) -> None:
        self.label = label
        self.problems = tuple(problems)
        self.hint = hint  # how to apply what can be applied (the good prefix), if anything
        listed = "\n  - ".join(problems)
        more = f"\n{hint}" if hint else ""
        super().__init__(f"{label}: refusing to apply anything:\n  - {listed}{more}")


class LockTimeout(MigrationError):
    """Another runner holds the migration lock of that database for longer than we wait."""


class MigrationFailed(MigrationError):
    """A file failed on the server; the message has file, line, statement and server message."""


class BackupError(MigrationError):
    """The pre-apply backup of a production database could not be made."""
