"""Trip building with PyVRP: capacity, cold chain, depots, windows, loading hours, staffing.

Instances are small and the solver is capped by iterations as well as time, so each test runs
well under two seconds and repeats exactly.
"""

import random
from collections import Counter
from datetime import time, timedelta

from services.logistics.domain.model import Depot, DropPoint, TimeSlot, Vehicle
from services.logistics.domain.policy import TripPolicy
from services.logistics.domain.trip_building import assemble, build_trips
from services.logistics.domain.trips import PickLine, PickList
from tests.unit.logistics.logistics_support import CAT, TODAY

POLICY = TripPolicy(time_limit_s=1.5, fallback_time_limit_s=1.5, max_iterations=400, seed=3)
D1 = Depot("D1", "城关仓", 30.00, 120.00, time(6, 0), time(12, 0))
D2 = Depot("D2", "东乡仓", 30.20, 120.25, time(6, 0), time(12, 0))


def drops(n, seed=1, **kw):
    rng = random.Random(seed)
    return [DropPoint(f"P{i:02d}", f"V{i:02d}", 30.0 + rng.uniform(-0.1, 0.15),
                      120.0 + rng.uniform(-0.1, 0.2), households=kw.get("households", 40))
            for i in range(n)]


def truck(vid, depot="D1", kg=1500, litres=8000, cold=False, slots=()):
    return Vehicle(vid, f"浙A-通{vid}", kg, litres, cold, depot, f"司机{vid}", f"押运{vid}", slots)


def lines(dp, **items):
    return tuple(PickLine(f"PL-{dp.id}-{code}", code, f"LOT-{code}", q) for code, q in items.items())


def plan(pick_lists, points, vehicles, depots=(D1, D2), policy=POLICY, staff=None):
    return build_trips(pick_lists, depots=depots, vehicles=vehicles, drop_points=points,
                       catalogue=CAT, delivery_day=TODAY, policy=policy, delivery_staff=staff)


def shipped(p):
    c = Counter()
    for t in p.trips:
        for _, _, ln in t.manifest():
            c[ln.plan_line_id] += ln.quantity
    return c


def test_capacity_is_respected_and_every_unit_is_on_a_trip():
    pts = drops(20)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 30})) for dp in pts]  # 300 kg each
    p = plan(picks, pts, [truck(f"T{i}") for i in range(5)])
    assert p.unserved == () and p.solver.feasible
    assert shipped(p) == Counter({ln.plan_line_id: 30 for pl in picks for ln in pl.lines})
    for t in p.trips:
        assert t.load_kg <= t.capacity_kg and t.load_l <= t.capacity_l
        assert t.load_kg == sum(ln.quantity * ln.weight_kg for _, _, ln in t.manifest())
    assert len(p.trips) >= 4  # 6 000 kg cannot ride in fewer 1 500 kg trucks
    assert p.total_distance_m == sum(t.distance_m for t in p.trips) > 0


def test_cold_goods_ride_only_in_refrigerated_vehicles():
    pts = drops(8, seed=2)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 10, "PORK-KG": 25, "MED-INSULIN-PEN": 4}))
             for dp in pts]
    p = plan(picks, pts, [truck("A1"), truck("A2"), truck("C1", cold=True, kg=1000)])
    assert p.unserved == ()
    for t in p.trips:
        for _, _, ln in t.manifest():
            if CAT.item(ln.item_code).storage_class in ("chilled", "frozen", "medicine_2_8"):
                assert ln.cold and t.refrigerated, (t.vehicle_id, ln.item_code)
    assert shipped(p)[f"PL-{pts[0].id}-PORK-KG"] == 25


def test_cold_part_without_a_refrigerated_vehicle_is_reported_and_ambient_still_goes():
    pts = drops(3, seed=4)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 5, "PORK-KG": 10})) for dp in pts]
    p = plan(picks, pts, [truck("A1")])
    assert {(u.drop_point_id, u.cold, u.reason_code) for u in p.unserved} == {
        (dp.id, True, "NO_REFRIGERATED_VEHICLE") for dp in pts}
    assert sum(shipped(p).values()) == 15


def test_each_part_rides_with_its_own_depot():
    pts = drops(12, seed=5)
    picks = [PickList("D1" if i % 2 else "D2", dp.id, lines(dp, **{"OIL-5L": 20}))
             for i, dp in enumerate(pts)]
    p = plan(picks, pts, [truck("A1"), truck("A2"), truck("B1", "D2"), truck("B2", "D2")])
    assert p.unserved == ()
    origin = {pl.drop_point_id: pl.depot_id for pl in picks}
    for t in p.trips:
        assert all(origin[s.drop_point_id] == t.depot_id for s in t.stops)


def test_receiving_windows_loading_hours_and_slots():
    early = DropPoint("EARLY", "V1", 30.12, 120.15, time(8, 0), time(9, 0), 20)
    late = DropPoint("LATE", "V2", 30.10, 120.14, time(14, 0), time(15, 0), 20)
    near = DropPoint("NEAR", "V3", 30.01, 120.01, time(10, 0), time(11, 0), 20)
    pts = [early, late, near]
    picks = [PickList("D1", dp.id, lines(dp, **{"FLOUR-5KG": 10})) for dp in pts]
    slot = TimeSlot(time(7, 0), time(17, 0))
    p = plan(picks, pts, [truck("A1", slots=(slot,))])
    assert p.unserved == ()
    (t,) = p.trips
    assert [s.drop_point_id for s in t.stops] == ["EARLY", "NEAR", "LATE"]
    for s in t.stops:
        assert s.window[0] <= s.service_start <= s.window[1]
        assert s.arrive_at <= s.service_start
    assert time(7, 0) <= t.loading_at.time() <= time(12, 0)  # slot ∩ loading hours
    assert t.return_at.time() <= time(17, 0)
    assert t.depart_at - t.loading_at == timedelta(minutes=POLICY.depot_loading_min)


def test_a_window_no_vehicle_can_reach_is_left_unserved_not_broken():
    far = DropPoint("FAR", "V9", 30.6, 120.6, time(8, 0), time(8, 30), 10)  # ~85 km away
    ok = DropPoint("OK", "V1", 30.02, 120.02, time(8, 0), time(18, 0), 10)
    picks = [PickList("D1", dp.id, lines(dp, **{"SOAP-BAR": 10})) for dp in (far, ok)]
    p = plan(picks, [far, ok], [truck("A1", slots=(TimeSlot(time(7, 30), time(18, 0)),))])
    assert p.solver.phase == "optional"
    assert [(u.drop_point_id, u.reason_code) for u in p.unserved] == [("FAR", "NOT_ROUTED")]
    assert [s.drop_point_id for t in p.trips for s in t.stops] == ["OK"]


def test_a_fleet_too_small_serves_what_it_can_and_reports_the_rest():
    pts = drops(10, seed=6)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 50})) for dp in pts]  # 500 kg each
    p = plan(picks, pts, [truck("A1"), truck("A2")])  # 3 000 kg for 5 000 kg
    assert p.solver.phase == "optional"
    assert len(p.unserved) >= 4 and all(u.reason_code == "NOT_ROUTED" for u in p.unserved)
    assert all(t.load_kg <= t.capacity_kg for t in p.trips)
    assert sum(shipped(p).values()) + sum(ln.quantity for u in p.unserved for ln in u.lines) == 500


def test_a_delivery_bigger_than_any_vehicle_is_split_across_trips():
    (dp,) = drops(1, seed=7)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 400}))]  # 4 000 kg
    p = plan(picks, [dp], [truck(f"T{i}") for i in range(3)])
    assert p.unserved == () and len(p.trips) == 3
    assert sum(shipped(p).values()) == 400
    assert all(t.load_kg <= 1500 for t in p.trips)


def test_a_vehicle_with_two_slots_makes_two_trips():
    pts = drops(6, seed=8)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 40})) for dp in pts]  # 2 400 kg
    slots = (TimeSlot(time(7, 0), time(11, 30)), TimeSlot(time(11, 30), time(17, 0)))
    p = plan(picks, pts, [truck("A1", slots=slots)])
    assert p.unserved == ()
    assert sorted(t.trip_id for t in p.trips) == ["20261128-A1-1", "20261128-A1-2"]
    a, b = sorted(p.trips, key=lambda t: t.depart_at)
    assert a.return_at <= b.loading_at


def test_trip_carries_pass_crew_manifest_and_staffing():
    pts = drops(4, seed=9, households=35)
    picks = [PickList("D1", dp.id, lines(dp, **{"NOODLE-1KG": 20, "MILK-UHT-250": 3})) for dp in pts]
    p = plan(picks, pts, [truck("A1")], staff={pts[0].id: 4, pts[1].id: 1})
    (t,) = p.trips
    assert (t.pass_number, t.driver, t.clerk) == ("浙A-通A1", "司机A1", "押运A1")
    assert len(t.manifest()) == 8 and {s.seq for s in t.stops} == {1, 2, 3, 4}
    st = p.staffing
    assert [ln.required for ln in st.lines] == [4, 4, 4, 4]  # ⌈35 / 10⌉
    assert (st.required, st.available, st.short) == (16, 5, 11)


def test_same_input_same_trips():
    pts = drops(15, seed=10)
    picks = [PickList("D1", dp.id, lines(dp, **{"RICE-10KG": 20, "PORK-KG": 10})) for dp in pts]
    fleet = [truck("A1"), truck("A2"), truck("C1", cold=True)]
    a, b = plan(picks, pts, fleet), plan(picks, pts, fleet)
    assert [(t.vehicle_id, [s.drop_point_id for s in t.stops]) for t in a.trips] == \
        [(t.vehicle_id, [s.drop_point_id for s in t.stops]) for t in b.trips]


def test_a_route_breaking_a_rule_is_never_sent_out():
    from services.logistics.domain.trips import SolverStats, check_route, prepare_instance

    pts = drops(2, seed=11)
    picks = [PickList("D1", pts[0].id, lines(pts[0], **{"PORK-KG": 10})),
             PickList("D1", pts[1].id, lines(pts[1], **{"RICE-10KG": 200}))]  # 2 000 kg
    inst = prepare_instance(picks, depots=[D1], vehicles=[truck("A1", kg=3000), truck("C1", cold=True)],
                            drop_points=pts, catalogue=CAT, delivery_day=TODAY, policy=POLICY)
    ambient = next(i for i, s in enumerate(inst.slots) if not s.refrigerated)
    cold_part = next(i for i, p in enumerate(inst.parts) if p.cold)
    assert any("not refrigerated" in v for v in check_route(inst, ambient, [cold_part]).violations)
    cold_slot = next(i for i, s in enumerate(inst.slots) if s.refrigerated)
    heavy = next(i for i, p in enumerate(inst.parts) if not p.cold)
    assert any("weight" in v for v in check_route(inst, cold_slot, [heavy]).violations)
    p = assemble(inst, [(ambient, [cold_part])], SolverStats("test", 0, 0, False), {})
    assert p.trips == () and {(u.drop_point_id, u.reason_code) for u in p.unserved} == {
        (pts[0].id, "NOT_ROUTED"), (pts[1].id, "NOT_ROUTED")}
