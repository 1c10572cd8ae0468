"""The reports process's settings beyond the platform's (services.common.config), checked at
start so that a typo stops the process with a message that names the variable.

| variable | default | what |
|---|---|---|
| REPORTS_AT | 17:30 | county time the day's report is made (日报) |
| REPORTS_PLAN_APPROVED_BY | 16:30 | county time by which the plan due today must be approved, else `deadline_missed` |
| REPORTS_CATCH_UP_DAYS | 3 | after a scheduler was down at report time, how many past days' reports it still makes (late) when it runs again; 0: none |
| REPORTS_DIR | var/reports | the report files go under `<dir>/<day>/` |
| REPORTS_TICK_S | 5 | seconds (wall clock) between two looks at the county clock |
| REPORTS_TOKEN | first admin token of SUPPLY_AUTH_TOKENS | the token the scheduler reads the four APIs with |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from pathlib import Path

from services.common.config import DEV_TOKEN, ConfigError, Settings, seconds
from services.reports.domain.schedule import Schedule


@dataclass(frozen=True)
class ReportsConfig:
    schedule: Schedule
    out_dir: Path
    tick_s: float
    token: str


def _hhmm(settings: Settings, name: str, default: str) -> time:
    raw = settings.extra.get(name, default).strip()
    try:
        hh, mm = raw.split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise ConfigError(f"{name} must be HH:MM county time, got {raw!r} / 时间格式应为 HH:MM") from None


def _days(settings: Settings, name: str, default: int) -> int:
    raw = settings.extra.get(name, str(default)).strip()
    if not raw.isdigit() or int(raw) > 31:
        raise ConfigError(f"{name} must be a whole number of days 0 … 31, got {raw!r} / 应为 0 至 31 的天数")
    return int(raw)


def service_token(settings: Settings, given: str = "") -> str:
    if given:
        return given
    for tok, (_, role, _) in settings.auth_tokens.items():
        if role == "admin":
            return tok
    return DEV_TOKEN


def load_reports_config(settings: Settings) -> ReportsConfig:
    out = settings.extra.get("REPORTS_DIR", "").strip()
    return ReportsConfig(
        schedule=Schedule(report_at=_hhmm(settings, "REPORTS_AT", "17:30"),
                          plan_approved_by=_hhmm(settings, "REPORTS_PLAN_APPROVED_BY", "16:30"),
                          catch_up_days=_days(settings, "REPORTS_CATCH_UP_DAYS", 3)),
        out_dir=Path(out) if out else settings.var_dir / "reports",
        tick_s=seconds(settings, "REPORTS_TICK_S", 5, 0.05, 600),
        token=service_token(settings, settings.extra.get("REPORTS_TOKEN", "").strip()),
    )
