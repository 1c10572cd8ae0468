"""The limits of a spreadsheet import (operators' settings: services/intake/config.py)."""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.spreadsheet.columns import UNIT_KINDS

MiB = 1024 * 1024


@dataclass(frozen=True)
class SpreadsheetPolicy:
    """Limits of the import; the rules are here, not in the parsing code. The size limits are
    operators' settings (services/intake/config.py); docs/security.md says why these values."""

    max_rows: int = 50_000  # data rows
    max_columns: int = 50  # up to a row's last filled cell
    max_cell_chars: int = 1_000
    max_parts: int = 1_000  # files inside an XLSX (a zip); Excel writes about 10
    max_part_bytes: int = 16 * MiB  # one part unpacked: 50,000 five-column rows are ~15 MB
    max_unpacked_bytes: int = 24 * MiB  # every part together
    max_ratio: int = 100  # unpacked : packed of a part over ratio_from_bytes; sheets are 5-15
    ratio_from_bytes: int = 1 * MiB
    max_errors: int = 1_000  # errors listed; past them checking stops
    max_int: int = 1_000_000
    progress_every: int = 500
    header_search_rows: int = 5  # title rows (e.g. a merged "XX镇物资需求表") before the header
    max_text_len: int = 200
    max_note_len: int = 500
    lat_range: tuple[float, float] = (-90.0, 90.0)
    lon_range: tuple[float, float] = (-180.0, 180.0)
    population_required_kinds: tuple[str, ...] = ("village", "community")
    headcount_required_kinds: tuple[str, ...] = UNIT_KINDS


DEFAULT_POLICY = SpreadsheetPolicy()
