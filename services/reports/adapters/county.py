"""The county as the reports process sees it: the four services' public gRPC APIs, read with the
process's own token (REPORTS_TOKEN)."""

from __future__ import annotations

from datetime import date, datetime, time

from supply.v1 import (
    allocation_pb2,
    allocation_pb2_grpc,
    intake_pb2_grpc,
    logistics_pb2,
    logistics_pb2_grpc,
    market_pb2_grpc,
    monitoring_pb2_grpc,
)

from services.common.catalogue import Catalogue
from services.common.config import Settings
from services.common.grpc_client import open_channel
from services.reports.collect import MAX_MESSAGE, READ_SERVICES, Stubs, bearer, collect_day
from services.reports.domain.facts import DayFacts
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
        # channels of their own (not the process's shared subchannels): while a service is down,
        # the scheduler's reconnection back-off must not fail the GetDailyReport calls it serves
        self._channels = {s: open_channel(settings.grpc_target(s), settings.grpc_tls, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.use_local_subchannel_pool", 1)])
            for s in READ_SERVICES}
        self.stubs = Stubs(intake=intake_pb2_grpc.IntakeServiceStub(self._channels["intake"]),
                           allocation=allocation_pb2_grpc.AllocationServiceStub(self._channels["allocation"]),
                           logistics=logistics_pb2_grpc.LogisticsServiceStub(self._channels["logistics"]),
                           monitoring=monitoring_pb2_grpc.MonitoringServiceStub(self._channels["monitoring"]),
                           market=(market_pb2_grpc.MarketServiceStub(self._channels["market"])
                                   if "market" in self._channels else None))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

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
