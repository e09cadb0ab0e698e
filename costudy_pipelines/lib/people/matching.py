"""Placeholder for the scoring (built on the people-match branch, which replaces this file):
only the interface the review workflow relies on."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import psycopg

DEFAULT_THRESHOLD = 0.9


@dataclass(frozen=True, slots=True)
class MatchCandidate:
    user_a: UUID  # users.id, always user_a < user_b
    user_b: UUID
    probability: float
    agreed: tuple[str, ...]
    disagreed: tuple[str, ...]


def find_candidates(
    conn: psycopg.Connection, *, threshold: float = DEFAULT_THRESHOLD
) -> list[MatchCandidate]:
    return []
