"""IntakeService over gRPC: translate messages, call handlers, map answers. No rules here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC

import grpc
from google.protobuf import json_format
from supply.v1 import common_pb2 as common
from supply.v1 import intake_pb2 as pb
from supply.v1 import intake_pb2_grpc as rpc

from services.common.auth import Caller
from services.common.config import Settings
from services.common.db import ping
from services.common.errors import DomainError, InvalidInput, RuleRefused
from services.common.group_commit import GroupCommitter
from services.common.grpc_server import caller, serve, write_fingerprint
from services.common.idempotency import run_idempotent
from services.common.messaging import EventPublisher
from services.common.servicer import WriteServicer
from services.intake import domain as d
from services.intake.bootstrap import build_context
from services.intake.domain.fields import as_date, get, is_blank
from services.intake.entrypoints import proto_map as out
from services.intake.handlers import (
    catalogue,
    demands,
    donations,
    imports,
    requesters,
    requisitions,
    special_needs,
)
from services.intake.handlers.base import IntakeContext
from services.intake.handlers.policy import demand_policy

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_IMPORT_BYTES = d.ImportPolicy().max_bytes
UPDATABLE = ("name", "township", "location", "drop_points", "population", "households",
             "risk_level", "vulnerable", "unit_type", "headcount", "beds")


def _prefixed(prefix: str, fn: Callable):
    """Run fn; InvalidInput fields get `prefix.` in front (field paths relative to the request)."""
    try:
        return fn()
    except InvalidInput as exc:
        raise InvalidInput(f"{prefix}.{exc.field}", exc.message.split(": ", 1)[-1]) from None


OUTPUT_ONLY = ("version", "registered_at", "updated_at")


def _requester_spec(message: pb.Requester, paths: list[str] | None = None) -> dict:
    """A Requester message as the mapping the domain validates (set fields only)."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    for f in OUTPUT_ONLY:
        data.pop(f, None)
    if paths is not None:
        return {p: data.get(p) for p in paths}
    return data


class IntakeServicer(WriteServicer, rpc.IntakeServiceServicer):
    def __init__(self, ctx: IntakeContext, loop: asyncio.AbstractEventLoop | None = None,
                 linger: float = 0.005):
        self.ctx = ctx
        self.committer = GroupCommitter(ctx.uow, loop=loop, linger=linger)

    # ---- requesters
    def RegisterRequester(self, request, context):
        return self._write("RegisterRequester", request, pb.Requester, lambda a, uow: out.requester(
            _prefixed("requester", lambda: requesters.register_requester(self.ctx, uow, a, _requester_spec(request.requester)))))

    def UpdateRequester(self, request, context):
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidInput("update_mask", "name the fields to change, e.g. paths: [\"risk_level\"]")
        for i, path in enumerate(paths):
            if path not in UPDATABLE:
                raise InvalidInput(f"update_mask.paths[{i}]",
                                   f"{path!r} cannot be changed; one of {', '.join(UPDATABLE)}")
        changes = _requester_spec(request.requester, paths)
        return self._write("UpdateRequester", request, pb.Requester, lambda a, uow: out.requester(
            _prefixed("requester", lambda: requesters.update_requester(
                self.ctx, uow, a, request.requester_id, changes, request.expected_version or None))))

    def GetRequester(self, request, context):
        with self.ctx.uow() as uow:
            return out.requester(requesters.read_requester(uow, caller(), request.requester_id))

    def ListRequesters(self, request, context):
        kind = get(request, "kind")
        risk = get(request, "risk_level")
        with self.ctx.uow() as uow:
            page = requesters.list_requesters(
                uow, caller(), township=request.township,
                kind="" if is_blank(kind) else kind.removeprefix("REQUESTER_KIND_").lower(),
                risk_level="" if is_blank(risk) else risk.removeprefix("RISK_LEVEL_").lower(),
                page_size=request.page.page_size, page_token=request.page.page_token)
        return pb.ListRequestersResponse(requesters=[out.requester(r) for r in page.items],
                                         page=_page_info(page))

    # ---- demands
    def _submission(self, actor: Caller, request: pb.SubmitDemandRequest) -> demands.DemandSubmission:
        return demands.DemandSubmission(
            actor=actor, scope=f"{actor.identity}:SubmitDemand",
            idempotency_key=request.idempotency_key, fingerprint=write_fingerprint(request),
            requester_id=request.requester_id, delivery_day=request.delivery_day or None,
            lines=[{"item_code": ln.item_code, "quantity": ln.quantity, "note": ln.note}
                   for ln in request.lines])

    def _submit_many(self, uow, submissions: list[demands.DemandSubmission]) -> list[bytes | Exception]:
        return demands.submit_demands(self.ctx, uow, submissions,
                                lambda demand, policy: out.demand(demand, policy).SerializeToString())

    async def SubmitDemand(self, request, context):
        """The hot path, on the event loop: concurrent submissions are written together by the
        group commit (see submit_demands) without a thread hand-off per call. The answer is the
        serialized Demand stored under the idempotency key, sent as it is."""
        return await self.committer.arun_many(self._submit_many, self._submission(caller(), request))

    def SubmitDemandBatch(self, request, context):
        n = len(request.demands)
        if not 1 <= n <= MAX_BATCH:
            raise InvalidInput("demands", f"1 … {MAX_BATCH} demands per batch, got {n}")
        keys = [x.idempotency_key for x in request.demands]
        for i, k in enumerate(keys):
            if not k:
                raise InvalidInput(f"demands[{i}].idempotency_key", "required for every demand")
            if keys.index(k) != i:
                raise InvalidInput(f"demands[{i}].idempotency_key", f"repeats demands[{keys.index(k)}]")
        return self._write("SubmitDemandBatch", request, pb.SubmitDemandBatchResponse,
                           lambda a, uow: self._batch(a, uow, request))

    def _batch(self, actor: Caller, uow, request) -> pb.SubmitDemandBatchResponse:
        """All demands in one transaction, each under its own idempotency key (the same scope
        as SubmitDemand), so a refused demand does not undo the others and a repeat of one
        returns its first result."""
        answers = self._submit_many(uow, [self._submission(actor, one) for one in request.demands])
        results = []
        for i, (one, answer) in enumerate(zip(request.demands, answers, strict=True)):
            result = pb.SubmitDemandResult(index=i, idempotency_key=one.idempotency_key)
            if isinstance(answer, bytes):
                result.demand.ParseFromString(answer)
            elif isinstance(answer, DomainError):
                result.error.CopyFrom(_error_detail(answer))
            else:
                raise answer
            results.append(result)
        accepted = sum(1 for r in results if r.HasField("demand"))
        return pb.SubmitDemandBatchResponse(results=results, accepted=accepted,
                                            refused=len(results) - accepted)

    def CancelDemand(self, request, context):
        return self._write("CancelDemand", request, pb.Demand, lambda a, uow: out.demand(
            demands.cancel_demand(self.ctx, uow, a, request.demand_id, request.reason),
            demand_policy(self.ctx, uow)))

    def GetDemand(self, request, context):
        with self.ctx.uow() as uow:
            return out.demand(demands.read_demand(uow, caller(), request.demand_id),
                              demand_policy(self.ctx, uow))

    def ListDemands(self, request, context):
        status = get(request, "status")
        flagged = request.flagged if request.HasField("flagged") else None
        day = as_date(request.delivery_day, "delivery_day") if request.delivery_day else None
        with self.ctx.uow() as uow:
            page = demands.list_demands(
                uow, caller(), requester_id=request.requester_id, delivery_day=day,
                status="" if is_blank(status) else status.removeprefix("DEMAND_STATUS_").lower(),
                tier=int(request.tier), flagged=flagged,
                page_size=request.page.page_size, page_token=request.page.page_token)
            policy = demand_policy(self.ctx, uow)
        return pb.ListDemandsResponse(demands=[out.demand(x, policy) for x in page.items],
                                      page=_page_info(page))

    # ---- special needs
    def RegisterSpecialNeed(self, request, context):
        def work(a, uow):
            need, demand = special_needs.register_special_need(
                self.ctx, uow, a, requester_id=request.requester_id,
                name=request.beneficiary.name, phone=request.beneficiary.phone,
                category=get(request, "category"), lines=request.lines,
                period_days=request.period_days, delivery_day=request.delivery_day or None,
                note=request.note)
            return pb.RegisterSpecialNeedResponse(special_need=out.special_need(need.view()),
                                                  demand=out.demand(demand, demand_policy(self.ctx, uow)))
        return self._write("RegisterSpecialNeed", request, pb.RegisterSpecialNeedResponse, work)

    def ListSpecialNeeds(self, request, context):
        category = get(request, "category")
        with self.ctx.uow() as uow:
            page = special_needs.list_special_needs(
                uow, caller(), requester_id=request.requester_id,
                category="" if is_blank(category) else category.removeprefix("SPECIAL_NEED_CATEGORY_").lower(),
                beneficiary=request.beneficiary,
                page_size=request.page.page_size, page_token=request.page.page_token)
        return pb.ListSpecialNeedsResponse(special_needs=[out.special_need(v) for v in page.items],
                                           page=_page_info(page))

    # ---- requisitions
    def FileRequisition(self, request, context):
        return self._write("FileRequisition", request, pb.Requisition, lambda a, uow: out.requisition(
            requisitions.file_requisition(self.ctx, uow, a, unit_id=request.unit_id, lines=request.lines,
                               purpose=request.purpose, headcount_basis=request.headcount_basis,
                               delivery_day=request.delivery_day or None)))

    def ApproveRequisition(self, request, context):
        step = {pb.APPROVAL_STEP_HEAD: "head", pb.APPROVAL_STEP_HQ: "hq"}.get(request.step)
        if step is None:
            raise InvalidInput("step", "APPROVAL_STEP_HEAD (一把手审核) or APPROVAL_STEP_HQ (指挥部审批)")

        def work(a, uow):
            req, demand = requisitions.approve_requisition(self.ctx, uow, a, request.requisition_id, step,
                                                request.reason)
            resp = pb.ApproveRequisitionResponse(requisition=out.requisition(req))
            if demand is not None:
                resp.demand.CopyFrom(out.demand(demand, demand_policy(self.ctx, uow)))
            return resp
        return self._write("ApproveRequisition", request, pb.ApproveRequisitionResponse, work)

    def RejectRequisition(self, request, context):
        return self._write("RejectRequisition", request, pb.Requisition, lambda a, uow: out.requisition(
            requisitions.reject_requisition(self.ctx, uow, a, request.requisition_id, request.reason)))

    def GetRequisition(self, request, context):
        with self.ctx.uow() as uow:
            return out.requisition(requisitions.read_requisition(uow, caller(), request.requisition_id))

    def ListRequisitions(self, request, context):
        statuses = _statuses(request.statuses, pb.RequisitionStatus, "REQUISITION_STATUS_")
        with self.ctx.uow() as uow:
            page = requisitions.list_requisitions(uow, caller(), unit_id=request.unit_id, statuses=statuses,
                                       page_size=request.page.page_size,
                                       page_token=request.page.page_token)
        return pb.ListRequisitionsResponse(requisitions=[out.requisition(r) for r in page.items],
                                           page=_page_info(page))

    # ---- donations
    def RegisterDonation(self, request, context):
        return self._write("RegisterDonation", request, pb.Donation, lambda a, uow: out.donation(
            donations.register_donation(self.ctx, uow, a, donor=request.donor, lines=request.lines,
                                target_requester_id=request.target_requester_id,
                                target_use=request.target_use, note=request.note,
                                received_at=request.received_at.ToDatetime(tzinfo=UTC)
                                if request.HasField("received_at") else None)))

    def InspectDonationLine(self, request, context):
        decision = get(request, "decision")
        medical = request.medical_grade if request.HasField("medical_grade") else None
        return self._write("InspectDonationLine", request, pb.Donation, lambda a, uow: out.donation(
            donations.inspect_donation_line(self.ctx, uow, a, donation_id=request.donation_id,
                                    line_no=request.line_no, decision=decision,
                                    reason=request.reason, medical_grade=medical,
                                    redirect_to=request.redirect_to)))

    def GetDonation(self, request, context):
        with self.ctx.uow() as uow:
            return out.donation(donations.read_donation(uow, caller(), request.donation_id))

    def ListDonations(self, request, context):
        statuses = _statuses(request.statuses, pb.DonationStatus, "DONATION_STATUS_")
        day = as_date(request.received_day, "received_day") if request.received_day else None
        with self.ctx.uow() as uow:
            page = donations.list_donations(uow, caller(), statuses=statuses, received_day=day,
                                    page_size=request.page.page_size,
                                    page_token=request.page.page_token)
        return pb.ListDonationsResponse(donations=[out.donation(x) for x in page.items],
                                        page=_page_info(page))

    def GetDonationSummary(self, request, context):
        day = as_date(request.day, "day") if request.day else \
            self.ctx.donation_policy.local_day(self.ctx.clock.now())
        with self.ctx.uow() as uow:
            return out.donation_summary(donations.donation_summary(self.ctx, uow, caller(), day))

    # ---- spreadsheet import (server streaming: progress, then the report)
    def ImportSpreadsheet(self, request, context):
        if not request.content:
            raise InvalidInput("content", "empty file")
        if len(request.content) > MAX_IMPORT_BYTES:
            raise InvalidInput("content", f"larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split the file")
        fmt = {pb.SPREADSHEET_FORMAT_CSV: "csv", pb.SPREADSHEET_FORMAT_XLSX: "xlsx"}.get(request.format)
        kind = {pb.IMPORT_KIND_REQUESTERS: "requesters", pb.IMPORT_KIND_DEMANDS: "demands"}.get(request.kind)
        if fmt is None:
            raise InvalidInput("format", "SPREADSHEET_FORMAT_CSV or SPREADSHEET_FORMAT_XLSX")
        if kind is None:
            raise InvalidInput("kind", "IMPORT_KIND_REQUESTERS or IMPORT_KIND_DEMANDS")
        yield from _stream_import(self, request, fmt, kind)

    def SummarizeDemands(self, request, context):
        day = as_date(request.delivery_day, "delivery_day")
        with self.ctx.uow() as uow:
            found = demands.summarize_demands(uow, caller(), day)
        status = {s.value: pb.DemandStatus.Value(f"DEMAND_STATUS_{s.value.upper()}") for s in d.DemandStatus}
        return pb.DemandSummary(
            delivery_day=day.isoformat(), demands=found["demands"],
            counts=[pb.DemandCount(top_tier=c["top_tier"], township=c["township"], status=status[c["status"]],
                                   demands=c["demands"], flagged=int(c["flagged"] or 0)) for c in found["counts"]],
            flagged=[pb.FlaggedDemand(demand_id=f["id"], requester_id=f["requester_id"], township=f["township"],
                                      top_tier=f["top_tier"]) for f in found["flagged"]])

    # ---- the catalogue
    def ListCatalogueItems(self, request, context):
        if len(request.query) > 100:
            raise InvalidInput("query", "at most 100 characters")
        items = catalogue.catalogue_items(self.ctx.catalogue, request.query, request.essential_only)
        groups = self.ctx.catalogue.groups
        return pb.ListCatalogueItemsResponse(version=self.ctx.catalogue.version, items=[
            pb.CatalogueItem(item_code=i.code, name_zh=i.name_zh, name_en=i.name_en, unit=i.unit,
                             group=i.group, group_name_zh=groups[i.group].name_zh,
                             group_name_en=groups[i.group].name_en, essential=i.essential,
                             special_need=i.special_need, package=i.is_package,
                             per_capita_daily=i.per_capita_daily) for i in items])


def _statuses(values, enum, prefix: str) -> list[str]:
    """Repeated status enum values as the domain's names ("REGISTERED" → "registered")."""
    names = []
    for i, v in enumerate(values):
        if v == 0 or v not in enum.values():
            raise InvalidInput(f"statuses[{i}]", f"one of {', '.join(enum.keys()[1:])}, got {v}")
        names.append(enum.Name(v).removeprefix(prefix).lower())
    return names


def _stream_import(servicer: IntakeServicer, request, fmt: str, kind: str):
    """Run the import in a thread and stream its progress; the last message holds the report."""
    import queue
    import threading

    updates: queue.Queue = queue.Queue()
    phases = {"parsing": pb.IMPORT_PHASE_PARSING, "validating": pb.IMPORT_PHASE_VALIDATING}
    actor = caller()
    box: dict = {}

    def work(uow):
        report = imports.import_spreadsheet(
            servicer.ctx, uow, actor, content=request.content, fmt=fmt, kind=kind,
            all_or_nothing=request.all_or_nothing,
            progress=lambda phase, done, total: updates.put(pb.ImportProgress(
                phase=phases[phase], rows_done=done, rows_total=total)))
        updates.put(pb.ImportProgress(phase=pb.IMPORT_PHASE_WRITING, rows_done=report.rows_total,
                                      rows_total=report.rows_total))
        # the answer stays small: at most max_errors listed (+1: the parser's "more than" line)
        limit = servicer.ctx.spreadsheet_policy.max_errors
        shown = report.errors if len(report.errors) <= limit + 1 else report.errors[:limit]
        errors = [pb.RowError(row=r, column=c, reason=m, code=code) for r, c, m, code in shown]
        if len(shown) < len(report.errors):
            rest = len(report.errors) - limit
            errors.append(pb.RowError(reason=f"……另有{rest}个错误未列出 / … {rest} more errors not listed",
                                      code="INVALID_ARGUMENT"))
        return pb.ImportReport(
            rows_total=report.rows_total, rows_accepted=report.rows_accepted,
            rows_rejected=len({e[0] for e in report.errors}), errors=errors,
            committed=report.applied, warnings=list(report.warnings), ids=list(report.created_ids),
        ).SerializeToString()

    def run():
        try:
            box["report"] = pb.ImportReport.FromString(run_idempotent(
                servicer.ctx.uow(), f"{actor.identity}:ImportSpreadsheet", request.idempotency_key,
                write_fingerprint(request), work))
        except BaseException as exc:  # handed to the RPC thread, which maps it
            box["error"] = exc
        updates.put(None)

    threading.Thread(target=run, name="import", daemon=True).start()
    while (msg := updates.get()) is not None:
        yield msg
    if "error" in box:
        raise box["error"]
    report = box["report"]
    yield pb.ImportProgress(phase=pb.IMPORT_PHASE_DONE, rows_done=report.rows_total,
                            rows_total=report.rows_total, report=report)


def _page_info(page) -> common.PageInfo:
    return common.PageInfo(next_page_token=page.next_page_token, total=page.total)


def _error_detail(exc: DomainError) -> common.ErrorDetail:
    if isinstance(exc, InvalidInput):
        return common.ErrorDetail(code="INVALID_ARGUMENT", field=exc.field, message=exc.message)
    if isinstance(exc, RuleRefused):
        return common.ErrorDetail(code="FAILED_PRECONDITION", rule_code=exc.rule,
                                  field=getattr(exc, "field", "") or "", message=exc.message)
    code = {"NotFound": "NOT_FOUND", "Conflict": "ALREADY_EXISTS",
            "PermissionDenied": "PERMISSION_DENIED"}.get(type(exc).__name__, "UNKNOWN")
    field = "idempotency_key" if code == "ALREADY_EXISTS" else ""
    return common.ErrorDetail(code=code, field=field, message=exc.message)


def run(settings: Settings) -> None:
    ctx = build_context(settings, pool_size=20, checkpoint_every=0.2)  # off the write path
    publisher = EventPublisher(settings.amqp_url)

    def register(server: grpc.aio.Server) -> list[str]:
        servicer = IntakeServicer(ctx, asyncio.get_running_loop(), settings.group_commit_linger)
        rpc.add_IntakeServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["IntakeService"].full_name]

    serve(settings, register, {"database": lambda: ping(ctx.engine), "broker": publisher.ping},
          on_stop=publisher.close)
