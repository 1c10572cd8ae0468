"""AllocationService over gRPC: translate messages, call handlers, map answers. No rules here."""

from __future__ import annotations

import logging

import grpc
from supply.v1 import allocation_pb2 as pb
from supply.v1 import allocation_pb2_grpc as rpc

from services.allocation.adapters.stock import StockUnavailable
from services.allocation.bootstrap import build_context, grpc_stock_source
from services.allocation.domain.county_policy import EDITABLE
from services.allocation.domain.plan_state import PlanTrigger
from services.allocation.entrypoints import proto_map as out
from services.allocation.handlers import base, explain, forecast, plans, policy
from services.common.config import Settings
from services.common.days import parse_day
from services.common.db import ping
from services.common.errors import InvalidInput
from services.common.grpc_client import open_channel
from services.common.grpc_server import caller, serve
from services.common.logs import correlation_id
from services.common.messaging import EventPublisher
from services.common.servicer import WriteServicer

log = logging.getLogger(__name__)


def _policy_changes(request: pb.SetPolicyRequest) -> dict:
    paths = list(request.update_mask.paths)
    if not paths:
        raise InvalidInput("update_mask", f"name the fields to change, e.g. paths: [\"cutoff\"]; "
                                          f"editable: {', '.join(EDITABLE)}")
    p = request.policy
    changes: dict = {}
    for path in paths:
        if path not in EDITABLE:
            raise InvalidInput("update_mask", f"{path!r} is not an editable policy field; one of "
                                              f"{', '.join(EDITABLE)}")
        if path in ("tier_order", "below_reserve_tiers"):
            changes[path] = [int(t) for t in getattr(p, path)]
        elif path in ("reserve_days", "reserve_floors"):
            changes[path] = dict(getattr(p, path))
        else:
            changes[path] = getattr(p, path)
    return changes


class AllocationServicer(WriteServicer, rpc.AllocationServiceServicer):
    def __init__(self, ctx: base.AllocationContext, settings: Settings | None = None):
        self.ctx = ctx
        self.settings = settings  # where the reports process is (GetDailyReport)
        self.reports: rpc.AllocationServiceStub | None = None

    # ---- plans
    def RunAllocation(self, request, context):
        actor = caller()
        actor.require(*base.PLAN_ROLES)
        asked_day = parse_day(request.delivery_day, "delivery_day")
        page_size = request.lines_page.page_size
        if not 0 <= page_size <= base.MAX_LINES_PAGE:
            raise InvalidInput("lines_page.page_size", f"must be 0 … {base.MAX_LINES_PAGE}")
        if not request.dry_run:
            if not request.idempotency_key.strip():
                raise InvalidInput("idempotency_key", "required unless dry_run (any unique string, "
                                                      "≤ 200 chars)")
            prior = self._answered("RunAllocation", request)  # before the slow part
            if prior is not None:
                return pb.PlanPage.FromString(prior)
        day = plans.planning_day(self.ctx, asked_day)
        plans.check_can_run(self.ctx, day, request.dry_run)
        try:
            draft = plans.draft_plan(self.ctx, day)
        except StockUnavailable as exc:
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details(f"stock snapshot unavailable, nothing stored; try again: {exc} "
                                f"/ 暂时无法读取库存，请稍后重试")
            return pb.PlanPage()
        if request.dry_run:
            return out.plan_page(plans.dry_run_view(self.ctx, draft, page_size))
        return self._write("RunAllocation", request, pb.PlanPage, lambda a, uow: out.plan_page(
            plans.save_plan(self.ctx, uow, a, draft, PlanTrigger.MANUAL, page_size)))

    def GetPlan(self, request, context):
        requester_id = plans.plan_reader(caller(), request.requester_id)
        day = parse_day(request.delivery_day, "delivery_day")
        with self.ctx.uow() as uow:
            plan_id = request.plan_id
            if not plan_id:
                if day is None:
                    raise InvalidInput("plan_id", "give plan_id, or delivery_day for the day's "
                                                  "latest version")
                plan_id = plans.latest_plan_id(uow, day)
            view = plans.get_plan(uow, plan_id, request.lines_page.page_size,
                                  request.lines_page.page_token, requester_id)
        return out.plan_page(view)

    def ListPlans(self, request, context):
        caller().require(*base.PLAN_READ_ROLES)
        day = parse_day(request.delivery_day, "delivery_day")
        if day is None:
            raise InvalidInput("delivery_day", "required")
        with self.ctx.uow() as uow:
            versions = plans.list_plans(uow, day)
        return pb.ListPlansResponse(plans=[out.plan(x, d) for x, d in versions])

    def ApprovePlan(self, request, context):
        return self._write("ApprovePlan", request, pb.Plan, lambda a, uow: out.header(
            plans.approve_plan(self.ctx, uow, a, request.plan_id)))

    def RejectPlan(self, request, context):
        return self._write("RejectPlan", request, pb.Plan, lambda a, uow: out.header(
            plans.reject_plan(self.ctx, uow, a, request.plan_id, request.reason)))

    def ExplainLine(self, request, context):
        caller().require(*base.PLAN_READ_ROLES)
        with self.ctx.uow() as uow:
            e = explain.explain_line(self.ctx, uow, plan_id=request.plan_id,
                                     plan_line_id=request.plan_line_id,
                                     demand_id=request.demand_id, line_no=request.demand_line_no)
        return out.explanation(e)

    # ---- forecast
    def Forecast(self, request, context):
        caller().require(*base.PLAN_READ_ROLES)
        coefficient = request.coefficient if request.HasField("coefficient") else None
        with self.ctx.uow() as uow:
            view = forecast.forecast(self.ctx, uow, item_code=request.item_code,
                                     requester_id=request.requester_id,
                                     until_day=parse_day(request.until_day, "until_day"),
                                     sample_days=request.sample_days, coefficient=coefficient,
                                     window=request.baseline_window,
                                     holdout=request.baseline_holdout)
        return out.forecast(view)

    # ---- policy
    def GetPolicy(self, request, context):
        caller().require(*base.POLICY_READ_ROLES)
        with self.ctx.uow() as uow:
            return out.policy(policy.current_policy(self.ctx, uow), str(self.ctx.tz))

    def ListPolicyVersions(self, request, context):
        caller().require(*base.POLICY_READ_ROLES)
        with self.ctx.uow() as uow:
            return pb.ListPolicyVersionsResponse(versions=[
                out.policy(p, str(self.ctx.tz)) for p in policy.policy_versions(self.ctx, uow)])

    def SetPolicy(self, request, context):
        changes = _policy_changes(request)
        expected = request.expected_version if request.HasField("expected_version") else None
        return self._write("SetPolicy", request, pb.AllocationPolicy, lambda a, uow: out.policy(
            policy.set_policy(self.ctx, uow, a, changes, expected), str(self.ctx.tz)))

    # ---- daily report and public disclosure: made by the reports process, asked on the caller's behalf
    def GetDailyReport(self, request, context):
        caller().require(*base.REPORT_ROLES)
        if self.settings is None:
            raise RuntimeError("GetDailyReport needs the settings (the reports process's address)")
        metadata = [(k, v) for k, v in context.invocation_metadata()
                    if k in ("authorization", "x-correlation-id")]  # the caller's own token
        if (cid := correlation_id.get("")) and not any(k == "x-correlation-id" for k, _ in metadata):
            metadata.append(("x-correlation-id", cid))
        remaining = context.time_remaining()
        try:
            return self._reports().GetDailyReport(request, metadata=metadata,
                                                  timeout=remaining if remaining else 120)
        except grpc.RpcError as exc:
            log.warning("daily report failed", extra={"error": exc.details()})
            context.set_code(exc.code())
            context.set_details(exc.details() if exc.code() != grpc.StatusCode.UNAVAILABLE else
                                f"reports process ({self.settings.grpc_target('reports')}) unavailable"
                                f" / 日报服务不可用: {exc.details()}")
            return pb.DailyReport()

    def _reports(self) -> rpc.AllocationServiceStub:
        if self.reports is None:
            channel = open_channel(self.settings.grpc_target("reports"), self.settings.grpc_tls,
                                   options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
            self.reports = rpc.AllocationServiceStub(channel)
        return self.reports


def run(settings: Settings) -> None:
    stock = grpc_stock_source(settings)
    ctx = build_context(settings, pool_size=20, stock=stock)
    publisher = EventPublisher(settings.amqp_url)

    def register(server: grpc.aio.Server) -> list[str]:
        rpc.add_AllocationServiceServicer_to_server(AllocationServicer(ctx, settings), server)
        return [pb.DESCRIPTOR.services_by_name["AllocationService"].full_name]

    def stop() -> None:
        publisher.close()
        stock.close()

    serve(settings, register, {"database": lambda: ping(ctx.engine), "broker": publisher.ping},
          on_stop=stop)
