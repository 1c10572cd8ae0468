"""The ledger (台账, RULES.md §8): append-only, hash-chained lines; lot balances derive from them.

Every movement is a line: receipt, reservation, issue, transfer, adjustment, write-off,
quarantine, release, return. Lines are never edited or deleted; a correction is a new line.
Each line stores its signed quantity and its explicit effects on the lot's three buckets
(on hand, reserved, quarantined); `available = on_hand - reserved - quarantined`.

| kind                | quantity | on_hand | reserved | quarantined |
|---------------------|----------|---------|----------|-------------|
| receipt/transfer_in | +q       | +q      |          |             |
| reservation         | +q       |         | +q       |             |
| reservation_release | -q       |         | -q       |             |
| issue               | -q       | -q      | -q       |             |
| transfer_out        | -q       | -q      |          |             |
| adjustment          | ±q       | ±q      |          |             |
| write_off           | -q       | -q      | -q if from reserved | -q if from quarantined |
| quarantine          | +q       |         |          | +q          |
| release             | -q       |         |          | -q          |
| return              | +q       | +q (issued goods come back) or 0 with reserved -q (refused on delivery) |

Hash chain: `hash = HMAC-SHA256(county key, canonical(line fields, prev_hash))` (scheme
`hmac-sha256`, SUPPLY_LEDGER_KEY); the first line's prev_hash is GENESIS_HASH. Lines written
before the chain was keyed keep `hash = sha256(canonical(…))` (scheme `sha256`, ADR 0007): they
may only come before every keyed line. Without the key nobody can recompute a keyed hash, so a
rewritten line stays caught even when every later hash is recomputed. `verify_chain`
(ledger_audit.py) finds edited, deleted, inserted and reordered lines, and a line that differs
from an anchor (a seq and hash printed in a daily report).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.common.errors import InvalidInput, NotFound, RuleRefused

from .model import DocRef, LotStatus
from .policy import LedgerPolicy

GENESIS_HASH = "0" * 64
HASH_VERSION = "v1"
UNKEYED = "sha256"  # lines written before the chain was keyed (migration 0002)
KEYED = "hmac-sha256"
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LedgerKind(StrEnum):
    RECEIPT = "receipt"
    RESERVATION = "reservation"
    RESERVATION_RELEASE = "reservation_release"
    ISSUE = "issue"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    ADJUSTMENT = "adjustment"
    WRITE_OFF = "write_off"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    RETURN = "return"


class Bucket(StrEnum):
    """Which part of a lot's stock a write-off or a return moves."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    QUARANTINED = "quarantined"


K = LedgerKind
_SIGN = {
    K.RECEIPT: 1, K.TRANSFER_IN: 1, K.RESERVATION: 1, K.QUARANTINE: 1, K.RETURN: 1,
    K.ISSUE: -1, K.TRANSFER_OUT: -1, K.WRITE_OFF: -1, K.RESERVATION_RELEASE: -1, K.RELEASE: -1,
    K.ADJUSTMENT: 0,
}
_OPENING = frozenset({K.RECEIPT, K.TRANSFER_IN})
_NEEDS_PLAN_LINE = frozenset({K.RESERVATION, K.RESERVATION_RELEASE, K.ISSUE})
_BUCKETS = {
    K.WRITE_OFF: (Bucket.AVAILABLE, Bucket.RESERVED, Bucket.QUARANTINED),
    K.RETURN: (Bucket.AVAILABLE, Bucket.RESERVED),
}


def effects(kind: LedgerKind, quantity: int, bucket: Bucket | None = None) -> tuple[int, int, int]:
    """(on_hand, reserved, quarantined) deltas of a line: the kind rules of the module table."""
    q = quantity
    if kind in (K.RECEIPT, K.TRANSFER_IN, K.TRANSFER_OUT, K.ADJUSTMENT):
        return (q, 0, 0)
    if kind in (K.RESERVATION, K.RESERVATION_RELEASE):
        return (0, q, 0)
    if kind is K.ISSUE:
        return (q, q, 0)
    if kind in (K.QUARANTINE, K.RELEASE):
        return (0, 0, q)
    if kind is K.WRITE_OFF:
        b = bucket or Bucket.AVAILABLE
        return (q, q if b is Bucket.RESERVED else 0, q if b is Bucket.QUARANTINED else 0)
    if kind is K.RETURN:
        return (0, -q, 0) if bucket is Bucket.RESERVED else (q, 0, 0)
    raise InvalidInput("kind", f"unknown ledger kind {kind!r}")


@dataclass(frozen=True, slots=True)
class Posting:
    """A ledger line before it is numbered and chained: what a use case asks to record.

    quantity is signed by the kind (see the module table). plan_line_id: required for
    reservation, reservation release and issue (不得挤占、挪用和擅自分配), and for a
    write-off or return out of reserved stock. item_code / depot_id / zone_id / expiry: required
    on the lot's opening line (receipt, transfer_in); later lines take them from the lot.
    """

    kind: LedgerKind
    lot_id: str
    quantity: int
    actor: str
    at: datetime
    reason: str
    doc: DocRef
    plan_line_id: str | None = None
    bucket: Bucket | None = None
    item_code: str | None = None
    depot_id: str | None = None
    zone_id: str | None = None
    expiry: date | None = None


@dataclass(frozen=True, slots=True)
class LedgerLine:
    seq: int
    kind: LedgerKind
    lot_id: str
    item_code: str
    depot_id: str
    zone_id: str
    quantity: int
    on_hand_delta: int
    reserved_delta: int
    quarantined_delta: int
    actor: str
    at: datetime
    reason: str
    doc: DocRef
    plan_line_id: str | None
    expiry: date | None
    prev_hash: str
    hash: str
    scheme: str = KEYED


def canonical(
    seq: int, kind: str, lot_id: str, item_code: str, depot_id: str, zone_id: str,
    quantity: int, on_hand_delta: int, reserved_delta: int, quarantined_delta: int,
    actor: str, at: datetime, reason: str, doc: DocRef, plan_line_id: str | None,
    expiry: date | None, prev_hash: str,
) -> bytes:
    """The bytes that are hashed: a JSON array in fixed order; the time as integer microseconds
    since the Unix epoch (so a database round trip that hands it back in another zone still
    verifies)."""
    return _ENCODER.encode(
        [HASH_VERSION, seq, str(kind), lot_id, item_code, depot_id, zone_id, quantity,
         on_hand_delta, reserved_delta, quarantined_delta, actor, (at - _EPOCH) // _MICROSECOND,
         reason, doc.doc_type, doc.doc_id, plan_line_id,
         expiry.isoformat() if expiry else None, prev_hash],
    ).encode()


def chain_hash(data: bytes, key: bytes, scheme: str = KEYED) -> str:
    if scheme == KEYED:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    if scheme == UNKEYED:
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unknown hash scheme {scheme!r}")


def line_hash(line: LedgerLine, key: bytes = b"") -> str:
    """The hash a line should carry under its scheme (the county key for a keyed line)."""
    return chain_hash(canonical(
        line.seq, line.kind, line.lot_id, line.item_code, line.depot_id, line.zone_id,
        line.quantity, line.on_hand_delta, line.reserved_delta, line.quarantined_delta,
        line.actor, line.at, line.reason, line.doc, line.plan_line_id, line.expiry, line.prev_hash,
    ), key, line.scheme)


@dataclass(slots=True)
class LotBalance:
    """A lot's balance as derived from its ledger lines."""

    lot_id: str
    item_code: str
    depot_id: str
    zone_id: str
    expiry: date
    on_hand: int = 0
    reserved: int = 0
    quarantined: int = 0
    written_off: bool = False
    reserved_by_plan: dict[str, int] = field(default_factory=dict)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved - self.quarantined

    @property
    def status(self) -> LotStatus:
        if self.written_off:
            return LotStatus.WRITTEN_OFF
        if self.quarantined > 0:
            return LotStatus.QUARANTINED
        return LotStatus.AVAILABLE

    def is_expired(self, day: date) -> bool:
        """A lot is good through its expiry date."""
        return self.expiry < day


def _refuse(rule: str, zh: str, en: str) -> RuleRefused:
    return RuleRefused(rule, f"{zh} / {en}")


class Ledger:
    """The ledger aggregate: the chain head, the balances of the lots it has loaded, and (when
    `keep_lines`) the lines it appended. A use case loads the balances of the lots it touches
    and the head; it never needs the whole history. key: the county key every new line is
    signed with (SUPPLY_LEDGER_KEY)."""

    def __init__(
        self,
        *,
        balances: Mapping[str, LotBalance] | None = None,
        head_seq: int = 0,
        head_hash: str = GENESIS_HASH,
        policy: LedgerPolicy | None = None,
        keep_lines: bool = True,
        key: bytes = b"",
    ):
        self.key = key
        self.balances: dict[str, LotBalance] = dict(balances or {})
        self.head_seq = head_seq
        self.head_hash = head_hash
        self.policy = policy or LedgerPolicy()
        self._tz = ZoneInfo(self.policy.timezone)
        self.keep_lines = keep_lines
        self.lines: list[LedgerLine] = []

    # --- reading
    def balance(self, lot_id: str) -> LotBalance:
        try:
            return self.balances[lot_id]
        except KeyError:
            raise NotFound(f"unknown lot {lot_id!r}") from None

    # --- writing
    def post(
        self, posting: Posting, approved_plan_lines: Container[str] = frozenset(),
    ) -> LedgerLine:
        """Validate one posting against the rules, apply it, chain it. Raises before any change."""
        line = self._make_line(posting)
        apply(line, self.balances, approved_plan_lines, self._tz)
        self._append(line)
        return line

    def post_all(
        self, postings: Iterable[Posting], approved_plan_lines: Container[str] = frozenset(),
    ) -> list[LedgerLine]:
        """Post several lines as one unit: either all are applied or none is."""
        saved: dict[str, LotBalance | None] = {}
        head = (self.head_seq, self.head_hash, len(self.lines))
        out: list[LedgerLine] = []
        try:
            for p in postings:
                if p.lot_id not in saved:
                    b = self.balances.get(p.lot_id)
                    saved[p.lot_id] = copy.deepcopy(b) if b is not None else None
                out.append(self.post(p, approved_plan_lines))
        except BaseException:
            for lot_id, b in saved.items():
                if b is None:
                    self.balances.pop(lot_id, None)
                else:
                    self.balances[lot_id] = b
            self.head_seq, self.head_hash = head[0], head[1]
            del self.lines[head[2]:]
            raise
        return out

    @classmethod
    def replay(
        cls, lines: Iterable[LedgerLine], policy: LedgerPolicy | None = None,
        keep_lines: bool = False,
    ) -> Ledger:
        """Rebuild balances from stored lines, applying the rules again (plan approvals are not
        re-checked: they were checked when the line was posted). The chain is not verified here:
        use verify_chain."""
        ledger = cls(policy=policy, keep_lines=keep_lines)
        for line in lines:
            apply(line, ledger.balances, None, ledger._tz)
            ledger._append(line)
        return ledger

    def _make_line(self, p: Posting) -> LedgerLine:
        kind = LedgerKind(p.kind)
        if not isinstance(p.at, datetime) or p.at.tzinfo is None or p.at.utcoffset() is None:
            raise InvalidInput("at", "must be a timezone-aware datetime")
        if not isinstance(p.doc, DocRef):
            raise InvalidInput("doc", "every ledger line cites a document")
        if not isinstance(p.quantity, int) or isinstance(p.quantity, bool) or p.quantity == 0:
            raise InvalidInput("quantity", f"must be a non-zero integer, got {p.quantity!r}")
        sign = _SIGN[kind]
        if sign and (p.quantity > 0) != (sign > 0):
            raise InvalidInput("quantity", f"a {kind} line has a {'positive' if sign > 0 else 'negative'} quantity")
        if p.bucket is not None and p.bucket not in _BUCKETS.get(kind, ()):
            raise InvalidInput("bucket", f"a {kind} line takes no bucket {p.bucket!r}")
        if kind in _OPENING:
            for f in ("item_code", "depot_id", "zone_id", "expiry"):
                if getattr(p, f) is None:
                    raise InvalidInput(f, f"required on a {kind} line")
            item, depot, zone, expiry = p.item_code, p.depot_id, p.zone_id, p.expiry
        else:
            bal = self.balances.get(p.lot_id)
            if bal is None:
                raise _refuse("UNKNOWN_LOT", f"批次 {p.lot_id} 未入库", f"lot {p.lot_id!r} has no receipt in this ledger")
            item, depot, zone, expiry = bal.item_code, bal.depot_id, bal.zone_id, None
        oh, r, q = effects(kind, p.quantity, p.bucket)
        seq = self.head_seq + 1
        digest = chain_hash(canonical(
            seq, kind, p.lot_id, item, depot, zone, p.quantity, oh, r, q, p.actor, p.at,
            p.reason, p.doc, p.plan_line_id, expiry, self.head_hash,
        ), self.key)
        return LedgerLine(
            seq=seq, kind=kind, lot_id=p.lot_id, item_code=item, depot_id=depot, zone_id=zone,
            quantity=p.quantity, on_hand_delta=oh, reserved_delta=r, quarantined_delta=q,
            actor=p.actor, at=p.at, reason=p.reason, doc=p.doc, plan_line_id=p.plan_line_id,
            expiry=expiry, prev_hash=self.head_hash, hash=digest,
        )

    def _append(self, line: LedgerLine) -> None:
        self.head_seq, self.head_hash = line.seq, line.hash
        if self.keep_lines:
            self.lines.append(line)


def _valid_effects(line: LedgerLine) -> bool:
    k, q = line.kind, line.quantity
    got = (line.on_hand_delta, line.reserved_delta, line.quarantined_delta)
    return any(got == effects(k, q, b) for b in _BUCKETS.get(k, (None,)))


def apply(
    line: LedgerLine,
    balances: dict[str, LotBalance],
    approved_plan_lines: Container[str] | None,
    tz: ZoneInfo,
) -> LotBalance:
    """Apply one line to the balances after checking every rule; on refusal nothing changes.

    approved_plan_lines None: skip the approval check (replaying lines already accepted).
    """
    kind = line.kind
    if not line.actor or not line.actor.strip():
        raise InvalidInput("actor", "required")
    if not line.reason or not line.reason.strip():
        raise InvalidInput("reason", "required")
    if line.at.tzinfo is None or line.at.utcoffset() is None:
        raise InvalidInput("at", "must be timezone-aware")
    if not _valid_effects(line):
        raise _refuse("BAD_EFFECTS", "台账行的数量影响与类型不符",
                      f"effects of line {line.seq} do not match its kind {kind}")
    bal = balances.get(line.lot_id)
    if kind in _OPENING:
        if bal is not None:
            raise _refuse("LOT_EXISTS", f"批次 {line.lot_id} 已存在", f"lot {line.lot_id!r} already exists")
        if line.expiry is None:
            raise InvalidInput("expiry", f"required on a {kind} line")
        bal = LotBalance(line.lot_id, line.item_code, line.depot_id, line.zone_id, line.expiry)
        new = True
    else:
        if bal is None:
            raise _refuse("UNKNOWN_LOT", f"批次 {line.lot_id} 未入库", f"lot {line.lot_id!r} has no receipt in this ledger")
        new = False

    plan = line.plan_line_id
    needs_plan = kind in _NEEDS_PLAN_LINE or (line.reserved_delta != 0)
    if needs_plan and not plan:
        raise _refuse("PLAN_LINE_REQUIRED", "出库和预留须依据已批准的调配计划行(不得擅自分配)",
                      f"a {kind} line must cite a plan line")
    if kind is K.ISSUE and approved_plan_lines is not None and plan not in approved_plan_lines:
        raise _refuse("PLAN_LINE_NOT_APPROVED", f"计划行 {plan} 未经批准,不得出库",
                      f"plan line {plan!r} is not approved: no issue (不得挤占、挪用和擅自分配)")
    if kind in (K.RESERVATION, K.ISSUE):
        if bal.written_off:
            raise _refuse("LOT_WRITTEN_OFF", f"批次 {bal.lot_id} 已报损", f"lot {bal.lot_id!r} is written off")
        if bal.quarantined > 0:
            raise _refuse("LOT_QUARANTINED", f"批次 {bal.lot_id} 已隔离,不得预留或出库",
                          f"lot {bal.lot_id!r} is quarantined: never reserved or issued")
        if bal.is_expired(line.at.astimezone(tz).date()):
            raise _refuse("LOT_EXPIRED", f"批次 {bal.lot_id} 已过期({bal.expiry})",
                          f"lot {bal.lot_id!r} expired on {bal.expiry}")
    if kind is K.QUARANTINE and bal.written_off:
        raise _refuse("LOT_WRITTEN_OFF", f"批次 {bal.lot_id} 已报损", f"lot {bal.lot_id!r} is written off")

    on_hand = bal.on_hand + line.on_hand_delta
    reserved = bal.reserved + line.reserved_delta
    quarantined = bal.quarantined + line.quarantined_delta
    plan_reserved = None
    if line.reserved_delta:
        plan_reserved = bal.reserved_by_plan.get(plan, 0) + line.reserved_delta
        if plan_reserved < 0:
            raise _refuse("EXCEEDS_RESERVATION",
                          f"计划行 {plan} 在批次 {bal.lot_id} 只预留了 {bal.reserved_by_plan.get(plan, 0)}",
                          f"plan line {plan!r} holds only {bal.reserved_by_plan.get(plan, 0)} of lot "
                          f"{bal.lot_id!r}; the line moves {-line.reserved_delta}")
    if on_hand < 0 or reserved < 0 or quarantined < 0 or on_hand - reserved - quarantined < 0:
        raise _refuse("NEGATIVE_STOCK",
                      f"批次 {bal.lot_id} 库存不足(在库 {bal.on_hand}, 预留 {bal.reserved}, 隔离 {bal.quarantined})",
                      f"lot {bal.lot_id!r} would go below zero: on hand {bal.on_hand}, reserved "
                      f"{bal.reserved}, quarantined {bal.quarantined}, line {kind} {line.quantity}")

    bal.on_hand, bal.reserved, bal.quarantined = on_hand, reserved, quarantined
    if plan_reserved is not None:
        if plan_reserved:
            bal.reserved_by_plan[plan] = plan_reserved
        else:
            bal.reserved_by_plan.pop(plan, None)
    if kind is K.WRITE_OFF and on_hand == 0:
        bal.written_off = True
    if new:
        balances[line.lot_id] = bal
    return bal
