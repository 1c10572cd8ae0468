"""IntakeService through a real `python -m services.intake api` process, on SQLite and on
PostgreSQL: the public contract of intake.proto (codes, field paths, idempotency, paging,
privacy of special needs, approvals, donations, spreadsheet import), health, reflection and a
clean stop on SIGTERM."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status
from supply.v1 import common_pb2, intake_pb2

from services.common.auth import mint_token
from services.common.config import load_settings
from tests.support.infra import free_port
from tests.support.intake import (
    ADMIN,
    HQ,
    VILLAGE,
    Intake,
    day,
    demand_request,
    key,
    make_env,
    migrate,
    start_api,
    target,
    uid,
    village_spec,
)
from tests.support.polling import eventually
from tests.support.processes import ROOT, ServiceProcess

pb = intake_pb2
SAMPLE_REQUESTERS = ROOT / "simulators/scenarios/samples/requesters.csv"
SEALED = common_pb2.RISK_LEVEL_SEALED
PREVENTION = common_pb2.RISK_LEVEL_PREVENTION


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory, amqp_url, pg_url_factory):
    """One api process per backend for the whole module (tests use their own requester ids)."""
    tmp = tmp_path_factory.mktemp(f"intake-api-{request.param}")
    extra = {"INTAKE_DATABASE_URL": pg_url_factory("intake")} if request.param == "postgresql" else {}
    env = make_env(tmp / "var", amqp_url, **extra)
    migrate(env)
    proc = start_api(env, tmp)
    client = Intake(env)
    yield client
    client.close()
    assert proc.stop() == 0, proc.log()[-3000:]


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory, amqp_url):
    tmp = tmp_path_factory.mktemp("intake-proc")
    env = make_env(tmp / "var", amqp_url)
    migrate(env)
    return env, tmp


# ---- helpers -----------------------------------------------------------------------------
def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if not hasattr(result, "SerializeToString"):  # a stream: errors show while reading it
            list(result)
    return info.value


def details_of(err: grpc.RpcError, kind):
    status = rpc_status.from_call(err)
    out = []
    for any_detail in status.details if status else ():
        msg = kind()
        if any_detail.Unpack(msg):
            out.append(msg)
    return out


def assert_invalid(err: grpc.RpcError, field: str) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert err.details().startswith(f"{field}:"), err.details()
    fields = [v.field for d in details_of(err, error_details_pb2.BadRequest) for v in d.field_violations]
    assert fields == [field], fields


def assert_refused(err: grpc.RpcError, rule: str) -> None:
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, (err.code(), err.details())
    assert err.details().startswith(f"[{rule}]"), err.details()
    assert [i.reason for i in details_of(err, error_details_pb2.ErrorInfo)] == [rule]


def lines(*pairs: tuple[str, int]) -> list[common_pb2.ItemLine]:
    return [common_pb2.ItemLine(item_code=c, quantity=q) for c, q in pairs]


# ---- requesters, demands, tiers ---------------------------------------------------------
def test_registered_requesters_come_back_whole_and_tiers_are_derived(api):
    village = api.village(risk=SEALED)
    assert village.version == 1 and village.risk_level == SEALED
    assert village.drop_points[0].window.start == "08:00"
    assert village.drop_points[0].window.end == "10:30"
    assert api.GetRequester(pb.GetRequesterRequest(requester_id=village.id)) == village
    hospital = api.unit(unit_type=pb.UNIT_TYPE_HOSPITAL)
    assert hospital.kind == pb.REQUESTER_KIND_UNIT and hospital.unit_type == pb.UNIT_TYPE_HOSPITAL
    plain = api.village(risk=PREVENTION)

    frontline = api.demand(hospital.id, ("RICE-10KG", 10))
    sealed = api.demand(village.id, ("RICE-10KG", 10))
    mixed = api.demand(plain.id, ("RICE-10KG", 10), ("FORMULA-STAGE1", 4))

    assert [ln.tier for ln in frontline.lines] == [common_pb2.TIER_FRONTLINE_MEDICAL]
    assert [ln.tier for ln in sealed.lines] == [common_pb2.TIER_SEALED_AREA]
    # an area's ordinary formula stays in its area's tier (a registered need's is tier 2)
    assert [ln.tier for ln in mixed.lines] == [common_pb2.TIER_GENERAL, common_pb2.TIER_GENERAL]
    assert mixed.top_tier == common_pb2.TIER_GENERAL
    assert mixed.status == pb.DEMAND_STATUS_OPEN and mixed.origin == pb.DEMAND_ORIGIN_DIRECT
    assert api.GetDemand(pb.GetDemandRequest(demand_id=mixed.id)) == mixed


def test_submit_demand_is_idempotent_and_a_reused_key_with_another_body_is_refused(api):
    village = api.village()
    req = demand_request(village.id, ("RICE-10KG", 12), ("OIL-5L", 3), delivery_day=day(2))
    first = api.SubmitDemand(req)
    again = api.SubmitDemand(req)
    assert again == first
    assert first.delivery_day == day(2) and not first.rolled_over

    other = demand_request(village.id, ("RICE-10KG", 13), idempotency_key=req.idempotency_key)
    err = rpc_error(lambda: api.SubmitDemand(other))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
    assert "idempotency_key" in err.details()
    assert [d.id for d in api.list_demands(requester_id=village.id)] == [first.id]


def test_list_demands_filters_and_pages(api):
    village = api.village()
    on_day2 = [api.demand(village.id, ("RICE-10KG", 10 + i), delivery_day=day(2)) for i in range(3)]
    on_day3 = [api.RegisterSpecialNeed(pb.RegisterSpecialNeedRequest(
        idempotency_key=key(), requester_id=village.id, delivery_day=day(3),
        beneficiary=pb.Beneficiary(name="王小红", phone="13812345678"),
        category=pb.SPECIAL_NEED_CATEGORY_INFANT_FORMULA, lines=lines(("FORMULA-STAGE1", 2)))).demand,
               api.demand(village.id, ("RICE-10KG", 5000), delivery_day=day(3))]
    all_ids = {d.id for d in on_day2 + on_day3}

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        resp = api.ListDemands(pb.ListDemandsRequest(
            requester_id=village.id, page=common_pb2.PageRequest(page_size=2, page_token=token)))
        assert len(resp.demands) <= 2
        seen += [d.id for d in resp.demands]
        pages += 1
        token = resp.page.next_page_token
        if not token:
            break
    assert pages == 3 and len(seen) == 5 and set(seen) == all_ids

    assert {d.id for d in api.list_demands(requester_id=village.id, delivery_day=day(3))} == \
        {d.id for d in on_day3}
    assert [d.id for d in api.list_demands(requester_id=village.id,
                                           tier=common_pb2.TIER_VULNERABLE)] == [on_day3[0].id]
    flagged = api.list_demands(requester_id=village.id, flagged=True)
    assert [d.id for d in flagged] == [on_day3[1].id] and flagged[0].lines[0].flagged
    assert len(api.list_demands(requester_id=village.id, flagged=False)) == 4

    err = rpc_error(lambda: api.ListDemands(pb.ListDemandsRequest(
        page=common_pb2.PageRequest(page_token="not a token!"))))
    assert_invalid(err, "page.page_token")


def test_list_page_reports_the_total_over_all_pages(api):
    village = api.village()
    for _ in range(3):
        api.demand(village.id, ("RICE-10KG", 10))
    resp = api.ListDemands(pb.ListDemandsRequest(requester_id=village.id,
                                                 page=common_pb2.PageRequest(page_size=2)))
    assert resp.page.total == 3


def test_page_size_over_500_is_invalid(api):
    err = rpc_error(lambda: api.ListDemands(pb.ListDemandsRequest(
        page=common_pb2.PageRequest(page_size=501))))
    assert_invalid(err, "page.page_size")


def test_tier_filter_finds_demands_with_any_line_of_that_tier(api):
    village = api.village(risk=PREVENTION)
    mixed = api.demand(village.id, ("RICE-10KG", 10), ("FORMULA-STAGE1", 2))  # both tier 5
    found = api.list_demands(requester_id=village.id, tier=common_pb2.TIER_GENERAL)
    assert [d.id for d in found] == [mixed.id]


def test_list_demands_is_ordered_by_delivery_day(api):
    village = api.village()
    for offset in range(8, 0, -1):  # latest day first
        api.demand(village.id, ("RICE-10KG", 10), delivery_day=day(offset))
    days = [d.delivery_day for d in api.list_demands(requester_id=village.id)]
    assert days == sorted(days)


def test_cancel_demand(api):
    village = api.village()
    demand = api.demand(village.id, ("RICE-10KG", 10))
    req = pb.CancelDemandRequest(idempotency_key=key(), demand_id=demand.id, reason="已自行采购")
    cancelled = api.CancelDemand(req)
    assert cancelled.status == pb.DEMAND_STATUS_CANCELLED and cancelled.cancel_reason == "已自行采购"
    assert cancelled.HasField("closed_at")
    assert api.CancelDemand(req) == cancelled  # idempotent repeat
    err = rpc_error(lambda: api.CancelDemand(pb.CancelDemandRequest(
        idempotency_key=key(), demand_id=demand.id)))
    assert_refused(err, "DEMAND_NOT_OPEN")
    assert api.GetDemand(pb.GetDemandRequest(demand_id=demand.id)) == cancelled
    assert [d.id for d in api.list_demands(requester_id=village.id,
                                           status=pb.DEMAND_STATUS_CANCELLED)] == [demand.id]
    assert api.list_demands(requester_id=village.id, status=pb.DEMAND_STATUS_OPEN) == []
    err = rpc_error(lambda: api.CancelDemand(pb.CancelDemandRequest(
        idempotency_key=key(), demand_id="D-nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "demand_id" in err.details()


def test_update_requester_with_mask_and_expected_version(api):
    village = api.village(risk=PREVENTION, population=1200)
    change = pb.UpdateRequesterRequest(
        idempotency_key=key(), requester_id=village.id,
        requester=pb.Requester(risk_level=SEALED, population=999_999, name="ignored: not in mask"),
        update_mask=field_mask_pb2.FieldMask(paths=["risk_level"]), expected_version=1)
    updated = api.UpdateRequester(change)
    assert updated.version == 2 and updated.risk_level == SEALED
    assert updated.population == 1200 and updated.name == village.name  # outside the mask
    assert api.demand(village.id, ("RICE-10KG", 10)).lines[0].tier == common_pb2.TIER_SEALED_AREA

    stale = pb.UpdateRequesterRequest(
        idempotency_key=key(), requester_id=village.id, requester=pb.Requester(population=2000),
        update_mask=field_mask_pb2.FieldMask(paths=["population"]), expected_version=1)
    assert_refused(rpc_error(lambda: api.UpdateRequester(stale)), "VERSION_MISMATCH")
    assert api.GetRequester(pb.GetRequesterRequest(requester_id=village.id)) == updated

    no_mask = pb.UpdateRequesterRequest(idempotency_key=key(), requester_id=village.id,
                                        requester=pb.Requester(population=2000))
    assert_invalid(rpc_error(lambda: api.UpdateRequester(no_mask)), "update_mask")
    too_many = pb.UpdateRequesterRequest(
        idempotency_key=key(), requester_id=village.id,
        requester=pb.Requester(households=5000),
        update_mask=field_mask_pb2.FieldMask(paths=["households"]))
    assert_invalid(rpc_error(lambda: api.UpdateRequester(too_many)), "requester.households")
    missing = pb.UpdateRequesterRequest(
        idempotency_key=key(), requester_id="V-nope", requester=pb.Requester(population=5),
        update_mask=field_mask_pb2.FieldMask(paths=["population"]))
    assert rpc_error(lambda: api.UpdateRequester(missing)).code() == grpc.StatusCode.NOT_FOUND
    assert api.GetRequester(pb.GetRequesterRequest(requester_id=village.id)).version == 2


def test_update_mask_with_id_is_invalid(api):
    village = api.village()
    req = pb.UpdateRequesterRequest(idempotency_key=key(), requester_id=village.id,
                                    requester=pb.Requester(),
                                    update_mask=field_mask_pb2.FieldMask(paths=["id"]))
    assert rpc_error(lambda: api.UpdateRequester(req)).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_taken_requester_id_is_already_exists(api):
    village = api.village()
    err = rpc_error(lambda: api.RegisterRequester(pb.RegisterRequesterRequest(
        idempotency_key=key(), requester=village_spec(village.id, population=999))))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and village.id in err.details()
    assert api.GetRequester(pb.GetRequesterRequest(requester_id=village.id)) == village


def test_concurrent_retries_of_one_request_make_one_demand(api):
    village = api.village()
    req = demand_request(village.id, ("RICE-10KG", 7))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: api.SubmitDemand(req), range(16)))
    assert len({a.id for a in answers}) == 1
    assert [d.id for d in api.list_demands(requester_id=village.id)] == [answers[0].id]


def test_concurrent_submissions_grouped_in_one_commit_each_get_their_own_outcome(api):
    """SubmitDemand calls that arrive together are written by one group commit: a refused or
    repeated one must not change the others' answers."""
    village = api.village()
    good = [demand_request(village.id, ("RICE-10KG", 1 + i)) for i in range(24)]
    refused = demand_request(village.id, ("BAIJIU-500ML", 1))
    unknown = demand_request("V-NOBODY", ("RICE-10KG", 1))
    calls = [*good, refused, unknown, good[0], good[1]]  # the last two repeat earlier keys

    def call(req):
        try:
            return api.SubmitDemand(req)
        except grpc.RpcError as exc:
            return exc.code()

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(call, calls))
    placed = answers[:24]
    assert [a.lines[0].quantity for a in placed] == list(range(1, 25))
    assert answers[24:26] == [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND]
    assert answers[26].id == placed[0].id and answers[27].id == placed[1].id
    assert sorted(d.id for d in api.list_demands(requester_id=village.id)) == sorted(a.id for a in placed)


def test_get_requester_without_id_names_requester_id(api):
    assert_invalid(rpc_error(lambda: api.GetRequester(pb.GetRequesterRequest())), "requester_id")


# ---- bad input ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_input_village(api):
    return api.village()


def _batch(n: int, rid: str) -> pb.SubmitDemandBatchRequest:
    return pb.SubmitDemandBatchRequest(idempotency_key=key(), demands=[
        demand_request(rid, ("RICE-10KG", 1)) for _ in range(n)])


def _batch_keys(rid: str, *keys: str) -> pb.SubmitDemandBatchRequest:
    return pb.SubmitDemandBatchRequest(idempotency_key=key(), demands=[
        demand_request(rid, ("RICE-10KG", 1), idempotency_key=k) for k in keys])


def _register(rid: str, change: Callable[[pb.Requester], None] = lambda spec: None
              ) -> pb.RegisterRequesterRequest:
    spec = village_spec(rid)
    change(spec)
    return pb.RegisterRequesterRequest(idempotency_key=key(), requester=spec)


def _bad_window(spec: pb.Requester) -> None:
    spec.drop_points[0].window.end = "07:00"


def _too_many_households(spec: pb.Requester) -> None:
    spec.population, spec.households = 100, 5000


# (case id, call(api, village id), expected code, field / text the message must name, rule)
BAD = [
    ("missing requester_id", lambda a, v: a.SubmitDemand(demand_request("", ("RICE-10KG", 1))),
     "INVALID_ARGUMENT", "requester_id", None),
    ("missing lines", lambda a, v: a.SubmitDemand(demand_request(v)),
     "INVALID_ARGUMENT", "lines", None),
    ("negative quantity", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", -5))),
     "INVALID_ARGUMENT", "lines[0].quantity", None),
    ("zero quantity", lambda a, v: a.SubmitDemand(demand_request(v, ("OIL-5L", 1), ("RICE-10KG", 0))),
     "INVALID_ARGUMENT", "lines[1].quantity", None),
    ("huge quantity", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1_000_001))),
     "INVALID_ARGUMENT", "lines[0].quantity", None),
    ("unknown item", lambda a, v: a.SubmitDemand(demand_request(v, ("UNOBTAINIUM", 1))),
     "INVALID_ARGUMENT", "lines[0].item_code", None),
    ("repeated item", lambda a, v: a.SubmitDemand(demand_request(v, ("OIL-5L", 1), ("OIL-5L", 2))),
     "INVALID_ARGUMENT", "lines[1].item_code", None),
    ("unknown requester", lambda a, v: a.SubmitDemand(demand_request("V-nobody", ("RICE-10KG", 1))),
     "NOT_FOUND", "requester_id", None),
    ("month 13", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1),
                                                            delivery_day="2026-13-01")),
     "INVALID_ARGUMENT", "delivery_day", None),
    ("day in words", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1),
                                                                delivery_day="tomorrow")),
     "INVALID_ARGUMENT", "delivery_day", None),
    ("day in the past", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1),
                                                                   delivery_day=day(-2))),
     "INVALID_ARGUMENT", "delivery_day", None),
    ("day too far ahead", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1),
                                                                     delivery_day=day(32))),
     "INVALID_ARGUMENT", "delivery_day", None),
    ("only non-essential items", lambda a, v: a.SubmitDemand(demand_request(
        v, ("CIGARETTES-CARTON", 2), ("BAIJIU-500ML", 1))),
     "FAILED_PRECONDITION", "lines[0].item_code", "NON_ESSENTIAL"),
    ("missing idempotency key", lambda a, v: a.SubmitDemand(
        demand_request(v, ("RICE-10KG", 1), idempotency_key="")),
     "INVALID_ARGUMENT", "idempotency_key", None),
    ("oversized batch", lambda a, v: a.SubmitDemandBatch(_batch(501, v)),
     "INVALID_ARGUMENT", "demands", None),
    ("empty batch", lambda a, v: a.SubmitDemandBatch(_batch(0, v)),
     "INVALID_ARGUMENT", "demands", None),
    ("batch demand without key", lambda a, v: a.SubmitDemandBatch(_batch_keys(v, "k1", "")),
     "INVALID_ARGUMENT", "demands[1].idempotency_key", None),
    ("batch keys repeat", lambda a, v: a.SubmitDemandBatch(_batch_keys(v, "k1", "k2", "k1")),
     "INVALID_ARGUMENT", "demands[2].idempotency_key", None),
    ("wrong token", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1)),
                                                token="not-a-known-token-0000"),
     "UNAUTHENTICATED", "token", None),
    ("no token", lambda a, v: a.SubmitDemand(demand_request(v, ("RICE-10KG", 1)), token=None),
     "UNAUTHENTICATED", "authorization", None),
    ("village registers a requester", lambda a, v: a.RegisterRequester(_register(f"{v}-X"),
                                                                       token=VILLAGE),
     "PERMISSION_DENIED", "role", None),
    ("drop point window backwards", lambda a, v: a.RegisterRequester(
        _register(f"{v}-W", _bad_window)),
     "INVALID_ARGUMENT", "requester.drop_points[0].window.end", None),
    ("households above population", lambda a, v: a.RegisterRequester(
        _register(f"{v}-H", _too_many_households)),
     "INVALID_ARGUMENT", "requester.households", None),
]


@pytest.mark.parametrize("call,code,field,rule", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_refused_precisely_and_changes_nothing(api, bad_input_village, call, code,
                                                            field, rule):
    v = bad_input_village.id
    before = (len(api.list_demands()), len(api.list_requesters()))
    err = rpc_error(lambda: call(api, v))
    assert err.code() == getattr(grpc.StatusCode, code), (err.code(), err.details())
    if code == "INVALID_ARGUMENT":
        assert_invalid(err, field)
    elif rule:
        assert_refused(err, rule)
        assert field in err.details()
    else:
        assert field in err.details(), err.details()
    assert (len(api.list_demands()), len(api.list_requesters())) == before


# ---- batch -------------------------------------------------------------------------------
def test_batch_of_100_with_one_bad_demand(api):
    villages = [api.village(risk=SEALED), api.village(risk=PREVENTION)]
    demands = [demand_request(villages[i % 2].id, ("RICE-10KG", 10 + i)) for i in range(100)]
    demands[37] = demand_request(villages[1].id, ("OIL-5L", 2), ("RICE-10KG", 0))
    batch = pb.SubmitDemandBatchRequest(idempotency_key=key(), demands=demands)

    resp = api.SubmitDemandBatch(batch)
    assert (resp.accepted, resp.refused) == (99, 1)
    assert [r.index for r in resp.results] == list(range(100))
    bad = resp.results[37]
    assert bad.WhichOneof("outcome") == "error" and bad.idempotency_key == demands[37].idempotency_key
    assert (bad.error.code, bad.error.field) == ("INVALID_ARGUMENT", "lines[1].quantity")
    good = [r.demand for r in resp.results if r.WhichOneof("outcome") == "demand"]
    assert len({d.id for d in good}) == 99
    assert {d.lines[0].tier for d in good} == {common_pb2.TIER_SEALED_AREA, common_pb2.TIER_GENERAL}

    repeat = api.SubmitDemandBatch(batch)
    assert repeat.SerializeToString(deterministic=True) == resp.SerializeToString(deterministic=True)
    single = api.SubmitDemand(demands[5])
    assert single == resp.results[5].demand
    reused = demand_request(villages[1].id, ("OIL-5L", 1), idempotency_key=demands[5].idempotency_key)
    later = api.SubmitDemandBatch(pb.SubmitDemandBatchRequest(idempotency_key=key(), demands=[
        reused, demands[6]]))
    assert (later.accepted, later.refused) == (1, 1)
    assert (later.results[0].error.code, later.results[0].error.field) == (
        "ALREADY_EXISTS", "idempotency_key")
    assert later.results[1].demand == resp.results[6].demand
    stored = sum(len(api.list_demands(requester_id=v.id)) for v in villages)
    assert stored == 99


def test_batch_reports_not_found_and_rules_per_demand(api):
    village = api.village()
    batch = pb.SubmitDemandBatchRequest(idempotency_key=key(), demands=[
        demand_request(village.id, ("RICE-10KG", 1)),
        demand_request("V-nobody", ("RICE-10KG", 1)),
        demand_request(village.id, ("BAIJIU-500ML", 1)),
    ])
    resp = api.SubmitDemandBatch(batch)
    assert (resp.accepted, resp.refused) == (1, 2)
    assert resp.results[1].error.code == "NOT_FOUND"
    assert (resp.results[2].error.code, resp.results[2].error.rule_code,
            resp.results[2].error.field) == ("FAILED_PRECONDITION", "NON_ESSENTIAL", "lines[0].item_code")


# ---- special needs -----------------------------------------------------------------------
def test_special_needs_never_show_the_clear_name_or_phone(api):
    village = api.village()
    name, phone = "张三丰", "138-1234-5678"
    req = pb.RegisterSpecialNeedRequest(
        idempotency_key=key(), requester_id=village.id,
        beneficiary=pb.Beneficiary(name=name, phone=phone),
        category=pb.SPECIAL_NEED_CATEGORY_CHRONIC_MEDICINE,
        lines=lines(("MED-ANTIHYPERTENSIVE", 2)), period_days=30)
    resp = api.RegisterSpecialNeed(req)
    listed = api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(requester_id=village.id))

    for raw in (resp.SerializeToString(), listed.SerializeToString()):
        assert name.encode() not in raw and "三丰".encode() not in raw
        assert b"13812345678" not in raw and b"138-1234" not in raw and b"1234-5678" not in raw
    need = resp.special_need
    # the middle digits appear in no text field (ids and the pseudonym are random hex, which may
    # hold "1234" by chance, so the raw bytes are not searched for them)
    for shown in (need, *listed.special_needs):
        assert "1234" not in shown.masked_phone and "1234" not in shown.masked_name
    assert (need.masked_name, need.masked_phone) == ("张**", "138****5678")
    assert need.beneficiary.startswith("BEN-") and len(need.beneficiary) == 24
    assert [n.id for n in listed.special_needs] == [need.id]
    assert listed.special_needs[0].masked_phone == "138****5678"
    assert resp.demand.origin == pb.DEMAND_ORIGIN_SPECIAL_NEED
    assert resp.demand.origin_ref == need.id
    assert [ln.tier for ln in resp.demand.lines] == [common_pb2.TIER_VULNERABLE]
    assert api.RegisterSpecialNeed(req) == resp

    hospital = api.unit()
    err = rpc_error(lambda: api.RegisterSpecialNeed(pb.RegisterSpecialNeedRequest(
        idempotency_key=key(), requester_id=hospital.id,
        beneficiary=pb.Beneficiary(name=name, phone=phone),
        category=pb.SPECIAL_NEED_CATEGORY_OTHER, lines=lines(("RICE-10KG", 1)))))
    assert_refused(err, "AREA_REQUESTER_ONLY")
    assert name not in err.details() and "13812345678" not in err.details()


# ---- requisitions ------------------------------------------------------------------------
def _file(api, unit_id: str, token: str = ADMIN) -> pb.Requisition:
    return api.FileRequisition(pb.FileRequisitionRequest(
        idempotency_key=key(), unit_id=unit_id, lines=lines(("MASK-N95", 500), ("GOWN-PROTECTIVE", 100)),
        purpose="发热门诊一周用量", headcount_basis=300), token=token)


def _approve(api, req_id: str, step: int, token: str = ADMIN):
    return api.ApproveRequisition(pb.ApproveRequisitionRequest(
        idempotency_key=key(), requisition_id=req_id, step=step), token=token)


def test_requisition_needs_the_head_then_hq(api):
    hospital = api.unit()
    nurse = mint_token(load_settings("intake", api.env).jwt_key, sub="nurse.li", role="unit",
                       scope=hospital.id)
    filed = _file(api, hospital.id, token=nurse)
    assert filed.status == pb.REQUISITION_STATUS_SUBMITTED
    assert filed.pending_step == pb.APPROVAL_STEP_HEAD
    assert_refused(rpc_error(lambda: _approve(api, filed.id, pb.APPROVAL_STEP_HQ, token=HQ)),
                   "HEAD_APPROVAL_REQUIRED")
    err = rpc_error(lambda: _approve(api, filed.id, pb.APPROVAL_STEP_HEAD, token=VILLAGE))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    head = _approve(api, filed.id, pb.APPROVAL_STEP_HEAD)  # admin acts at any step
    assert head.requisition.status == pb.REQUISITION_STATUS_HEAD_APPROVED
    assert not head.HasField("demand")
    assert_refused(rpc_error(lambda: _approve(api, filed.id, pb.APPROVAL_STEP_HEAD)),
                   "ALREADY_HEAD_APPROVED")

    hq = _approve(api, filed.id, pb.APPROVAL_STEP_HQ, token=HQ)
    assert hq.requisition.status == pb.REQUISITION_STATUS_HQ_APPROVED
    assert hq.HasField("demand") and hq.demand.origin == pb.DEMAND_ORIGIN_REQUISITION
    assert hq.demand.origin_ref == filed.id and hq.requisition.demand_id == hq.demand.id
    assert {ln.tier for ln in hq.demand.lines} == {common_pb2.TIER_FRONTLINE_MEDICAL}
    assert api.GetDemand(pb.GetDemandRequest(demand_id=hq.demand.id)) == hq.demand
    got = api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id))
    assert [(a.step, a.actor_id) for a in got.approvals] == [
        (pb.APPROVAL_STEP_SUBMIT, "nurse.li"), (pb.APPROVAL_STEP_HEAD, "tester"),
        (pb.APPROVAL_STEP_HQ, "hq-officer")]
    assert got.pending_step == pb.APPROVAL_STEP_UNSPECIFIED
    assert_refused(rpc_error(lambda: _approve(api, filed.id, pb.APPROVAL_STEP_HQ, token=HQ)),
                   "REQUISITION_CLOSED")


def test_requisition_rejection_needs_a_reason_and_closes_it(api):
    hospital = api.unit()
    filed = _file(api, hospital.id, token=HQ)  # HQ files for the unit; the admin decides
    no_reason = pb.RejectRequisitionRequest(idempotency_key=key(), requisition_id=filed.id, reason=" ")
    assert_invalid(rpc_error(lambda: api.RejectRequisition(no_reason)), "reason")
    rejected = api.RejectRequisition(pb.RejectRequisitionRequest(
        idempotency_key=key(), requisition_id=filed.id, reason="数量超出实际需要"))
    assert rejected.status == pb.REQUISITION_STATUS_REJECTED
    assert rejected.approvals[-1].reason == "数量超出实际需要"
    assert_refused(rpc_error(lambda: _approve(api, filed.id, pb.APPROVAL_STEP_HEAD)),
                   "REQUISITION_CLOSED")
    village = api.village()
    assert_refused(rpc_error(lambda: _file(api, village.id)), "UNIT_REQUESTER_ONLY")
    err = rpc_error(lambda: _file(api, hospital.id, token=VILLAGE))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- donations ---------------------------------------------------------------------------
def _summary(api, day_: str) -> dict[str, tuple]:
    s = api.GetDonationSummary(pb.GetDonationSummaryRequest(day=day_))
    items = {i.item_code: (i.received.lines, i.received.quantity, i.accepted.lines,
                           i.accepted.quantity, i.returned.lines, i.returned.quantity)
             for i in s.items}
    return {"donations": s.donations_received, **items}


def test_donation_inspection_and_daily_summary(api):
    today = day(0)
    before = _summary(api, today)
    donation = api.RegisterDonation(pb.RegisterDonationRequest(
        idempotency_key=key(),
        donor=pb.Donor(name="王小明", contact="13912345678", kind=pb.DONOR_KIND_PERSON),
        lines=[pb.DonationLineSpec(item_code="MASK-N95", quantity=1000, lot="L-2026-01",
                                   expiry=day(365), certificates=["GB2626-2019"]),
               pb.DonationLineSpec(item_code="RICE-10KG", quantity=50, lot="R-7", expiry=day(200))]),
        token=HQ)  # registered by one person, inspected by another (the admin)
    assert (donation.donor_name, donation.donor_contact) == ("王**", "139****5678")
    assert donation.status == pb.DONATION_STATUS_REGISTERED and len(donation.lines) == 2

    def inspect(line_no, decision, reason, **kw):
        return api.InspectDonationLine(pb.InspectDonationLineRequest(
            idempotency_key=key(), donation_id=donation.id, line_no=line_no, decision=decision,
            reason=reason, **kw))

    assert_invalid(rpc_error(lambda: inspect(0, pb.INSPECTION_DECISION_ACCEPT, "ok")), "medical_grade")
    accepted = inspect(0, pb.INSPECTION_DECISION_ACCEPT, "符合医用标准", medical_grade=True)
    assert accepted.status == pb.DONATION_STATUS_PARTLY_INSPECTED
    assert accepted.lines[0].inspection.medical_grade is True
    assert accepted.lines[0].inspection.inspector == "tester"
    returned = inspect(1, pb.INSPECTION_DECISION_RETURN, "包装破损受潮")
    assert returned.status == pb.DONATION_STATUS_INSPECTED
    assert returned.lines[1].inspection.decision == pb.INSPECTION_DECISION_RETURN
    assert_refused(rpc_error(lambda: inspect(0, pb.INSPECTION_DECISION_RETURN, "again")),
                   "ALREADY_INSPECTED")
    err = rpc_error(lambda: inspect(2, pb.INSPECTION_DECISION_RETURN, "no such line"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert api.GetDonation(pb.GetDonationRequest(donation_id=donation.id)) == returned

    after = _summary(api, today)
    assert after["donations"] == before["donations"] + 1

    def delta(code):
        b = before.get(code, (0,) * 6)
        return tuple(x - y for x, y in zip(after[code], b, strict=True))

    assert delta("MASK-N95") == (1, 1000, 1, 1000, 0, 0)
    assert delta("RICE-10KG") == (1, 50, 0, 0, 1, 50)


# ---- spreadsheet import ------------------------------------------------------------------
def _sample(prefix: str, fix_unit_risk: bool = True, extra_rows: str = "") -> tuple[bytes, list[str]]:
    """The sample requester list with ids made unique for this test."""
    text = SAMPLE_REQUESTERS.read_text(encoding="utf-8-sig")
    ids = ["CG-001", "CG-002", "HX-101", "HX-102", "U-FC-01", "U-NH-01"]
    for rid in ids:
        text = text.replace(f"\n{rid},", f"\n{prefix}{rid},")
    if fix_unit_risk:  # see test_the_sample_requester_list_imports_as_it_is
        text = text.replace("河西镇敬老院,敬老院,河西镇,,,防范区,", "河西镇敬老院,敬老院,河西镇,,,,")
    text = text.rstrip("\n") + "\n" + extra_rows
    return text.encode("utf-8"), [prefix + r for r in ids]


def _import(api, content: bytes, all_or_nothing: bool, kind=pb.IMPORT_KIND_REQUESTERS):
    return list(api.ImportSpreadsheet(pb.ImportSpreadsheetRequest(
        idempotency_key=key(), content=content, format=pb.SPREADSHEET_FORMAT_CSV, kind=kind,
        all_or_nothing=all_or_nothing)))


def _exists(api, rid: str) -> bool:
    try:
        api.GetRequester(pb.GetRequesterRequest(requester_id=rid))
        return True
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
        return False


def test_the_sample_requester_list_imports_as_it_is(api):
    content = SAMPLE_REQUESTERS.read_bytes()
    report = _import(api, content, all_or_nothing=True)[-1].report
    assert report.committed and report.rows_accepted == 6, report


def test_import_requesters_all_or_nothing_streams_progress_then_commits(api):
    content, ids = _sample(uid("I") + "-")
    messages = _import(api, content, all_or_nothing=True)
    assert len(messages) >= 2
    assert all(m.phase != pb.IMPORT_PHASE_DONE and not m.HasField("report") for m in messages[:-1])
    assert messages[-1].phase == pb.IMPORT_PHASE_DONE
    report = messages[-1].report
    assert report.committed and (report.rows_total, report.rows_accepted, report.rows_rejected) == (6, 6, 0)
    assert list(report.ids) == ids and not report.errors
    community = api.GetRequester(pb.GetRequesterRequest(requester_id=ids[0]))
    assert (community.kind, community.population, community.risk_level) == (
        pb.REQUESTER_KIND_COMMUNITY, 4820, SEALED)
    assert community.drop_points[0].name == "东门社区服务中心"
    clinic = api.GetRequester(pb.GetRequesterRequest(requester_id=ids[4]))
    assert (clinic.unit_type, clinic.headcount, clinic.beds) == (pb.UNIT_TYPE_FEVER_CLINIC, 64, 20)


def test_import_with_a_bad_row_writes_nothing_or_only_the_good_rows(api):
    prefix = uid("B") + "-"
    bad_id = prefix + "HX-103"
    content, ids = _sample(prefix, extra_rows=f"{bad_id},王庄村,村,河西镇,很多,100,防范区,30.3,120.1,"
                                              f"0,0,0,0,0,,,,,\n")
    report = _import(api, content, all_or_nothing=True)[-1].report
    assert not report.committed and report.rows_accepted == 0 and report.rows_rejected == 1
    assert [(e.row, e.column) for e in report.errors] == [(8, "常住人口")]
    assert "population" in report.errors[0].reason
    assert not _exists(api, ids[0]) and not _exists(api, bad_id)

    partial = _import(api, content, all_or_nothing=False)[-1].report
    assert partial.committed and partial.rows_accepted == 6 and partial.rows_rejected == 1
    assert list(partial.ids) == ids
    assert all(_exists(api, rid) for rid in ids) and not _exists(api, bad_id)


def test_import_updates_existing_requesters(api):
    content, ids = _sample(uid("R") + "-")
    assert _import(api, content, all_or_nothing=True)[-1].report.committed
    changed = content.decode().replace(",1280,455,", ",1300,455,").encode()
    report = _import(api, changed, all_or_nothing=True)[-1].report
    assert report.committed and not report.errors, report
    assert api.GetRequester(pb.GetRequesterRequest(requester_id=ids[2])).population == 1300


def test_import_errors_from_the_register_name_the_file_column_and_code(api):
    prefix = uid("C") + "-"
    content, _ = _sample(prefix, extra_rows=f"{prefix}HX-104,张庄村,村,河西镇,500,100,防范区,30.3,"
                                            f"120.1,0,0,0,0,0,,,村口小卖部,,\n")
    report = _import(api, content, all_or_nothing=True)[-1].report
    assert [e.row for e in report.errors] == [8], report
    assert report.errors[0].column in ("物资存放点", "存放点纬度", "存放点经度"), report
    assert report.errors[0].code == "INVALID_ARGUMENT"


def test_import_refuses_bad_requests_before_streaming(api):
    req = pb.ImportSpreadsheetRequest(idempotency_key=key(), content=b"",
                                      format=pb.SPREADSHEET_FORMAT_CSV, kind=pb.IMPORT_KIND_REQUESTERS)
    assert_invalid(rpc_error(lambda: api.ImportSpreadsheet(req)), "content")
    req.content = b"a,b\n1,2\n"
    req.format = pb.SPREADSHEET_FORMAT_UNSPECIFIED
    assert_invalid(rpc_error(lambda: api.ImportSpreadsheet(req)), "format")


def test_import_over_16_mib_is_invalid(api):
    req = pb.ImportSpreadsheetRequest(
        idempotency_key=key(), content=b"x" * (16 * 1024 * 1024 + 1),
        format=pb.SPREADSHEET_FORMAT_CSV, kind=pb.IMPORT_KIND_REQUESTERS, all_or_nothing=True)
    assert_invalid(rpc_error(lambda: api.ImportSpreadsheet(req)), "content")


# ---- process: health, reflection, SIGTERM -----------------------------------------------
def _health(env) -> int:
    with grpc.insecure_channel(target(env)) as ch:
        return health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="supply.v1.IntakeService"), timeout=2).status


def test_health_is_serving_and_reflection_lists_the_service(api):
    assert _health(api.env) == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(target(api.env)) as ch:
        services = ProtoReflectionDescriptorDatabase(ch).get_services()
    assert "supply.v1.IntakeService" in services and "grpc.health.v1.Health" in services


def test_api_without_a_broker_reports_not_serving(sqlite_env):
    env, tmp = sqlite_env
    broken = {**env, "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    proc = ServiceProcess("intake", "api", broken, tmp).start()
    try:
        def status():
            if not proc.alive():
                raise AssertionError(proc.log()[-3000:])
            try:
                return _health(broken)
            except grpc.RpcError:
                return None
        assert eventually(status, timeout=30, interval=0.1, what="api answers health") == \
            health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]


def test_sigterm_stops_the_api_with_exit_code_0(sqlite_env):
    env, tmp = sqlite_env
    proc = start_api(env, tmp)
    client = Intake(env)
    try:
        client.village()
    finally:
        client.close()
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait_exit(timeout=15) == 0, proc.log()[-3000:]
    assert time.monotonic() - started < 15
    assert "grpc api stopping" in proc.log()
    proc.stop()  # closes the log file



# ---- the cut-off, on a simulated clock -------------------------------------------------
SIM_DAY = "2026-12-10"


@pytest.fixture(scope="module")
def evening_api(tmp_path_factory, amqp_url):
    """An api whose county clock (UTC here) reads 20:00 on SIM_DAY: past its 11:00 cut-off."""
    tmp = tmp_path_factory.mktemp("intake-clock")
    env = make_env(tmp / "var", amqp_url, SUPPLY_TIMEZONE="UTC",
                   SUPPLY_CLOCK=f"sim:{SIM_DAY}T20:00:00+00:00")
    migrate(env)
    proc = start_api(env, tmp)
    client = Intake(env)
    client.tmp = tmp
    yield client
    client.close()
    proc.stop()


def test_cut_off_rolls_late_demands_and_stops_cancelling(evening_api):
    api = evening_api
    village = api.village()
    morning_env = {**api.env, "INTAKE_GRPC_PORT": str(free_port()),
                   "SUPPLY_CLOCK": f"sim:{SIM_DAY}T10:00:00+00:00"}
    morning = start_api(morning_env, api.tmp)
    try:
        client = Intake(morning_env)
        early = client.demand(village.id, ("RICE-10KG", 3), delivery_day=SIM_DAY)
        client.close()
    finally:
        morning.stop()
    assert (early.delivery_day, early.rolled_over) == (SIM_DAY, False)

    err = rpc_error(lambda: api.CancelDemand(pb.CancelDemandRequest(
        idempotency_key=key(), demand_id=early.id)))
    assert_refused(err, "CUTOFF_PASSED")
    assert api.GetDemand(pb.GetDemandRequest(demand_id=early.id)).status == pb.DEMAND_STATUS_OPEN

    late = api.demand(village.id, ("RICE-10KG", 3), delivery_day=SIM_DAY)
    assert (late.delivery_day, late.requested_day, late.rolled_over) == ("2026-12-11", SIM_DAY, True)
    assert [n.code for n in late.notices] == ["ROLLED_OVER"]
    assert late.notices[0].zh and late.notices[0].en
    earliest = api.demand(village.id, ("OIL-5L", 1))
    assert (earliest.delivery_day, earliest.rolled_over) == ("2026-12-11", False)
    cancelled = api.CancelDemand(pb.CancelDemandRequest(idempotency_key=key(), demand_id=late.id))
    assert cancelled.status == pb.DEMAND_STATUS_CANCELLED


def test_donation_summary_uses_the_county_day(evening_api):
    api = evening_api
    api.RegisterDonation(pb.RegisterDonationRequest(
        idempotency_key=key(), donor=pb.Donor(name="县红十字会", contact="hq@redcross.example",
                                              kind=pb.DONOR_KIND_ORGANIZATION),
        lines=[pb.DonationLineSpec(item_code="RICE-10KG", quantity=20, lot="R1", expiry="2027-06-01")]))
    summary = api.GetDonationSummary(pb.GetDonationSummaryRequest(day=SIM_DAY))
    assert summary.donations_received == 1


def test_the_python_example_in_the_integration_guide_runs(api):
    """docs/examples/intake_client.py is what docs/integration.md tells departments to run."""
    import subprocess
    import sys

    from tests.support.intake import target

    out = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "intake_client.py"),
                          target(api.env), ADMIN], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    first, again = out.stdout.split("demand ", 1)[1].split(";")[0].split()[0], out.stdout.split("retry gave ")[1].split()[0]
    assert first == again  # the retry with the same key answered the same demand
    assert "refused: INVALID_ARGUMENT field=lines[0].quantity" in out.stdout
