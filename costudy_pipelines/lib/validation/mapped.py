"""Sources whose column names are configured (Google Sheets, Elective CSV exports).

Their rows are dicts keyed by header text that people type, so the mapping names the header
(or the candidate headers) of each field; headers match exactly, then trimmed and
case-insensitively. Rows have no id: the loader identifies them by row hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, ValidationInfo

from costudy_pipelines.lib.validation.records import RawRecord, SchemaValidator, ValidRecord
from costudy_pipelines.lib.validation.types import (
    DEFAULT_AMOUNT_BOUNDS,
    AmountBounds,
    RecordRejected,
    parse_human_time,
)

DEFAULT_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d", "%d.%m.%Y")


def _human_time(value: Any, info: ValidationInfo) -> datetime | None:
    context = info.context or {}
    formats = context.get("date_formats", DEFAULT_DATE_FORMATS)
    return parse_human_time(value, formats, context.get("time_zone", UTC))


# A date typed by a person: ISO-8601, a serial number, then the validator's configured formats;
# without an offset, in the validator's time zone.
HumanTime = Annotated[datetime | None, BeforeValidator(_human_time)]


def zone(name: str) -> tzinfo:
    """The IANA time zone `name` (a spreadsheet's `timeZone`), or a ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name)") from None


def _fold(header: object) -> str:
    return str(header).strip().casefold()


class MappedValidator(SchemaValidator):
    """Validates rows whose fields come from configured headers.

    `headers` maps each schema field to its candidate headers, first found wins. `constants`
    are fields every row gets (e.g. the sheet's URL). Dates without an offset are wall time in
    `time_zone` (an IANA name). A row whose headers include none of the email candidates is
    rejected with a reason that says which headers were looked for.
    """

    id_field = None

    def __init__(
        self,
        headers: Mapping[str, tuple[str, ...]],
        *,
        constants: Mapping[str, Any] | None = None,
        date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS,
        time_zone: str = "UTC",
        mapping_hint: str,
        amount_bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS,
    ) -> None:
        super().__init__(amount_bounds=amount_bounds)
        self.headers = dict(headers)
        self.constants = dict(constants or {})
        self.context = {"date_formats": date_formats, "time_zone": zone(time_zone)}
        self.mapping_hint = mapping_hint
        self._layouts: dict[tuple[str, ...], dict[str, str]] = {}

    def set_time_zone(self, time_zone: str) -> None:
        """Read dates without an offset in `time_zone` from now on (a spreadsheet's, known only
        once its metadata has been read)."""
        self.context = {**(self.context or {}), "time_zone": zone(time_zone)}

    def __call__(self, raw: RawRecord) -> ValidRecord:
        layout = self._layout(raw)
        if "email" not in layout:
            looked_for = ", ".join(repr(h) for h in self.headers.get("email", ()))
            raise RecordRejected(
                f"no email column (looked for {looked_for or 'nothing: none configured'}; "
                f"the row has {', '.join(repr(k) for k in raw)}): cannot tie the row to a "
                f"person; map the export's email column in {self.mapping_hint}"
            )
        data = {field: raw[header] for field, header in layout.items()}
        data.update(self.constants)
        return super().__call__(data)

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
