"""The county as the reports process sees it: the four services' public gRPC APIs, read with the
process's own token (REPORTS_TOKEN)."""

from __future__ import annotations

from datetime import date, datetime, time

from supply.v1 import allocation_pb2, logistics_pb2

from services.common.catalogue import Catalogue
from services.common.config import SERVICES, Settings
from services.reports.collect import DayFacts, Stubs, bearer, collect_day, connect
from services.reports.domain.schedule import Policy


def _hhmm(value: str, default: time) -> time:
    if not value:
        return default
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


class GrpcCounty:
    def __init__(self, settings: Settings, token: str, catalogue: Catalogue, timeout: float = 30.0):
        self.settings = settings
        self.metadata = bearer(token)
        self.catalogue = catalogue
        self.timeout = timeout
        self._connection = connect({s: settings.grpc_target(s) for s in SERVICES}, settings.grpc_tls)
        self.stubs: Stubs = self._connection.__enter__()

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def day_facts(self, day: date, now: datetime) -> DayFacts:
        return collect_day(day, self.stubs, metadata=self.metadata, tz=self.settings.timezone,
                           catalogue=self.catalogue, now=now, timeout=self.timeout)

    def policy(self) -> Policy:
        p = self.stubs.allocation.GetPolicy(allocation_pb2.GetPolicyRequest(),
                                            metadata=self.metadata, timeout=self.timeout)
        return Policy(dispatch_deadline=_hhmm(p.dispatch_deadline, time(17, 0)),
                      cutoff_days_before=p.cutoff_days_before)

    def plans(self, day: date) -> list[tuple[str, str]]:
        """(plan id, status) of the day's plan versions."""
        answer = self.stubs.allocation.ListPlans(
            allocation_pb2.ListPlansRequest(delivery_day=day.isoformat()),
            metadata=self.metadata, timeout=self.timeout)
        return [(p.plan_id, allocation_pb2.PlanStatus.Name(p.status).removeprefix("PLAN_STATUS_").lower())
                for p in answer.plans]

    def dispatched_plans(self, day: date) -> set[str]:
        answer = self.stubs.logistics.ListTrips(
            logistics_pb2.ListTripsRequest(delivery_day=day.isoformat()),
            metadata=self.metadata, timeout=self.timeout)
        return {d.plan_id for d in answer.dispatches if d.status == "dispatched"}
