"""Intake's settings beyond the platform's (services.common.config): the limits of a spreadsheet
import, checked at start so that a typo stops the process with a message that names the variable.
Why these defaults: docs/security.md, "Spreadsheet limits".

| variable | default | what |
|---|---|---|
| INTAKE_IMPORT_MAX_ROWS | 50000 | data rows in one file |
| INTAKE_IMPORT_MAX_COLUMNS | 50 | columns of a row, up to its last filled cell |
| INTAKE_IMPORT_MAX_CELL_CHARS | 1000 | characters in one cell |
| INTAKE_IMPORT_MAX_UNPACKED_MIB | 24 | an XLSX's parts together, unpacked |
| INTAKE_IMPORT_MAX_PART_MIB | 16 | one part of an XLSX (a sheet, the shared strings), unpacked |
| INTAKE_IMPORT_MAX_RATIO | 100 | unpacked : packed size of an XLSX part over 1 MiB |
| INTAKE_IMPORT_MAX_PARTS | 1000 | parts (files) in an XLSX |
| INTAKE_IMPORT_MAX_ERRORS | 1000 | errors listed in the report; past them checking stops |
| SUPPLY_PERIODIC_CHECK_SECONDS | 30 | seconds (0.1 … 3600) between the worker's turns of periodic special needs into demands |
| SUPPLY_DEMAND_CYCLE_DAYS | 1 | days of consumption one demand covers (1 … 366; 篇12 every three days: 3), RULES §2 |
| SUPPLY_OVER_NORM_FACTOR | 3.0 | a line above norm × factor is flagged for review (above 0, ≤ 1000), RULES §6 |
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import ConfigError, Settings, _int, seconds
from services.intake.spreadsheet.policy import MiB, SpreadsheetPolicy


def spreadsheet_policy(settings: Settings) -> SpreadsheetPolicy:
    env, d = settings.extra, SpreadsheetPolicy()
    return SpreadsheetPolicy(
        max_rows=_int(env, "INTAKE_IMPORT_MAX_ROWS", d.max_rows, 1, 1_000_000),
        max_columns=_int(env, "INTAKE_IMPORT_MAX_COLUMNS", d.max_columns, 1, 16_384),
        # csv refuses a field over 131,072 characters whatever this says
        max_cell_chars=_int(env, "INTAKE_IMPORT_MAX_CELL_CHARS", d.max_cell_chars, 1, 100_000),
        max_unpacked_bytes=_int(env, "INTAKE_IMPORT_MAX_UNPACKED_MIB", d.max_unpacked_bytes // MiB,
                                1, 1024) * MiB,
        max_part_bytes=_int(env, "INTAKE_IMPORT_MAX_PART_MIB", d.max_part_bytes // MiB, 1, 1024) * MiB,
        max_ratio=_int(env, "INTAKE_IMPORT_MAX_RATIO", d.max_ratio, 2, 10_000),
        max_parts=_int(env, "INTAKE_IMPORT_MAX_PARTS", d.max_parts, 10, 100_000),
        max_errors=_int(env, "INTAKE_IMPORT_MAX_ERRORS", d.max_errors, 1, 100_000),
    )


def periodic_check_s(settings: Settings) -> float:
    return seconds(settings, "SUPPLY_PERIODIC_CHECK_SECONDS", 30, 0.1, 3600)


@dataclass(frozen=True)
class IntakeConfig:
    """The demand rules' numbers intake reads from the environment (the cut-off is allocation's)."""
    demand_cycle_days: int = 1
    over_norm_factor: float = 3.0


def load_intake_config(settings: Settings) -> IntakeConfig:
    env = settings.extra
    return IntakeConfig(
        demand_cycle_days=_int(env, "SUPPLY_DEMAND_CYCLE_DAYS", 1, 1, 366),
        over_norm_factor=_factor(env, "SUPPLY_OVER_NORM_FACTOR", 3.0, 1000.0),
    )


def _factor(env: dict, name: str, default: float, hi: float) -> float:
    raw = env.get(name, "").strip() or f"{default:g}"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r} / {name} 应为数字") from None
    if not 0 < value <= hi:
        raise ConfigError(f"{name} must be above 0 and at most {hi:g}, got {value:g} "
                          f"/ {name} 应大于 0 且不超过 {hi:g}")
    return value
