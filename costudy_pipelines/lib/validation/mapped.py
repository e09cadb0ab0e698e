"""Sources whose column names are configured (Google Sheets, Elective CSV exports).

Their rows are dicts keyed by header text that people type, so the mapping names the header
(or the candidate headers) of each field; headers match exactly, then trimmed and
case-insensitively. Rows have no id: the loader identifies them by row hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationInfo, field_validator

from costudy_pipelines.lib.validation.records import (
    RawRecord,
    RecordRejected,
    SourceModel,
    ValidRecord,
    to_valid_record,
    values_getter,
)
from costudy_pipelines.lib.validation.types import parse_human_time

DEFAULT_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d", "%d.%m.%Y")


class MappedModel(SourceModel):
    """A model fed by a header mapping; `occurred_at` is parsed with the configured formats."""

    occurred_at: datetime | None = None

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _human_time(cls, value: Any, info: ValidationInfo) -> datetime | None:
        formats = (info.context or {}).get("date_formats", DEFAULT_DATE_FORMATS)
        return parse_human_time(value, formats)

    @property
    def observed_at(self) -> datetime | None:
        return self.occurred_at


def _fold(header: object) -> str:
    return str(header).strip().casefold()


class MappedValidator:
    """Validates rows whose fields come from configured headers.

    `headers` maps each model field to its candidate headers, first found wins. `constants`
    are fields every row gets (e.g. the sheet's URL). A row whose headers include none of the
    email candidates is rejected with a reason that says which headers were looked for.
    """

    def __init__(
        self,
        model: type[MappedModel],
        headers: Mapping[str, tuple[str, ...]],
        *,
        email_field: str = "email",
        constants: Mapping[str, Any] | None = None,
        date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS,
        mapping_hint: str,
    ) -> None:
        self.model = model
        self.columns = model.COLUMNS
        self.headers = dict(headers)
        self.email_field = email_field
        self.constants = dict(constants or {})
        self.context = {"date_formats": date_formats}
        self.mapping_hint = mapping_hint
        self._values = values_getter(model.COLUMNS)
        self._layouts: dict[tuple[str, ...], dict[str, str]] = {}

    def key(self, raw: RawRecord) -> str | None:
        return None

    def __call__(self, raw: RawRecord) -> ValidRecord:
        layout = self._layout(raw)
        if self.email_field not in layout:
            looked_for = ", ".join(repr(h) for h in self.headers.get(self.email_field, ()))
            raise RecordRejected(
                f"no email column (looked for {looked_for or 'nothing: none configured'}; "
                f"the row has {', '.join(repr(k) for k in raw)}): cannot tie the row to a "
                f"person; map the export's email column in {self.mapping_hint}"
            )
        data = {field: raw[header] for field, header in layout.items()}
        data.update(self.constants)
        model = self.model.model_validate(data, context=self.context)
        return to_valid_record(model, self._values)

    def _layout(self, raw: RawRecord) -> dict[str, str]:
        """Field → actual header for this row's header set, resolved once per layout."""
        signature = tuple(raw)
        layout = self._layouts.get(signature)
        if layout is None:
            folded = {_fold(header): header for header in reversed(signature)}
            layout = {}
            for field, candidates in self.headers.items():
                for candidate in candidates:
                    actual = candidate if candidate in raw else folded.get(_fold(candidate))
                    if actual is not None:
                        layout[field] = actual
                        break
            if len(self._layouts) < 64:  # a handful of layouts per source; never unbounded
                self._layouts[signature] = layout
        return layout
