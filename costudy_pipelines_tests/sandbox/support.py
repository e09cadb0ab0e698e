from __future__ import annotations

from costudy_pipelines.sandbox.world import WorldConfig

SMALL = WorldConfig(seed=11, people=1_500)
