"""Receipts and put-away (验收、核实、登记、入库, RULES.md §8, §9).

A receipt is checked as a whole, line by line, with each line seeing the lines before it
(two lines of one receipt may not put flammables and oxidizers into one zone, nor overfill it
together). Nothing is half-accepted: any refusal refuses the receipt. The same item and lot
number twice in one receipt is refused on the second line, as intake refuses an item twice in one
demand: one lot, one line (refuse_repeated_lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.common.catalogue import Catalogue, Item
from services.common.errors import Conflict, InvalidInput, NotFound, RuleRefused

from .ledger import LedgerKind, LotBalance, Posting
from .model import DocRef, Lot, LotStatus, Zone, ZoneOccupancy, positive_int, require_aware
from .policy import ReceiptPolicy, local_date

RECEIPT_KINDS = {
    "purchase": ("采购", "purchase"),
    "donation": ("捐赠", "donation"),
    "transfer": ("调拨", "transfer"),
    "upper_level_allocation": ("上级调拨", "upper-level allocation"),
}
# The document a receipt of this kind must rest on: a donation is inspected before it is
# accepted (RULES.md §7), a transfer arrives against its transfer document.
REQUIRED_ORIGIN = {"donation": "inspection", "transfer": "transfer"}


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    item_code: str
    quantity: int
    lot_number: str
    expiry: date
    zone_id: str
    lot_id: str | None = None  # default: "<receipt_id>/<line number>"


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: str
    kind: str
    depot_id: str
    received_at: datetime
    actor: str
    lines: tuple[ReceiptLine, ...]
    origin: DocRef | None = None  # purchase order, donation inspection, transfer, allocation notice


@dataclass(frozen=True, slots=True)
class AcceptedReceipt:
    receipt: Receipt
    lots: tuple[Lot, ...]
    postings: tuple[Posting, ...]


def refuse_repeated_lines(lines: Sequence[tuple[str, str]], field: str = "lines") -> None:
    """(item code, lot number) per line: a pair seen on an earlier line refuses the receipt,
    naming the repeated line (lot numbers compared without surrounding spaces)."""
    seen: dict[tuple[str, str], int] = {}
    for i, (item_code, lot_number) in enumerate(lines):
        pair = (item_code, lot_number.strip() if isinstance(lot_number, str) else lot_number)
        if pair in seen:
            raise InvalidInput(f"{field}[{i}]", f"{item_code} lot {pair[1]!r} repeats {field}[{seen[pair]}]; "
                                                f"put the whole quantity on one line / 同一物资同一批号重复,"
                                                f"请合并为一行")
        seen[pair] = i


def zone_occupancy(
    zone: Zone, balances: Iterable[LotBalance], catalogue: Catalogue,
) -> ZoneOccupancy:
    """Litres used and hazards present in a zone, from the lots with stock on hand there."""
    used = 0.0
    hazards: set[str] = set()
    items: set[str] = set()
    for b in balances:
        if b.zone_id != zone.id or b.on_hand <= 0:
            continue
        item = catalogue.item(b.item_code)
        used += b.on_hand * item.volume_l
        items.add(item.code)
        if item.hazard:
            hazards.add(item.hazard)
    return ZoneOccupancy(zone.id, used, frozenset(hazards), frozenset(items))


def fit_zone(item: Item, quantity: int, zones: Mapping[str, Zone],
             balances: Mapping[str, LotBalance], pending: Sequence[tuple[str, Item, int]], *,
             catalogue: Catalogue, policy: ReceiptPolicy) -> str | None:
    """The zone to put `item` away in (put-away placement): its storage class, no segregation
    conflict with what the zone holds (or with `pending` lines of the same receipt: zone id,
    item, quantity), room for it; exact class first, then the zone with most free litres."""
    best = None
    for zone in zones.values():
        if not policy.accepts(zone.storage_class, item.storage_class):
            continue
        occ = zone_occupancy(zone, balances.values(), catalogue)
        used, hazards = occ.used_l, set(occ.hazards)
        for zid, it, q in pending:
            if zid == zone.id:
                used += q * it.volume_l
                if it.hazard:
                    hazards.add(it.hazard)
        if any(policy.incompatible(item.hazard, h) for h in hazards):
            continue
        free = zone.capacity_l - used
        if quantity * item.volume_l > free:
            continue
        key = (zone.storage_class != item.storage_class, -free, zone.id)
        if best is None or key < best[0]:
            best = (key, zone.id)
    return None if best is None else best[1]


def no_fitting_zone(item: Item, depot_id: str) -> RuleRefused:
    return RuleRefused("NO_FITTING_ZONE",
                       f"仓库 {depot_id} 没有可存放{item.name_zh}({item.storage_class})的库区(类别、隔离或容量) / "
                       f"depot {depot_id} has no zone for {item.name_en} (storage class "
                       f"{item.storage_class}, segregation, capacity)")


def accept_receipt(
    receipt: Receipt,
    *,
    catalogue: Catalogue,
    zones: Mapping[str, Zone],
    balances: Mapping[str, LotBalance],
    policy: ReceiptPolicy | None = None,
) -> AcceptedReceipt:
    """Check a receipt and return the lots it creates and the ledger lines to post.

    balances: the current lots (at least those of the receipt's zones), for occupancy,
    hazards present and lot id clashes.
    """
    policy = policy or ReceiptPolicy()
    _check_header(receipt)
    refuse_repeated_lines([(ln.item_code, ln.lot_number) for ln in receipt.lines])
    today = local_date(receipt.received_at, policy.timezone)
    kind_zh, kind_en = RECEIPT_KINDS[receipt.kind]
    ledger_kind = LedgerKind.TRANSFER_IN if receipt.kind == "transfer" else LedgerKind.RECEIPT
    doc = DocRef("receipt", receipt.receipt_id)

    occupancy: dict[str, tuple[float, set[str], set[str]]] = {}
    lots: list[Lot] = []
    postings: list[Posting] = []
    seen_ids: set[str] = set()
    for i, ln in enumerate(receipt.lines):
        f = f"lines[{i}]"
        item = catalogue.items.get(ln.item_code)
        if item is None:
            raise NotFound(f"{f}.item_code: unknown item {ln.item_code!r} (catalogue {catalogue.version})")
        if policy.refuse_non_essential and not item.essential:
            raise RuleRefused("NON_ESSENTIAL_ITEM",
                              f"{item.name_zh}属非必需品,不予入库 / {item.name_en} is non-essential "
                              f"and not handled (烟酒等非必须品除外)")
        positive_int(ln.quantity, f"{f}.quantity")
        if not isinstance(ln.lot_number, str) or not ln.lot_number.strip():
            raise InvalidInput(f"{f}.lot_number", "required (批号)")
        if not isinstance(ln.expiry, date) or isinstance(ln.expiry, datetime):
            raise InvalidInput(f"{f}.expiry", "must be a date")
        if ln.expiry < today + timedelta(days=policy.min_shelf_days_on_arrival):
            raise RuleRefused("EXPIRED_ON_ARRIVAL",
                              f"{item.name_zh} 批号 {ln.lot_number} 有效期至 {ln.expiry},到货即过期,拒收 / "
                              f"{item.name_en} lot {ln.lot_number} expires {ln.expiry}: expired on "
                              f"arrival ({today})")
        zone = zones.get(ln.zone_id)
        if zone is None:
            raise NotFound(f"{f}.zone_id: unknown zone {ln.zone_id!r}")
        if zone.depot_id != receipt.depot_id:
            raise InvalidInput(f"{f}.zone_id", f"zone {zone.id!r} is in depot {zone.depot_id!r}, "
                                               f"not {receipt.depot_id!r}")
        if zone.id not in occupancy:
            occ = zone_occupancy(zone, balances.values(), catalogue)
            occupancy[zone.id] = (occ.used_l, set(occ.hazards), set(occ.items))
        used, hazards, _items = occupancy[zone.id]
        clash = sorted(h for h in hazards if policy.incompatible(item.hazard, h))
        if clash:
            raise RuleRefused("SEGREGATION",
                              f"{item.name_zh}({item.hazard})不得与{'、'.join(clash)}同库存放(库区 {zone.id}) / "
                              f"{item.name_en} ({item.hazard}) may not be stored with {', '.join(clash)} "
                              f"in zone {zone.id}")
        if not policy.accepts(zone.storage_class, item.storage_class):
            raise RuleRefused("STORAGE_CLASS_MISMATCH",
                              f"{item.name_zh}须存放于{item.storage_class}库区,库区 {zone.id} 为{zone.storage_class} / "
                              f"{item.name_en} needs storage class {item.storage_class}; zone {zone.id} "
                              f"is {zone.storage_class}")
        volume = ln.quantity * item.volume_l
        if used + volume > zone.capacity_l:
            raise RuleRefused("ZONE_CAPACITY",
                              f"库区 {zone.id} 容量不足:已用 {used:.0f} 升,需 {volume:.0f} 升,容量 {zone.capacity_l} 升 / "
                              f"zone {zone.id} is full: {used:.0f} l used + {volume:.0f} l > "
                              f"{zone.capacity_l} l")
        lot_id = ln.lot_id or f"{receipt.receipt_id}/{i + 1}"
        if lot_id in balances or lot_id in seen_ids:
            raise Conflict(f"{f}.lot_id: lot {lot_id!r} already exists")
        seen_ids.add(lot_id)
        occupancy[zone.id] = (used + volume, hazards | ({item.hazard} if item.hazard else set()),
                              _items | {item.code})
        lots.append(Lot(
            lot_id=lot_id, item_code=item.code, depot_id=receipt.depot_id, zone_id=zone.id,
            lot_number=ln.lot_number.strip(), expiry=ln.expiry, status=LotStatus.AVAILABLE,
            source=doc, received_at=receipt.received_at,
        ))
        postings.append(Posting(
            kind=ledger_kind, lot_id=lot_id, quantity=ln.quantity, actor=receipt.actor,
            at=receipt.received_at,
            reason=f"{kind_zh}入库 批号 {ln.lot_number.strip()} / {kind_en} receipt, lot {ln.lot_number.strip()}",
            doc=doc, item_code=item.code, depot_id=receipt.depot_id, zone_id=zone.id,
            expiry=ln.expiry,
        ))
    return AcceptedReceipt(receipt, tuple(lots), tuple(postings))


def _check_header(r: Receipt) -> None:
    if not isinstance(r.receipt_id, str) or not r.receipt_id.strip():
        raise InvalidInput("receipt_id", "required")
    if r.kind not in RECEIPT_KINDS:
        raise InvalidInput("kind", f"must be one of {sorted(RECEIPT_KINDS)}, got {r.kind!r}")
    if not r.depot_id:
        raise InvalidInput("depot_id", "required")
    require_aware(r.received_at, "received_at")
    if not r.actor or not r.actor.strip():
        raise InvalidInput("actor", "required (验收人)")
    if not r.lines:
        raise InvalidInput("lines", "a receipt has at least one line")
    need = REQUIRED_ORIGIN.get(r.kind)
    if need and (r.origin is None or r.origin.doc_type != need):
        raise RuleRefused("ORIGIN_DOCUMENT_REQUIRED",
                          f"{RECEIPT_KINDS[r.kind][0]}入库须附{need}单据 / a {r.kind} receipt must cite "
                          f"its {need} document")
