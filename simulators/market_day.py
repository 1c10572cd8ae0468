"""The county day's paid channel (商超保供, RULES §12), as `make demo` plays it through market's
gRPC API: HQ registers two designated supermarkets, the nearest serves the community; the
supermarket publishes its list; the grid worker enters three households' orders (paid online,
collected in advance, on account for an elderly resident); the orders close at 10:00 and go as
one community order; the supermarket is out of eggs, packs and labels; at the drop point one
household refuses its parcel; the grid worker settles with the delivery staff; at the end HQ
reads the settlement and closes the accounts."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
from supply.v1 import common_pb2 as c
from supply.v1 import market_pb2 as kpb
from supply.v1 import market_pb2_grpc as krpc

Metadata = list[tuple[str, str]]


def _key() -> str:
    return str(uuid.uuid4())


def act_market_orders(d, market: krpc.MarketServiceStub, hq: Metadata,
                      person: Callable[..., Metadata]) -> None:
    """07:00: outlets, the list, the households' orders (they close at 10:00)."""
    d.console.rule("07:00–10:00 商超保供下单 · the supermarket channel: orders")
    m = d.scenario["market"]
    community = m["community"]
    home = next(v for v in d.facts["villages"] if v["id"] == community)
    for o in m["outlets"]:
        market.RegisterOutlet(kpb.RegisterOutletRequest(idempotency_key=f"outlet-{o['id']}", outlet=kpb.Outlet(
            outlet_id=o["id"], name=o["name"], kind="supermarket", township=o["township"], active=True,
            location=c.GeoPoint(lat=home["lat"] + o["offset"][0], lon=home["lon"] + o["offset"][1]))),
            metadata=hq)
    nearest = m["outlets"][0]["id"]
    served = _eventually(lambda: next((x for x in market.ListCommunities(
        kpb.ListCommunitiesRequest(), metadata=hq).communities if x.community_id == community), None))
    d.check(f"{community} is served by its nearest designated supermarket {nearest} (就近原则)",
            served is not None and served.supermarket_id == nearest and not served.supermarket_assigned,
            f"served by {served.supermarket_id if served else 'nobody (community not known to market)'}")
    if served is None:
        return
    d.facts["market_community"] = served
    shop = person(d, "supermarket-cg01", "supermarket", nearest)
    grid = person(d, "grid1", "grid_worker", community)
    day = d.day.isoformat()
    published = market.PublishSellableList(kpb.PublishSellableListRequest(
        idempotency_key=_key(), outlet_id=nearest, day=day,
        lines=[kpb.SellableLine(item_code=x["item"], price_fen=x["price_fen"]) for x in m["list"]]), metadata=shop)
    try:
        market.PublishSellableList(kpb.PublishSellableListRequest(
            idempotency_key=_key(), outlet_id=nearest, day=day,
            lines=[kpb.SellableLine(item_code="BAIJIU-500ML", price_fen=5000)]), metadata=shop)
        refused = ""
    except grpc.RpcError as exc:
        refused = exc.details() if exc.code() == grpc.StatusCode.FAILED_PRECONDITION else exc.code().name
    d.check(f"the supermarket's sellable list: {len(published.lines)} necessities priced in fen; baijiu refused (必需品)",
            len(published.lines) == len(m["list"]) and "market_non_essential" in refused, refused)

    prices = {x.item_code: x.price_fen for x in published.lines}
    orders = {}
    for h in m["households"]:
        lines = [kpb.OrderLine(item_code=i, quantity=q) for i, q in h["lines"].items()]
        amount = sum(prices[i] * q for i, q in h["lines"].items())
        orders[h["address"]] = market.PlaceHouseholdOrder(kpb.PlaceHouseholdOrderRequest(
            idempotency_key=_key(), community_id=community, day=day, address=h["address"],
            payment_mode=h["pay"], lines=lines, expected_amount_fen=amount), metadata=grid)
    d.facts["market_orders"] = orders
    modes = sorted(o.payment_mode for o in orders.values())
    d.check("3 household orders entered by the grid worker: paid online, collected in advance (统收), "
            "on account for an elderly resident (代付)",
            modes == ["collected", "on_account", "online"] and all(o.household_ref.startswith("H-") for o in orders.values()),
            str(modes))



def act_market_send(d, market: krpc.MarketServiceStub, person: Callable[..., Metadata]) -> None:
    """After the 10:00 close: a late order is refused; the day's orders go as one community order."""
    m = d.scenario["market"]
    community = m["community"]
    if "market_orders" not in d.facts:
        return
    grid = person(d, "grid1", "grid_worker", community)
    day = d.day.isoformat()
    prices = {ln.item_code: ln.price_fen for o in d.facts["market_orders"].values() for ln in o.lines}
    late = m["households"][0]
    try:
        market.PlaceHouseholdOrder(kpb.PlaceHouseholdOrderRequest(
            idempotency_key=_key(), community_id=community, day=day, address=late["address"],
            payment_mode="online", lines=[kpb.OrderLine(item_code="CABBAGE-KG", quantity=1)],
            expected_amount_fen=prices["CABBAGE-KG"]), metadata=grid)
        after = ""
    except grpc.RpcError as exc:
        after = exc.details()
    sent = market.AggregateCommunityOrder(kpb.AggregateCommunityOrderRequest(
        idempotency_key=_key(), community_id=community, day=day), metadata=grid).community_orders
    d.facts["market_community_order"] = sent[0] if sent else None
    d.check("10:00 orders closed (a late one refused); the day's orders sent as one community order with its drop point",
            "market_after_cutoff" in after and len(sent) == 1 and len(sent[0].household_order_ids) == 3
            and bool(sent[0].drop_point_id), after or f"{len(sent)} community orders")


def act_market_delivery(d, market: krpc.MarketServiceStub, hq: Metadata,
                        person: Callable[..., Metadata]) -> None:
    """Afternoon: stock answer, packing and labels, payments, the drop point, settlements."""
    d.console.rule("13:00–17:00 商超保供配送与结算 · the supermarket channel: delivery and settlement")
    m = d.scenario["market"]
    co = d.facts.get("market_community_order")
    if co is None:
        d.check("the supermarket channel's afternoon ran", False, "no community order was sent in the morning")
        return
    shop = person(d, "supermarket-cg01", "supermarket", co.outlet_id)
    grid = person(d, "grid1", "grid_worker", co.community_id)
    clerk = person(d, "delivery-staff-1", "clerk")
    out = m["out_of_stock"]
    answer = market.ConfirmCommunityOrder(kpb.ConfirmCommunityOrderRequest(
        idempotency_key=_key(), community_order_id=co.community_order_id,
        answers=[kpb.LineAnswer(item_code=ln.item_code, answer="out_of_stock" if ln.item_code == out else "full")
                 for ln in co.lines]), metadata=shop)
    with_eggs = [o for o in d.facts["market_orders"].values() if any(ln.item_code == out for ln in o.lines)]
    changed = {o.order_id: o for o in answer.changed_orders}
    d.check(f"the supermarket's stock answer (备货反馈): {out} out of stock; the {len(with_eggs)} households' "
            f"orders and amounts adjusted",
            set(changed) == {o.order_id for o in with_eggs}
            and all(changed[o.order_id].confirmed_amount_fen < o.amount_fen for o in with_eggs),
            f"changed {sorted(changed)}")

    packed = market.PackCommunityOrder(kpb.PackCommunityOrderRequest(
        idempotency_key=_key(), community_order_id=co.community_order_id), metadata=shop)
    labels = market.GetLabels(kpb.GetLabelsRequest(community_order_id=co.community_order_id), metadata=shop)
    html = labels.content.decode("utf-8")
    d.check(f"{len(packed.parcels)} parcels packed per household, labelled with drop point, amount and a QR payment code",
            len(packed.parcels) == 3 and html.count("<svg") >= 3
            and all(p.payment_reference in html for p in packed.parcels), labels.filename)

    by_address = {a: o.order_id for a, o in d.facts["market_orders"].items()}
    parcels = {p.household_order_id: p for p in packed.parcels}
    for h in m["households"]:
        order_id = by_address[h["address"]]
        due = parcels[order_id].amount_fen
        if h["pay"] == "online":
            market.RecordPayment(kpb.RecordPaymentRequest(idempotency_key=_key(), order_id=order_id, mode="online",
                                                          amount_fen=due, reference=f"WX{order_id[-8:]}"), metadata=grid)
        elif h["pay"] == "collected":
            market.RecordPayment(kpb.RecordPaymentRequest(idempotency_key=_key(), order_id=order_id, mode="collected",
                                                          amount_fen=due), metadata=grid)
    d.wait_until("16:30")
    for h in m["households"]:
        parcel = parcels[by_address[h["address"]]]
        refused = h["address"] == m["refused"]
        market.ConfirmParcelDelivery(kpb.ConfirmParcelDeliveryRequest(
            idempotency_key=_key(), parcel_id=parcel.parcel_id, outcome="refused" if refused else "received",
            reason="住户已自行购买 / bought elsewhere" if refused else ""), metadata=grid)
    refused_order = by_address[m["refused"]]
    settled = market.SettleDelivery(kpb.SettleDeliveryRequest(
        idempotency_key=_key(), community_order_id=co.community_order_id), metadata=clerk)
    line = next((x for x in settled.lines if x.order_id == refused_order), None)
    d.check("a parcel refused at the drop point: its order closes with nothing due; the delivery settled "
            "with the staff, the collected money owed back and explained (统收结清)",
            line is not None and line.delivered_fen == 0 and line.explanation == "refused_refund"
            and settled.refund_fen == line.paid_fen > 0,
            f"refund {settled.refund_fen} fen" if line else "no settlement line for the refused order")

    report = market.GetSettlementReport(kpb.GetSettlementReportRequest(), metadata=hq)
    elderly = next(h for h in m["households"] if h.get("elderly"))
    owed = parcels[by_address[elderly["address"]]].amount_fen
    closed = market.CloseAccounts(kpb.CloseAccountsRequest(idempotency_key=_key()), metadata=hq)
    d.facts["market"] = {"orders": len(by_address), "parcels": len(packed.parcels),
                         "on_account_owed_fen": report.total.on_account_owed_fen}
    d.check(f"the settlement (解封后统结算): the elderly resident owes {owed / 100:.2f} yuan on account, "
            f"every fen accounted for, accounts closed",
            report.total.on_account_owed_fen == owed and report.total.balance_fen == settled.refund_fen
            and closed.closed, f"owed {report.total.on_account_owed_fen}, balance {report.total.balance_fen}")


def _eventually(read: Callable[[], object], timeout: float = 30.0) -> object:
    """The community reaches market by intake's requester_registered event: wait for it."""
    import time

    deadline = time.monotonic() + timeout
    while (got := read()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return got
