"""Proof of delivery (签收, RULES.md §10): per stop, what was received per manifest line, what
was short, damaged or refused and why, who received it, when, and a photo or signature hash.

The result closes the loop: ledger postings (issue what was received against its plan line,
return refused goods to the depot's stock, write off damaged and missing goods) and the
per-line result for the `delivery_confirmed` event. Idempotent by delivery id.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from services.common.errors import Conflict, InvalidInput, NotFound

from .ledger import Bucket, LedgerKind, Posting
from .model import DocRef, require_aware
from .policy import DeliveryPolicy
from .trips import Trip

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Discrepancy:
    reason: str  # short | damaged | refused
    quantity: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReceivedLine:
    plan_line_id: str
    lot_id: str
    received: int
    discrepancies: tuple[Discrepancy, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryConfirmation:
    """proof_ref: "photo:<sha256 hex>" or "signature:<sha256 hex>" of the stored proof."""

    delivery_id: str
    trip_id: str
    drop_point_id: str
    receiver: str
    received_at: datetime
    proof_ref: str
    lines: tuple[ReceivedLine, ...]


@dataclass(frozen=True, slots=True)
class LineResult:
    plan_line_id: str
    item_code: str
    lot_id: str
    shipped: int
    received: int
    short: int
    damaged: int
    refused: int

    @property
    def status(self) -> str:
        if self.received == self.shipped:
            return "delivered"
        return "partial" if self.received else "not_delivered"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivery_id: str
    trip_id: str
    drop_point_id: str
    requester_id: str
    receiver: str
    received_at: datetime
    proof_ref: str
    lines: tuple[LineResult, ...]
    postings: tuple[Posting, ...]
    fingerprint: str

    def event_payload(self) -> dict:
        """Payload of the `delivery_confirmed` event."""
        return {
            "delivery_id": self.delivery_id, "trip_id": self.trip_id,
            "drop_point_id": self.drop_point_id, "requester_id": self.requester_id,
            "receiver": self.receiver,
            "received_at": self.received_at.astimezone(UTC).isoformat(),
            "proof_ref": self.proof_ref,
            "lines": [
                {"plan_line_id": ln.plan_line_id, "item_code": ln.item_code, "lot_id": ln.lot_id,
                 "shipped": ln.shipped, "received": ln.received, "short": ln.short,
                 "damaged": ln.damaged, "refused": ln.refused, "status": ln.status}
                for ln in self.lines
            ],
        }


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """new False: a repeat of a confirmation already recorded; post nothing again."""

    result: DeliveryResult
    new: bool


def fingerprint(c: DeliveryConfirmation) -> str:
    body = [c.delivery_id, c.trip_id, c.drop_point_id, c.receiver.strip(),
            c.received_at.astimezone(UTC).isoformat(timespec="microseconds"), c.proof_ref,
            sorted([ln.plan_line_id, ln.lot_id, ln.received,
                    sorted([d.reason, d.quantity, d.note] for d in ln.discrepancies)]
                   for ln in c.lines)]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, separators=(",", ":"))
                          .encode()).hexdigest()


def confirm_delivery(
    c: DeliveryConfirmation,
    trip: Trip,
    *,
    prior: DeliveryResult | None = None,
    policy: DeliveryPolicy | None = None,
) -> DeliveryOutcome:
    """Validate a proof of delivery against the trip's manifest for that stop.

    prior: the result already recorded under this delivery id, if any. Same content: the same
    result comes back (new=False). Different content: Conflict.
    """
    policy = policy or DeliveryPolicy()
    if not isinstance(c.delivery_id, str) or not c.delivery_id.strip():
        raise InvalidInput("delivery_id", "required")
    require_aware(c.received_at, "received_at")
    fp = fingerprint(c)
    if prior is not None:
        if prior.delivery_id != c.delivery_id:
            raise InvalidInput("delivery_id", "prior result is for another delivery")
        if prior.fingerprint == fp:
            return DeliveryOutcome(prior, new=False)
        raise Conflict(f"delivery {c.delivery_id!r} was already confirmed with different content")

    if not c.receiver or not c.receiver.strip():
        raise InvalidInput("receiver", "required (签收人)")
    kind, _, digest = c.proof_ref.partition(":")
    if kind not in policy.proof_kinds or not _HEX64.match(digest):
        raise InvalidInput("proof_ref", f"must be <{'|'.join(policy.proof_kinds)}>:<sha256 hex>")
    if c.trip_id != trip.trip_id:
        raise InvalidInput("trip_id", f"confirmation is for trip {c.trip_id!r}, not {trip.trip_id!r}")
    stop = next((s for s in trip.stops if s.drop_point_id == c.drop_point_id), None)
    if stop is None:
        raise NotFound(f"drop_point_id: trip {trip.trip_id!r} has no stop at {c.drop_point_id!r}")

    shipped: dict[tuple[str, str], int] = {}
    item_of: dict[tuple[str, str], str] = {}
    for ln in stop.lines:
        key = (ln.plan_line_id, ln.lot_id)
        shipped[key] = shipped.get(key, 0) + ln.quantity
        item_of[key] = ln.item_code

    results: list[LineResult] = []
    postings: list[Posting] = []
    doc = DocRef("delivery", c.delivery_id)
    seen: set[tuple[str, str]] = set()
    for i, ln in enumerate(c.lines):
        f = f"lines[{i}]"
        key = (ln.plan_line_id, ln.lot_id)
        if key not in shipped:
            raise InvalidInput(f, f"plan line {ln.plan_line_id!r} lot {ln.lot_id!r} is not on the manifest")
        if key in seen:
            raise InvalidInput(f, "confirmed twice")
        seen.add(key)
        s = shipped[key]
        r = ln.received
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            raise InvalidInput(f"{f}.received", "must be an integer >= 0")
        if r > s:
            raise InvalidInput(f"{f}.received", f"received {r} is more than shipped {s}")
        by_reason = {reason: 0 for reason in policy.discrepancy_reasons}
        for j, d in enumerate(ln.discrepancies):
            if d.reason not in by_reason:
                raise InvalidInput(f"{f}.discrepancies[{j}].reason",
                                   f"must be one of {policy.discrepancy_reasons}")
            if not isinstance(d.quantity, int) or isinstance(d.quantity, bool) or d.quantity <= 0:
                raise InvalidInput(f"{f}.discrepancies[{j}].quantity", "must be an integer > 0")
            by_reason[d.reason] += d.quantity
        missing = s - r
        if missing and not ln.discrepancies:
            raise InvalidInput(f"{f}.discrepancies",
                               f"received {r} of {s}: a reason (short, damaged, refused) is required")
        if sum(by_reason.values()) != missing:
            raise InvalidInput(f"{f}.discrepancies",
                               f"discrepancies add up to {sum(by_reason.values())}, shipped − received is {missing}")
        res = LineResult(ln.plan_line_id, item_of[key], ln.lot_id, s, r, by_reason.get("short", 0),
                         by_reason.get("damaged", 0), by_reason.get("refused", 0))
        results.append(res)
        postings.extend(_postings(res, doc, c))
    absent = sorted(set(shipped) - seen)
    if absent:
        raise InvalidInput("lines", "every manifest line is confirmed; missing "
                           + ", ".join(f"{p}/{lot}" for p, lot in absent))
    return DeliveryOutcome(DeliveryResult(
        delivery_id=c.delivery_id, trip_id=trip.trip_id, drop_point_id=stop.drop_point_id,
        requester_id=stop.requester_id, receiver=c.receiver.strip(), received_at=c.received_at,
        proof_ref=c.proof_ref, lines=tuple(results), postings=tuple(postings), fingerprint=fp,
    ), new=True)


def _postings(res: LineResult, doc: DocRef, c: DeliveryConfirmation) -> list[Posting]:
    who = c.receiver.strip()
    common = dict(lot_id=res.lot_id, actor=who, at=c.received_at, doc=doc,
                  plan_line_id=res.plan_line_id)
    out = []
    if res.received:
        out.append(Posting(kind=LedgerKind.ISSUE, quantity=-res.received,
                           reason=f"配送签收,签收人 {who} / delivered, received by {who}", **common))
    if res.refused:
        out.append(Posting(kind=LedgerKind.RETURN, quantity=res.refused, bucket=Bucket.RESERVED,
                           reason="拒收退回仓库 / refused at the drop point, back to depot stock",
                           **common))
    if res.damaged:
        out.append(Posting(kind=LedgerKind.WRITE_OFF, quantity=-res.damaged, bucket=Bucket.RESERVED,
                           reason="运输破损报损 / damaged in delivery, written off", **common))
    if res.short:
        out.append(Posting(kind=LedgerKind.WRITE_OFF, quantity=-res.short, bucket=Bucket.RESERVED,
                           reason="途中短少报损 / short on delivery, written off", **common))
    return out
