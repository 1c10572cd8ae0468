"""Intake's events against the real RabbitMQ, with real processes: api + relay + worker of intake
and the probe worker (a nameko service playing allocation). What intake commits reaches a
nameko @event_handler once, even when the relay dies after publishing; logistics' delivery
results close demands once, even when the worker dies after committing; a bad delivery event
is dead-lettered and does not stop the worker."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select
from supply.v1 import common_pb2, intake_pb2

from services.common.db import make_engine
from services.common.messaging import EventPublisher, make_envelope
from services.common.relay import pending_count
from services.intake.adapters import schema
from tests.support import probe_worker
from tests.support.intake import (
    DELIVERY_QUEUE,
    Intake,
    day,
    make_env,
    migrate,
    queue_idle,
    start_api,
    start_relay,
    start_worker,
    uid,
)
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, start_probe

pb = intake_pb2
SUBSCRIPTIONS = ("intake:demand_registered", "intake:requester_registered", "intake:demand_closed")


class Stack:
    """intake api, relay and worker and the probe, on one SQLite database, for the module.
    Tests that stop or kill a process start it again before they end."""

    def __init__(self, tmp, amqp_url: str):
        self.tmp = tmp
        self.env = make_env(tmp / "var", amqp_url)
        migrate(self.env)
        self.db = make_engine(f"sqlite:///{tmp / 'var' / 'intake.db'}")
        self.probe_path = tmp / "probe.db"
        self.procs: dict[str, ServiceProcess] = {}
        self.procs["probe"] = start_probe(self.env, tmp, self.probe_path, *SUBSCRIPTIONS)
        self.probe_db = make_engine(f"sqlite:///{self.probe_path}")
        self.start("api")
        self.start("relay")
        self.start("worker")
        self.api = Intake(self.env)

    def start(self, kind: str, **extra_env: str) -> ServiceProcess:
        starter = {"api": start_api, "relay": start_relay, "worker": start_worker}[kind]
        self.procs[kind] = proc = starter(self.env, self.tmp, **extra_env)
        return proc

    def stop(self, kind: str) -> int | None:
        return self.procs[kind].stop()

    def close(self) -> None:
        self.api.close()
        for proc in self.procs.values():
            proc.stop()

    # ---- what the probe saw
    def effects(self, event_type: str) -> dict[str, tuple[str, dict]]:
        """Applied events of one type by their subject id (demand_id / requester_id)."""
        t = probe_worker.effects
        with self.probe_db.connect() as conn:
            rows = conn.execute(select(t.c.event_id, t.c.payload)
                                .where(t.c.event_type == event_type)).all()
        out: dict[str, tuple[str, dict]] = {}
        counts: Counter = Counter()
        for event_id, raw in rows:
            payload = json.loads(raw)
            subject = payload.get("demand_id") or payload.get("requester_id")
            counts[subject] += 1
            out[subject] = (event_id, payload)
        assert max(counts.values(), default=1) == 1, f"an event applied twice: {counts}"
        return out

    def effect_count(self, event_type: str, subject: str) -> int:
        t = probe_worker.effects
        with self.probe_db.connect() as conn:
            rows = conn.execute(select(t.c.payload).where(t.c.event_type == event_type)).all()
        return sum(1 for (raw,) in rows if json.loads(raw).get("demand_id") == subject)

    def deliveries(self, event_ids) -> Counter:
        t = probe_worker.deliveries
        with self.probe_db.connect() as conn:
            rows = conn.execute(select(t.c.event_id, func.count()).where(t.c.event_id.in_(list(event_ids)))
                                .group_by(t.c.event_id)).all()
        return Counter({r[0]: r[1] for r in rows})

    # ---- intake's own database
    def dead_letters(self) -> list:
        t = schema.tables["dead_letters"]
        with self.db.connect() as conn:
            return conn.execute(select(t.c.consumer, t.c.event_id, t.c.error)).all()

    def outbox_events(self, routing_key: str, demand_id: str) -> list[dict]:
        t = schema.tables["outbox"]
        with self.db.connect() as conn:
            bodies = conn.execute(select(t.c.body).where(t.c.routing_key == routing_key)).scalars()
            return [b for b in map(json.loads, bodies) if b["payload"].get("demand_id") == demand_id]

    # ---- logistics' side
    def publish_delivery(self, lines: list[dict], envelope: dict | None = None) -> dict:
        envelope = envelope or make_envelope("logistics", "delivery_confirmed",
                                             {"delivery_id": uid("DL"), "lines": lines})
        pub = EventPublisher(self.env["AMQP_URL"])
        try:
            pub.declare(("logistics",))
            pub.publish("logistics.events", "delivery_confirmed", json.dumps(envelope),
                        envelope["event_id"])
        finally:
            pub.close()
        return envelope

    def wait_delivered(self) -> None:
        eventually(lambda: queue_idle(self.env["AMQP_URL"], DELIVERY_QUEUE), timeout=30,
                   interval=0.2, what="delivery queue drained and acknowledged")

    def get(self, demand_id: str) -> intake_pb2.Demand:
        return self.api.GetDemand(pb.GetDemandRequest(demand_id=demand_id))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url):
    s = Stack(tmp_path_factory.mktemp("intake-events"), amqp_url)
    yield s
    s.close()


def received(demand: intake_pb2.Demand, **qty: int) -> list[dict]:
    """Delivery result lines for a demand: item code (with '_' for '-') → received."""
    return [{"demand_id": demand.id, "item_code": code.replace("_", "-"), "received": n}
            for code, n in qty.items()]


# ---- demand_registered reaches the consumer -------------------------------------------
def test_a_demand_reaches_a_nameko_handler_once_with_the_documented_payload(stack):
    village = stack.api.village(risk=common_pb2.RISK_LEVEL_SEALED)
    demand = stack.api.demand(village.id, ("RICE-10KG", 10), ("FORMULA-STAGE1", 2),
                              delivery_day=day(2))
    event_id, payload = eventually(lambda: stack.effects("demand_registered").get(demand.id),
                                   what="demand_registered applied by the probe")
    assert payload["requester_id"] == village.id and payload["delivery_day"] == day(2)
    assert (payload["requester_kind"], payload["risk_level"], payload["origin"]) == (
        "village", "sealed", "direct")
    assert payload["top_tier"] == 3 and payload["township"] == village.township
    assert [(ln["item_code"], ln["quantity"], ln["tier"], ln["tier_name"]) for ln in payload["lines"]] == [
        ("RICE-10KG", 10, 3, "sealed_area"), ("FORMULA-STAGE1", 2, 3, "sealed_area")]
    assert stack.deliveries([event_id]) == {event_id: 1}
    _, registered = eventually(lambda: stack.effects("requester_registered").get(village.id),
                               what="requester_registered applied")
    assert (registered["kind"], registered["version"], registered["drop_points"][0]["id"]) == (
        "village", 1, "DP1")


def test_events_of_a_special_need_carry_no_name_or_phone(stack):
    village = stack.api.village()
    resp = stack.api.RegisterSpecialNeed(pb.RegisterSpecialNeedRequest(
        idempotency_key=uid("k"), requester_id=village.id,
        beneficiary=pb.Beneficiary(name="李秀英", phone="+86 139 8765 4321"),
        category=pb.SPECIAL_NEED_CATEGORY_INFANT_FORMULA,
        lines=[common_pb2.ItemLine(item_code="FORMULA-STAGE1", quantity=4, note="李秀英的孩子")]))
    _, payload = eventually(lambda: stack.effects("demand_registered").get(resp.demand.id),
                            what="the special need's demand applied")
    assert payload["origin"] == "special_need" and payload["origin_ref"] == resp.special_need.id
    assert [(ln["special_need_id"], ln["note"], ln["tier"]) for ln in payload["lines"]] == [
        (resp.special_need.id, "", 2)]
    t = schema.tables["outbox"]
    with stack.db.connect() as conn:
        bodies = conn.execute(select(t.c.body).where(t.c.body.contains(village.id))).scalars().all()
    assert len(bodies) >= 3  # requester_registered, special_need_registered, demand_registered
    assert any("special_need_registered" in b for b in bodies)
    for body in bodies:
        assert "李秀英" not in body and "秀英" not in body and "98765432" not in body.replace(" ", "")


# ---- delivery results from logistics ----------------------------------------------------
def test_delivery_results_close_demands_once(stack):
    village = stack.api.village()
    full = stack.api.demand(village.id, ("RICE-10KG", 10), ("OIL-5L", 2))
    part = stack.api.demand(village.id, ("RICE-10KG", 10), ("OIL-5L", 2))
    stack.publish_delivery(received(full, RICE_10KG=10, OIL_5L=2))
    envelope = stack.publish_delivery(received(part, RICE_10KG=6))

    done = eventually(lambda: (d := stack.get(full.id)).status == pb.DEMAND_STATUS_FULFILLED and d,
                      what="full delivery closes the demand")
    assert [ln.delivered for ln in done.lines] == [10, 2] and not done.carry_over_demand_id
    partly = eventually(lambda: (d := stack.get(part.id)).status == pb.DEMAND_STATUS_PARTLY_FULFILLED
                        and d, what="part delivery closes the demand")
    assert [ln.delivered for ln in partly.lines] == [6, 0]
    carry = stack.get(partly.carry_over_demand_id)
    assert (carry.origin, carry.origin_ref, carry.status) == (
        pb.DEMAND_ORIGIN_CARRY_OVER, part.id, pb.DEMAND_STATUS_OPEN)
    assert [(ln.item_code, ln.quantity) for ln in carry.lines] == [("RICE-10KG", 4), ("OIL-5L", 2)]
    assert carry.delivery_day > part.delivery_day
    stack.wait_delivered()
    demands_before = stack.api.list_demands(requester_id=village.id)
    assert len(demands_before) == 3

    stack.publish_delivery([], envelope=envelope)  # the same event again
    stack.publish_delivery(received(part, RICE_10KG=10, OIL_5L=2))  # a new event, demand closed
    stack.wait_delivered()
    assert stack.get(part.id) == partly
    assert stack.api.list_demands(requester_id=village.id) == demands_before
    assert len(stack.outbox_events("demand_closed", part.id)) == 1
    closed = eventually(lambda: stack.effects("demand_closed").get(part.id), what="demand_closed")
    assert closed[1]["status"] == "partly_fulfilled"
    assert closed[1]["carry_over_demand_id"] == carry.id


def test_a_bad_delivery_event_is_dead_lettered_and_the_worker_goes_on(stack):
    village = stack.api.village()
    kept = stack.api.demand(village.id, ("RICE-10KG", 10))
    good = stack.api.demand(village.id, ("OIL-5L", 3))
    unknown = stack.publish_delivery(received(kept, RICE_10KG=10) + [
        {"demand_id": "D-does-not-exist", "item_code": "RICE-10KG", "received": 1}])
    broken = stack.publish_delivery([{"demand_id": kept.id, "item_code": "RICE-10KG"}])  # no received
    stack.publish_delivery(received(good, OIL_5L=3))

    eventually(lambda: stack.get(good.id).status == pb.DEMAND_STATUS_FULFILLED,
               what="the good event after the bad ones is applied")
    letters = eventually(lambda: len(rows := stack.dead_letters()) >= 2 and rows,
                         what="both bad events dead-lettered")
    by_event = {r.event_id: r for r in letters}
    assert by_event[unknown["event_id"]].consumer == "intake.on_delivery_confirmed"
    assert "NotFound" in by_event[unknown["event_id"]].error
    assert "D-does-not-exist" in by_event[unknown["event_id"]].error
    assert "InvalidInput" in by_event[broken["event_id"]].error
    assert "received are required" in by_event[broken["event_id"]].error
    assert stack.get(kept.id).status == pb.DEMAND_STATUS_OPEN  # nothing of the bad event applied
    assert stack.procs["worker"].alive()


def test_worker_killed_after_commit_closes_the_demand_once(stack):
    village = stack.api.village()
    demand = stack.api.demand(village.id, ("RICE-10KG", 10), ("OIL-5L", 2))
    stack.wait_delivered()
    assert stack.stop("worker") == 0
    crashing = stack.start("worker", SUPPLY_FAILPOINTS="worker_exit_after_commit")
    envelope = stack.publish_delivery(received(demand, RICE_10KG=4))
    assert crashing.wait_exit(timeout=30) == 75, crashing.log()[-3000:]
    crashing.stop()
    assert stack.get(demand.id).status == pb.DEMAND_STATUS_PARTLY_FULFILLED  # committed first

    stack.start("worker")
    stack.wait_delivered()  # the unacknowledged event came back and was acknowledged
    carry = [d for d in stack.api.list_demands(requester_id=village.id)
             if d.origin == pb.DEMAND_ORIGIN_CARRY_OVER]
    assert len(carry) == 1 and carry[0].id == stack.get(demand.id).carry_over_demand_id
    assert [(ln.item_code, ln.quantity) for ln in carry[0].lines] == [("RICE-10KG", 6), ("OIL-5L", 2)]
    assert len(stack.outbox_events("demand_closed", demand.id)) == 1
    t = schema.tables["processed_events"]
    with stack.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t)
                            .where(t.c.event_id == envelope["event_id"])).scalar_one() == 1
    eventually(lambda: stack.effect_count("demand_closed", demand.id) == 1, what="demand_closed")


# ---- the relay dies after publishing -----------------------------------------------------
def test_relay_killed_after_publishing_publishes_again_and_each_demand_is_applied_once(stack):
    assert stack.stop("relay") == 0
    village = stack.api.village()
    demands = [stack.api.demand(village.id, ("RICE-10KG", 1 + i)) for i in range(20)]
    ids = {d.id for d in demands}
    stack.procs["api"].kill()
    try:
        _relay_crash_and_recovery(stack, ids)
    finally:
        stack.start("api")


def _relay_crash_and_recovery(stack: Stack, ids: set[str]) -> None:
    outbox = schema.tables["outbox"]
    assert pending_count(stack.db, outbox) >= 21  # the requester and its 20 demands

    crashing = start_relay(stack.env, stack.tmp, SUPPLY_FAILPOINTS="relay_after_publish")
    assert crashing.wait_exit(timeout=30) == 75, crashing.log()[-3000:]
    crashing.stop()
    assert pending_count(stack.db, outbox) >= 21  # published but not marked
    stack.start("relay")
    eventually(lambda: pending_count(stack.db, outbox) == 0, what="outbox drained")

    applied = eventually(lambda: ids <= stack.effects("demand_registered").keys()
                         and stack.effects("demand_registered"), what="20 demands applied")
    event_ids = [applied[i][0] for i in ids]
    deliveries = eventually(lambda: sum((c := stack.deliveries(event_ids)).values()) > 20 and c,
                            what="a duplicate delivery")
    assert set(deliveries) == set(event_ids)
    assert any(n >= 2 for n in deliveries.values())
    assert all(stack.effect_count("demand_registered", i) == 1 for i in ids)


def test_relay_blocked_when_told_to_stop_leaves_within_its_grace_says_where_and_loses_nothing(stack):
    assert stack.stop("relay") == 0
    village = stack.api.village()
    demand = stack.api.demand(village.id, ("RICE-10KG", 2))
    blocked = stack.start("relay", SUPPLY_FAILPOINTS="hang:relay_after_publish",
                          SUPPLY_RELAY_STOP_GRACE_S="2")
    try:
        # published, then stuck before marking: the state of a relay whose broker or database stops answering
        eventually(lambda: demand.id in stack.effects("demand_registered"), what="event delivered")
        assert pending_count(stack.db, schema.tables["outbox"]) >= 1
        assert blocked.stop(timeout=15) == 0
        log = blocked.log()
        assert "relay did not stop within 2 s" in log, log[-3000:]
        assert "failpoint" in log  # the stack shows where it was blocked
    finally:
        stack.start("relay")
    eventually(lambda: pending_count(stack.db, schema.tables["outbox"]) == 0, what="outbox drained")
    assert stack.effect_count("demand_registered", demand.id) == 1
