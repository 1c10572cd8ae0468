"""What a parse gives: the rows read, the problems found (row, column as written, reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str


@dataclass(frozen=True)
class RequesterRow:
    """One village/community/unit. Vulnerable counts default to 0 when the cell is empty;
    population, households, headcount, beds and coordinates stay None when not given."""

    row: int
    id: str
    name: str
    kind: str
    township: str
    population: int | None = None
    households: int | None = None
    risk_level: str | None = None
    lat: float | None = None
    lon: float | None = None
    elderly_alone: int = 0
    disabled: int = 0
    chronic_patients: int = 0
    infants: int = 0
    pregnant: int = 0
    headcount: int | None = None
    beds: int | None = None
    drop_point: str | None = None
    drop_lat: float | None = None
    drop_lon: float | None = None


@dataclass(frozen=True)
class DemandRow:
    """One demand line. `requester_id` is not checked against the register here (no DB)."""

    row: int
    requester_id: str
    item_code: str
    quantity: int
    delivery_day: date | None = None
    note: str = ""


@dataclass(frozen=True)
class ParseResult:
    rows: list[RequesterRow | DemandRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_total: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # row field -> header text in the file

    @property
    def ok(self) -> bool:
        return not self.errors


class FileError(Exception):
    """The whole file is unreadable (row 0) or has a problem at one place."""

    def __init__(self, reason: str, row: int = 0, column: str = ""):
        super().__init__(reason)
        self.error = RowError(row=row, column=column, reason=reason)
