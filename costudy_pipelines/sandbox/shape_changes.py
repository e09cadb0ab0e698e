"""An API changing its shapes mid-run: records created from a moment on are served renamed,
retyped or without a field, the way an unannounced API release shows up. The shape drift
checks are tested against worlds served through it (sources/whop tests)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from costudy_pipelines.sandbox.generators.base import Record
from costudy_pipelines.sandbox.servers.records import UNDATED, epoch_us


@dataclass(frozen=True)
class ShapeChange:
    """From `since` (ISO-8601) on, by each record's `time_field`: `renamed` fields move to their
    new name, `to_money` numbers become Money objects in the record's currency, `dropped`
    fields are gone. Records before `since`, or with an unreadable time, keep their shape."""

    since: str
    renamed: Mapping[str, str] = field(default_factory=dict)
    to_money: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    time_field: str = "created_at"

    def applies_to(self, record: Record) -> bool:
        moment = epoch_us(record.get(self.time_field))
        return moment != UNDATED and moment >= epoch_us(self.since)

    def apply(self, records: Iterable[Record]) -> list[Record]:
        return [self._changed(record) if self.applies_to(record) else record for record in records]

    def _changed(self, record: Record) -> Record:
        changed = {self.renamed.get(name, name): value for name, value in record.items()}
        for name in self.to_money:
            value = changed.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                currency = str(changed.get("currency") or "usd").lower()
                changed[name] = {"amount": f"{value:.2f}", "currency": currency, "decimals": 2,
                                 "display_decimals": 2}  # fmt: skip
        for name in self.dropped:
            changed.pop(name, None)
        return changed
