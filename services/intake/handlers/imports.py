"""Spreadsheet import (表格导入): parse the file, validate every row against intake's state, then
apply all rows (or, when told, the good ones)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleRefused,
)
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.handlers.base import IntakeContext, requester
from services.intake.handlers.demands import submit_demand
from services.intake.handlers.requesters import register_requester, update_requester
from services.intake.spreadsheet.parse import parse_spreadsheet
from services.intake.spreadsheet.rows import DemandRow, RequesterRow


@dataclass(frozen=True)
class ImportReport:
    rows_total: int
    rows_accepted: int
    errors: tuple[tuple[int, str, str, str], ...]   # (row, column as in the file, reason, code)
    warnings: tuple[str, ...]
    applied: bool
    created_ids: tuple[str, ...] = ()


# domain field (first path segment) -> the row field whose column the error belongs to
_ROW_FIELD = {"location": "lat", "drop_points": "drop_point", "vulnerable": "elderly_alone",
              "lines": "quantity", "item_code": "item_code", "requester_id": "requester_id"}
_ERROR_ZH = {"INVALID_ARGUMENT": "数据有误", "NOT_FOUND": "未找到", "FAILED_PRECONDITION": "不符合规定",
             "ALREADY_EXISTS": "已存在", "PERMISSION_DENIED": "无权限"}


def _row_error(row: int, exc: Exception, columns: Mapping[str, str]) -> tuple[int, str, str, str]:
    """A domain refusal as a spreadsheet row error: the column as written in the file, a
    bilingual reason, the error code (or the rule code for a rule refusal)."""
    code = {InvalidInput: "INVALID_ARGUMENT", NotFound: "NOT_FOUND", Conflict: "ALREADY_EXISTS",
            PermissionDenied: "PERMISSION_DENIED"}.get(type(exc), "FAILED_PRECONDITION")
    if isinstance(exc, RuleRefused):
        code = exc.rule
    field = getattr(exc, "field", "") or ""
    head = field.split(".")[-1].split("[")[0] if field.startswith("lines") else field.split(".")[0].split("[")[0]
    column = columns.get(_ROW_FIELD.get(head, head), columns.get(head, field))
    reason = exc.message
    if not any("\u4e00" <= ch <= "\u9fff" for ch in reason):
        reason = f"{_ERROR_ZH.get(code, '不符合规定')} / {reason}"
    return (row, column, reason, code)


def import_spreadsheet(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, content: bytes,
                       fmt: str, kind: str, all_or_nothing: bool,
                       progress: Callable[[str, int, int], None] = lambda *a: None) -> ImportReport:
    """Parse, validate every row against intake's state, then apply all (or, when told, the
    good rows). A requester already registered is updated from its row; a row refused by a
    domain rule is reported with its row number and the file's column."""
    actor.require("hq", "village", "grid_worker")
    parsed = parse_spreadsheet(content, fmt, kind, ctx.catalogue, policy=ctx.spreadsheet_policy,
                               progress=lambda done, total: progress("parsing", done, total))
    errors = [(e.row, e.column, e.reason, "INVALID_ARGUMENT") for e in parsed.errors]
    created: list[str] = []
    total = len(parsed.rows)
    cache: dict[str, d.Requester] = {}
    for i, row in enumerate(parsed.rows, start=1):
        savepoint = uow.conn.begin_nested()
        try:
            if isinstance(row, RequesterRow):
                data = _requester_data(row)
                if repo.requesters.get(uow.conn, row.id) is None:
                    created.append(register_requester(ctx, uow, actor, data).id)
                else:
                    changes = {k: v for k, v in data.items() if k not in ("id", "kind")}
                    created.append(update_requester(ctx, uow, actor, row.id, changes, None).id)
            else:
                assert isinstance(row, DemandRow)
                if row.requester_id not in cache:
                    cache[row.requester_id] = requester(uow, row.requester_id)
                demand = submit_demand(ctx, uow, actor, row.requester_id,
                                       [{"item_code": row.item_code, "quantity": row.quantity,
                                         "note": row.note}], row.delivery_day,
                                       origin=d.DemandOrigin.IMPORT, requester_cache=cache)
                created.append(demand.id)
            savepoint.commit()
        except DomainError as exc:
            savepoint.rollback()
            errors.append(_row_error(row.row, exc, parsed.columns))
        if i % 200 == 0 or i == total:
            progress("validating", i, total)
    errors.sort()
    apply = not errors or not all_or_nothing
    if not apply:
        uow.rollback()
        uow.conn.begin()
        created = []
    return ImportReport(rows_total=parsed.rows_total, rows_accepted=len(created),
                        errors=tuple(errors), warnings=tuple(parsed.warnings), applied=apply,
                        created_ids=tuple(created))


def _requester_data(row: RequesterRow) -> dict[str, Any]:
    """A spreadsheet row as a requester spec. A unit row's area columns (risk level, population,
    households, vulnerable counts) mean nothing for a unit and are left out, and the reverse."""
    data: dict[str, Any] = {
        "id": row.id, "name": row.name, "kind": row.kind, "township": row.township,
        "population": row.population, "households": row.households, "risk_level": row.risk_level,
        "headcount": row.headcount, "beds": row.beds,
    }
    if row.lat is not None and row.lon is not None:
        data["location"] = {"lat": row.lat, "lon": row.lon}
    if getattr(row, "drop_point", None):
        data["drop_points"] = [{"id": f"{row.id}-DP1", "name": row.drop_point,
                                "location": {"lat": row.drop_lat, "lon": row.drop_lon}
                                if row.drop_lat is not None else None}]
    vulnerable = {k: getattr(row, k) for k in ("elderly_alone", "disabled", "chronic_patients",
                                               "infants", "pregnant") if hasattr(row, k)}
    if any(vulnerable.values()):
        data["vulnerable"] = vulnerable
    area = row.kind in ("village", "community")
    for f in (("headcount", "beds") if area else ("population", "households", "risk_level", "vulnerable")):
        data.pop(f, None)
    return {k: v for k, v in data.items() if v is not None}
