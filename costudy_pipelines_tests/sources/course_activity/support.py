"""What the course-activity tests share: a small world and the days it has data for."""

from __future__ import annotations

from collections import Counter
from datetime import date

from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.sandbox.course_activity import activities
from costudy_pipelines.sandbox.world import World, WorldConfig

# malformed_rate 0.04: about 8 % of the documents are bad, every kind of them present
SMALL = WorldConfig(seed=11, people=400, days=20, malformed_rate=0.04)


def busiest_day(world: World) -> date:
    """The day with the most documents (a test of paging wants several batches)."""
    days = Counter(activity.document["createdAt"].date() for activity in activities(world))
    return days.most_common(1)[0][0]


def window_of(day: date) -> TimeWindow:
    return TimeWindow.day(day)
