"""Picking (拣货) and lot transitions: FEFO reservation against approved plan lines;
quarantine, release, write-off and transfer out, each citing its document.

Functions here return ledger postings; the use case posts them (Ledger.post_all) in one unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.common.errors import InvalidInput, NotFound, RuleRefused

from .ledger import Bucket, LedgerKind, LotBalance, Posting
from .model import DocRef, positive_int, require_aware
from .policy import PickPolicy


@dataclass(frozen=True, slots=True)
class PickRequest:
    """Stock to reserve for one approved plan line. lots: the lots the plan names, with the
    quantity from each (they must add up to `quantity`); empty: pick first-expiry-first-out."""

    plan_line_id: str
    depot_id: str
    item_code: str
    quantity: int
    delivery_day: date
    lots: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class PickedLot:
    lot_id: str
    quantity: int
    expiry: date


@dataclass(frozen=True, slots=True)
class Pick:
    plan_line_id: str
    depot_id: str
    item_code: str
    requested: int
    picked: tuple[PickedLot, ...]
    short: int
    postings: tuple[Posting, ...]


def _refuse(rule: str, zh: str, en: str) -> RuleRefused:
    return RuleRefused(rule, f"{zh} / {en}")


def serve_ranks(lines: Sequence[Mapping[str, Any]]) -> list[int]:
    """Each approved line's place in HQ's order (RULES §3.2): its priority_rank, the tier's place
    in the plan's policy, 1 first. An event from before priority_rank (a line without it) falls
    back to the numeric tier."""
    ranks = [ln.get("priority_rank") for ln in lines]
    if all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in ranks):
        return ranks
    return [int(ln.get("tier") or 5) for ln in lines]


def pick_many(
    requests: Iterable[PickRequest],
    balances: Mapping[str, LotBalance],
    *,
    actor: str,
    at: datetime,
    policy: PickPolicy | None = None,
    allow_partial: bool = False,
) -> list[Pick]:
    """Pick several plan lines; each sees the stock the ones before it took."""
    policy = policy or PickPolicy()
    require_aware(at, "at")
    taken: dict[str, int] = {}
    out = []
    for req in requests:
        p = _pick(req, balances, taken, actor, at, policy, allow_partial)
        for pl in p.picked:
            taken[pl.lot_id] = taken.get(pl.lot_id, 0) + pl.quantity
        out.append(p)
    return out


def pick(
    request: PickRequest,
    balances: Mapping[str, LotBalance],
    *,
    actor: str,
    at: datetime,
    policy: PickPolicy | None = None,
    allow_partial: bool = False,
) -> Pick:
    """Reserve stock for one plan line: the named lots exactly, else FEFO.

    FEFO skips lots of other depots or items, quarantined and written-off lots, and lots that
    expire before the delivery day. Not enough stock: RuleRefused INSUFFICIENT_STOCK naming
    what there is, or (allow_partial) a Pick with `short` > 0.
    """
    return pick_many([request], balances, actor=actor, at=at, policy=policy,
                     allow_partial=allow_partial)[0]


def _pick(req, balances, taken, actor, at, policy, allow_partial) -> Pick:
    if not req.plan_line_id:
        raise InvalidInput("plan_line_id", "required: stock is reserved only for a plan line")
    positive_int(req.quantity, "quantity")
    good_from = req.delivery_day + timedelta(days=policy.min_days_left_at_delivery)
    doc = DocRef("plan_line", req.plan_line_id)

    def avail(b: LotBalance) -> int:
        return b.available - taken.get(b.lot_id, 0)

    picked: list[PickedLot] = []
    if req.lots:
        total = 0
        for i, (_lot_id, qty) in enumerate(req.lots):
            positive_int(qty, f"lots[{i}].quantity")
            total += qty
        if total != req.quantity:
            raise InvalidInput("lots", f"named lots add up to {total}, the plan line asks {req.quantity}")
        for lot_id, qty in req.lots:
            b = balances.get(lot_id)
            if b is None:
                raise NotFound(f"lots: unknown lot {lot_id!r}")
            if b.item_code != req.item_code or b.depot_id != req.depot_id:
                raise _refuse("LOT_MISMATCH", f"批次 {lot_id} 是 {b.depot_id} 的 {b.item_code}",
                              f"lot {lot_id!r} holds {b.item_code} in depot {b.depot_id}, the plan "
                              f"line wants {req.item_code} from {req.depot_id}")
            if b.written_off:
                raise _refuse("LOT_WRITTEN_OFF", f"批次 {lot_id} 已报损", f"lot {lot_id!r} is written off")
            if b.quarantined > 0:
                raise _refuse("LOT_QUARANTINED", f"批次 {lot_id} 已隔离", f"lot {lot_id!r} is quarantined")
            if b.expiry < good_from:
                raise _refuse("LOT_EXPIRES_BEFORE_DELIVERY",
                              f"批次 {lot_id} 有效期至 {b.expiry},早于配送日 {req.delivery_day}",
                              f"lot {lot_id!r} expires {b.expiry}, before delivery day {req.delivery_day}")
            if avail(b) < qty:
                raise _refuse("INSUFFICIENT_STOCK", f"批次 {lot_id} 可用 {avail(b)},计划要求 {qty}",
                              f"lot {lot_id!r} has {avail(b)} available; the plan names {qty}")
            picked.append(PickedLot(lot_id, qty, b.expiry))
        short = 0
    else:
        candidates = sorted(
            (b for b in balances.values()
             if b.item_code == req.item_code and b.depot_id == req.depot_id
             and not b.written_off and b.quarantined == 0 and b.expiry >= good_from
             and avail(b) > 0),
            key=lambda b: (b.expiry, b.lot_id),
        )
        need = req.quantity
        for b in candidates:
            if need == 0:
                break
            q = min(need, avail(b))
            picked.append(PickedLot(b.lot_id, q, b.expiry))
            need -= q
        short = need
        if short and not allow_partial:
            have = req.quantity - short
            raise _refuse("INSUFFICIENT_STOCK",
                          f"{req.depot_id} 的 {req.item_code} 可用(配送日 {req.delivery_day} 前不过期、未隔离)仅 {have},计划要求 {req.quantity}",
                          f"depot {req.depot_id} has {have} of {req.item_code} usable on "
                          f"{req.delivery_day}; plan line {req.plan_line_id} asks {req.quantity}")
    postings = tuple(
        Posting(kind=LedgerKind.RESERVATION, lot_id=p.lot_id, quantity=p.quantity, actor=actor,
                at=at, reason=f"按计划行预留(先到期先出) / reserved for plan line {req.plan_line_id} (FEFO)"
                if not req.lots else "按计划指定批次预留 / reserved the lot the plan line names",
                doc=doc, plan_line_id=req.plan_line_id)
        for p in picked
    )
    return Pick(req.plan_line_id, req.depot_id, req.item_code, req.quantity, tuple(picked), short,
                postings)


# --- lot transitions ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Transition:
    """Postings for a lot transition. released: reservations given back (plan line, quantity):
    allocation must re-pick those plan lines from other lots."""

    lot_id: str
    postings: tuple[Posting, ...]
    released: tuple[tuple[str, int], ...] = ()


def _check_doc(doc: DocRef, allowed: tuple[str, ...], what: str) -> None:
    if not isinstance(doc, DocRef):
        raise InvalidInput("doc", f"{what} must cite a document")
    if doc.doc_type not in allowed:
        raise InvalidInput("doc.doc_type", f"{what} cites one of {allowed}, got {doc.doc_type!r}")


def _common(actor: str, at: datetime, reason: str) -> None:
    require_aware(at, "at")
    if not actor or not actor.strip():
        raise InvalidInput("actor", "required")
    if not reason or not reason.strip():
        raise InvalidInput("reason", "required")


def quarantine_lot(
    bal: LotBalance, *, doc: DocRef, actor: str, at: datetime, reason: str,
) -> Transition:
    """Quarantine the whole lot (a spoilage alarm, an inspection): its reservations are given
    back first, then all its stock is held. Already quarantined: nothing to post."""
    _check_doc(doc, ("alert", "inspection"), "a quarantine")
    _common(actor, at, reason)
    if bal.written_off:
        raise _refuse("LOT_WRITTEN_OFF", f"批次 {bal.lot_id} 已报损", f"lot {bal.lot_id!r} is written off")
    if bal.quarantined > 0:
        return Transition(bal.lot_id, ())
    postings = []
    released = []
    for plan_line_id, q in sorted(bal.reserved_by_plan.items()):
        postings.append(Posting(
            kind=LedgerKind.RESERVATION_RELEASE, lot_id=bal.lot_id, quantity=-q, actor=actor, at=at,
            reason=f"批次隔离,释放预留 / lot quarantined, reservation released: {reason}",
            doc=doc, plan_line_id=plan_line_id))
        released.append((plan_line_id, q))
    if bal.on_hand > 0:
        postings.append(Posting(kind=LedgerKind.QUARANTINE, lot_id=bal.lot_id,
                                quantity=bal.on_hand, actor=actor, at=at, reason=reason, doc=doc))
    return Transition(bal.lot_id, tuple(postings), tuple(released))


def release_lot(
    bal: LotBalance, *, doc: DocRef, actor: str, at: datetime, reason: str,
) -> Transition:
    """A person releases a quarantined lot after inspection (放行)."""
    _check_doc(doc, ("inspection",), "a release")
    _common(actor, at, reason)
    if bal.quarantined <= 0:
        raise _refuse("NOT_QUARANTINED", f"批次 {bal.lot_id} 未隔离", f"lot {bal.lot_id!r} is not quarantined")
    return Transition(bal.lot_id, (Posting(
        kind=LedgerKind.RELEASE, lot_id=bal.lot_id, quantity=-bal.quarantined, actor=actor, at=at,
        reason=reason, doc=doc),))


def write_off_lot(
    bal: LotBalance, *, doc: DocRef, actor: str, at: datetime, reason: str,
    quantity: int | None = None,
) -> Transition:
    """Write off (报损) quarantined stock, or, for a lot not in quarantine, available stock.
    quantity None: all of it."""
    _check_doc(doc, ("inspection", "alert", "stocktake"), "a write-off")
    _common(actor, at, reason)
    if bal.written_off:
        raise _refuse("LOT_WRITTEN_OFF", f"批次 {bal.lot_id} 已报损", f"lot {bal.lot_id!r} is written off")
    bucket, have = ((Bucket.QUARANTINED, bal.quarantined) if bal.quarantined > 0
                    else (Bucket.AVAILABLE, bal.available))
    q = have if quantity is None else positive_int(quantity, "quantity")
    if q <= 0 or q > have:
        raise _refuse("NEGATIVE_STOCK", f"批次 {bal.lot_id} 可报损 {have}", f"lot {bal.lot_id!r} has {have} "
                      f"{bucket} to write off, asked {q}")
    return Transition(bal.lot_id, (Posting(
        kind=LedgerKind.WRITE_OFF, lot_id=bal.lot_id, quantity=-q, actor=actor, at=at,
        reason=reason, doc=doc, bucket=bucket),))


def transfer_out(
    bal: LotBalance, quantity: int, *, doc: DocRef, actor: str, at: datetime, reason: str,
) -> Transition:
    """Send available stock of a lot to another depot; the other depot receives it as a
    `transfer` receipt citing the same transfer document."""
    _check_doc(doc, ("transfer",), "a transfer")
    _common(actor, at, reason)
    q = positive_int(quantity, "quantity")
    if bal.written_off or bal.quarantined > 0:
        raise _refuse("LOT_QUARANTINED", f"批次 {bal.lot_id} 不可调出", f"lot {bal.lot_id!r} is "
                      f"{bal.status}: it cannot be transferred")
    return Transition(bal.lot_id, (Posting(
        kind=LedgerKind.TRANSFER_OUT, lot_id=bal.lot_id, quantity=-q, actor=actor, at=at,
        reason=reason, doc=doc),))


def release_reservation(
    bal: LotBalance, plan_line_id: str, quantity: int, *, actor: str, at: datetime, reason: str,
) -> Transition:
    """Give back stock reserved for a plan line (plan changed, line cancelled)."""
    _common(actor, at, reason)
    q = positive_int(quantity, "quantity")
    return Transition(bal.lot_id, (Posting(
        kind=LedgerKind.RESERVATION_RELEASE, lot_id=bal.lot_id, quantity=-q, actor=actor, at=at,
        reason=reason, doc=DocRef("plan_line", plan_line_id), plan_line_id=plan_line_id),),
        ((plan_line_id, q),))
