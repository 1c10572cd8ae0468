"""GetDailyReport, served by the reports process (allocation's API forwards its callers here, so
that allocation does not carry the report's code). Built on each call from the four APIs with
the caller's own token. Registered under supply.v1.AllocationService: the contract is unchanged;
every other method of that service answers UNIMPLEMENTED on this port."""

from __future__ import annotations

import logging

from supply.v1 import allocation_pb2 as pb
from supply.v1 import allocation_pb2_grpc as rpc

from services.common.catalogue import Catalogue
from services.common.clock import Clock
from services.common.config import Settings
from services.common.days import parse_day
from services.common.errors import InvalidInput
from services.common.grpc_server import caller
from services.common.logs import correlation_id
from services.reports import collect, render

log = logging.getLogger(__name__)
REPORT_ROLES = ("hq", "auditor")  # the report reads the other services with the caller's token
REPORT_FORMATS = {pb.REPORT_FORMAT_MARKDOWN: "markdown", pb.REPORT_FORMAT_XLSX: "xlsx",
                  pb.REPORT_FORMAT_DISCLOSURE_HTML: "disclosure_html"}


class DailyReportServicer(rpc.AllocationServiceServicer):
    def __init__(self, settings: Settings, clock: Clock, catalogue: Catalogue):
        self.settings = settings
        self.clock = clock
        self.catalogue = catalogue

    def GetDailyReport(self, request, context):
        caller().require(*REPORT_ROLES)
        fmt = REPORT_FORMATS.get(request.format)
        if fmt is None:
            raise InvalidInput("format", "REPORT_FORMAT_MARKDOWN, _XLSX or _DISCLOSURE_HTML")
        tz = self.settings.timezone
        day = parse_day(request.day, "day") or self.clock.now().astimezone(tz).date()
        token = dict(context.invocation_metadata()).get("authorization", "")
        metadata = [("authorization", token)]  # the caller's own token, not the service's
        if cid := correlation_id.get(""):
            metadata.append(("x-correlation-id", cid))
        try:
            with collect.connect({s: self.settings.grpc_target(s) for s in collect.READ_SERVICES},
                                 self.settings.grpc_tls) as stubs:
                facts = collect.collect_day(day, stubs, metadata=metadata, tz=tz,
                                            catalogue=self.catalogue, now=self.clock.now())
        except collect.CollectError as exc:
            log.warning("daily report failed", extra={"error": str(exc)})
            context.set_code(exc.code)
            context.set_details(f"{exc} / 无法生成日报")
            return pb.DailyReport()
        content, content_type, filename = render.render(facts, fmt)
        total, r = facts.total_fill(), facts.reconciliation
        reply = pb.DailyReport(
            day=day.isoformat(), format=request.format, content=content,
            content_type=content_type, filename=filename, demands=total.demands,
            lines=total.lines, asked=total.asked, delivered=total.delivered,
            fill_rate=total.fill_rate, alerts=len(facts.alerts or ()),
            alerts_available=facts.alerts is not None,
            plan_id=facts.plan.plan_id if facts.plan else "",
            plan_status=pb.PlanStatus.Value(f"PLAN_STATUS_{facts.plan.status.upper()}")
            if facts.plan else pb.PLAN_STATUS_UNSPECIFIED,
            notes=facts.notes,
            tiers=[pb.TierFill(tier=f.tier, demands=f.demands, lines=f.lines, asked=f.asked,
                               delivered=f.delivered, fill_rate=f.fill_rate, allocated=f.allocated)
                   for f in facts.tier_fills()])
        reply.generated_at.FromDatetime(facts.generated_at)
        if r is not None:
            reply.ledger_ok = r.ok
        return reply
