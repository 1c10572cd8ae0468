"""One cut-off (issue #15, item 4): HQ changes it in allocation's policy (SetPolicy) and intake
closes demands by it, through real processes and the real RabbitMQ: intake's api and worker,
allocation's worker, relay and api, on a simulated county clock at 10:00."""

from __future__ import annotations

from datetime import UTC

import grpc
import pytest
from google.protobuf import field_mask_pb2
from supply.v1 import allocation_pb2, allocation_pb2_grpc
from supply.v1 import intake_pb2 as pb

from services.common.config import load_settings
from services.common.migrate import upgrade
from tests.support.infra import queue_consumers
from tests.support.intake import (
    COUNTY_TZ,
    HQ,
    Intake,
    auth,
    key,
    make_env,
    migrate,
    start_api,
    start_worker,
)
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess

DAY = "2026-12-10"
POLICY_QUEUE = "evt-allocation-policy_changed--intake.on_policy_changed"


@pytest.fixture
def county(tmp_path, amqp_url):
    """intake and allocation on a county clock reading 10:00 on DAY: before the 11:00 cut-off.
    The cut-off timer is slowed down: no logistics answers here to make the day's plan."""
    env = make_env(tmp_path / "var", amqp_url, SUPPLY_CLOCK=f"sim:{DAY}T10:00:00+08:00",
                   SUPPLY_ALLOCATION_TICK_SECONDS="3600")
    migrate(env)
    upgrade("allocation", load_settings("allocation", env).database_url)
    procs = [start_worker(env, tmp_path)]
    eventually(lambda: queue_consumers(amqp_url, POLICY_QUEUE) > 0, timeout=30, interval=0.2,
               what="intake consuming policy_changed")
    procs.append(start_api(env, tmp_path))
    procs += [ServiceProcess("allocation", kind, env, tmp_path).start() for kind in ("worker", "relay")]
    allocation = ServiceProcess("allocation", "api", env, tmp_path).start()
    procs.append(allocation)
    allocation.wait_healthy(f"127.0.0.1:{env['ALLOCATION_GRPC_PORT']}")
    channel = grpc.insecure_channel(f"127.0.0.1:{env['ALLOCATION_GRPC_PORT']}")
    intake = Intake(env)
    yield intake, allocation_pb2_grpc.AllocationServiceStub(channel)
    intake.close()
    channel.close()
    for proc in reversed(procs):
        proc.stop()


def local(ts) -> str:
    return ts.ToDatetime(tzinfo=UTC).astimezone(COUNTY_TZ).strftime("%Y-%m-%d %H:%M")


def test_hq_moves_the_cut_off_earlier_and_intake_closes_demands_by_it(county):
    intake, allocation = county
    village = intake.village()
    early = intake.demand(village.id, ("RICE-10KG", 3), delivery_day=DAY)
    assert (early.delivery_day, early.rolled_over, local(early.cutoff_at)) == (
        DAY, False, f"{DAY} 11:00")

    current = allocation.GetPolicy(allocation_pb2.GetPolicyRequest(), metadata=auth(HQ), timeout=20)
    allocation.SetPolicy(allocation_pb2.SetPolicyRequest(
        idempotency_key=key(), policy=allocation_pb2.AllocationPolicy(cutoff="09:00"),
        update_mask=field_mask_pb2.FieldMask(paths=["cutoff"]),
        expected_version=current.version), metadata=auth(HQ), timeout=20)

    def early_closes_at_nine() -> bool:
        demand = intake.GetDemand(pb.GetDemandRequest(demand_id=early.id))
        return local(demand.cutoff_at) == f"{DAY} 09:00"

    eventually(early_closes_at_nine, timeout=30, interval=0.2, what="intake applying policy_changed")

    with pytest.raises(grpc.RpcError) as info:
        intake.CancelDemand(pb.CancelDemandRequest(idempotency_key=key(), demand_id=early.id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details().startswith("[CUTOFF_PASSED]"), info.value.details()

    late = intake.demand(village.id, ("RICE-10KG", 3), delivery_day=DAY)  # 10:00, before the old 11:00
    assert (late.delivery_day, late.requested_day, late.rolled_over) == ("2026-12-11", DAY, True)
    assert [n.code for n in late.notices] == ["ROLLED_OVER"]
    assert "09:00" in late.notices[0].en and "09:00" in late.notices[0].zh
