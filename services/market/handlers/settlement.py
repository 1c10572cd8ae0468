"""Payments, delivery at the drop point, the delivery settlement, the grid workers' cash books
and on-account ledgers, the settlement report and the closing of the accounts, and the channel's
day for the daily report (counts and money only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import NotFound, RuleRefused
from services.market.adapters import repositories as repo
from services.market.domain import events as ev
from services.market.domain.orders import PAYMENT_MODES
from services.market.domain.parcels import Parcel, confirm_delivery
from services.market.domain.payments import (
    CashBook,
    DeliverySettlement,
    LedgerEntry,
    Payment,
    SettlementReport,
    account_ledger,
    cash_book,
    delivered_fen,
    make_payment,
    settle_delivery,
    settlement_report,
)
from services.market.handlers.base import (
    COMMUNITY_ROLES,
    HQ,
    REPORT_ROLES,
    SETTLE_ROLES,
    SUMMARY_ROLES,
    MarketContext,
    day,
    for_community,
    record,
    required,
)
from services.market.handlers.community_orders import community_order
from services.market.handlers.orders import household_order

ACCOUNTS_CLOSED = "market_accounts_closed"
BOOK_ROLES = (*COMMUNITY_ROLES, "auditor")


def _open(uow: UnitOfWork) -> None:
    if repo.closing(uow.conn) is not None:
        raise RuleRefused(ACCOUNTS_CLOSED, "the accounts are closed / 账目已结清关闭")


def record_payment(ctx: MarketContext, uow: UnitOfWork, actor: Caller, order_id: str, mode: str,
                   amount_fen: int, reference: str) -> Payment:
    order = household_order(uow, order_id)
    for_community(actor, order.community_id, *COMMUNITY_ROLES)
    _open(uow)
    paid = sum(p.amount_fen for p in repo.payments_where(uow.conn, order_ids=[order.order_id]))
    payment = make_payment(order, mode=mode, amount_fen=amount_fen, reference=reference,
                           grid_worker=actor.identity, recorded_at=ctx.clock.now(), paid_so_far=paid)
    payment = replace(payment, reference=ctx.payments.record(order.order_id, amount_fen, payment.reference))
    repo.add_payment(uow.conn, payment, order.community_id)
    record(uow, ev.payment_recorded(payment, order))
    return payment


def confirm_parcel(ctx: MarketContext, uow: UnitOfWork, actor: Caller, parcel_id: str, outcome: str,
                   short_lines: Mapping[str, int], reason: str):
    parcel = repo.parcels.get(uow.conn, required(parcel_id, "parcel_id"), lock=True)
    if parcel is None:
        raise NotFound(f"parcel_id: no parcel {parcel_id!r} / 没有该包裹")
    order = household_order(uow, parcel.household_order_id, lock=True)
    for_community(actor, order.community_id, *COMMUNITY_ROLES)
    done, closed = confirm_delivery(parcel, order, outcome, dict(short_lines) or None, reason)
    repo.parcels.save(uow.conn, done)
    repo.household_orders.save(uow.conn, closed)
    co_id = repo.community_order_id_of(uow.conn, closed.order_id)
    if co_id:
        co = community_order(uow, co_id, lock=True)
        if all(p.status != "packed" for p in repo.parcels_of(uow.conn, co_id)):
            repo.community_orders.save(uow.conn, replace(co, status="delivered"))
    record(uow, ev.parcel_delivered(done, closed, ctx.clock.now()))
    return done, closed


def settle(ctx: MarketContext, uow: UnitOfWork, actor: Caller, community_order_id: str) -> DeliverySettlement:
    co = community_order(uow, community_order_id, lock=True)
    for_community(actor, co.community_id, *SETTLE_ROLES)
    found = repo.household_orders.get_many(uow.conn, list(co.household_order_ids))
    orders = [found[i] for i in co.household_order_ids if i in found]
    payments = repo.payments_where(uow.conn, order_ids=list(co.household_order_ids))
    s = settle_delivery(co, orders, payments)
    repo.save_settlement(uow.conn, co.community_order_id, co.day, s, ctx.clock.now())
    record(uow, ev.delivery_settled(s, ",".join(sorted({o.grid_worker for o in orders})), ctx.clock.now()))
    return s


def _worker(actor: Caller, grid_worker: str) -> str:
    return grid_worker.strip() or actor.identity


def cash_book_of(uow: UnitOfWork, actor: Caller, community_id: str, grid_worker: str) -> CashBook:
    for_community(actor, required(community_id, "community_id"), *BOOK_ROLES)
    who = _worker(actor, grid_worker)
    orders = repo.orders_where(uow.conn, community_id=community_id, grid_worker=who)
    payments = repo.payments_where(uow.conn, order_ids=[o.order_id for o in orders])
    return cash_book(who, payments, orders)


def ledger_of(uow: UnitOfWork, actor: Caller, community_id: str, grid_worker: str
              ) -> tuple[str, tuple[LedgerEntry, ...], dict[str, date]]:
    for_community(actor, required(community_id, "community_id"), *BOOK_ROLES)
    who = _worker(actor, grid_worker)
    orders = repo.orders_where(uow.conn, community_id=community_id, grid_worker=who, payment_mode="on_account")
    payments = repo.payments_where(uow.conn, order_ids=[o.order_id for o in orders])
    return who, account_ledger(who, payments, orders), {o.order_id: o.day for o in orders}


def report(uow: UnitOfWork, actor: Caller) -> tuple[SettlementReport, datetime | None]:
    """The report now, or the one kept when the accounts were closed."""
    actor.require(*REPORT_ROLES)
    closed = repo.closing(uow.conn)
    if closed is not None:
        from services.common.serde import from_jsonable
        return from_jsonable(SettlementReport, closed[1]), closed[0]
    return settlement_report(repo.orders_where(uow.conn), repo.payments_where(uow.conn)), None


def close_accounts(ctx: MarketContext, uow: UnitOfWork, actor: Caller) -> tuple[SettlementReport, datetime]:
    actor.require(*HQ)
    _open(uow)
    r = settlement_report(repo.orders_where(uow.conn), repo.payments_where(uow.conn))
    now = ctx.clock.now()
    if not repo.close(uow.conn, now, r):
        raise RuleRefused(ACCOUNTS_CLOSED, "the accounts were closed meanwhile / 账目已结清关闭")
    record(uow, ev.accounts_settled(r, now))
    return r, now


@dataclass(frozen=True)
class ChannelSummary:
    day: date
    counts: dict[str, int]
    accounts_closed: bool


def summary(uow: UnitOfWork, actor: Caller, day_text: str) -> ChannelSummary:
    actor.require(*SUMMARY_ROLES)
    d = day(day_text)
    orders = [o for o in repo.orders_where(uow.conn, day=d) if o.status != "cancelled"]
    parcels: list[Parcel] = repo.parcels_for_orders(uow.conn, [o.order_id for o in orders])
    payments = repo.payments_where(uow.conn, order_ids=[o.order_id for o in orders])
    paid: dict[str, int] = {m: 0 for m in PAYMENT_MODES}
    for p in payments:
        paid[p.mode] = paid.get(p.mode, 0) + p.amount_fen
    counts = {
        "household_orders": len(orders),
        **{f"{m}_orders": sum(1 for o in orders if o.payment_mode == m) for m in PAYMENT_MODES},
        "community_orders": len(repo.community_orders_of(uow.conn, day=d)),
        "parcels": len(parcels),
        **{f"parcels_{s}": sum(1 for p in parcels if p.status == s) for s in ("received", "short", "refused")},
        "ordered_fen": sum(o.amount_fen for o in orders),
        "confirmed_fen": sum(o.confirmed_amount_fen for o in orders if o.status not in ("placed", "sent")),
        "delivered_fen": sum(delivered_fen(o) for o in orders),
        "paid_online_fen": paid["online"], "collected_fen": paid["collected"],
        "on_account_owed_fen": max(0, sum(delivered_fen(o) for o in orders if o.payment_mode == "on_account")
                                   - paid["on_account"]),
        "settled_community_orders": repo.settled_count(uow.conn, d),
    }
    return ChannelSummary(d, counts, repo.closing(uow.conn) is not None)
