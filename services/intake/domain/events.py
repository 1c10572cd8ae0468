"""Event payloads intake publishes on ``intake.events`` (routing key = event type).

Each builder returns a DomainEvent whose `payload` is plain JSON (str, int, float, bool,
None, lists, objects); the envelope (event_id, occurred_at, source, schema_version,
correlation_id) is added by the outbox. Conventions inside payloads: days are "YYYY-MM-DD"
county-local, instants are UTC ISO-8601 with "Z", quantities are integers in the item's
catalogue unit, tiers are integers 1..5 with `tier_name`.

Events never carry a beneficiary's name or phone: special needs travel as pseudonyms, and
notes of special-need lines are dropped. Donor contacts are never sent; a person donor's name
is masked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .demands import Demand, DemandLine, DemandOrigin
from .donations import Donation, DonationLine
from .requesters import Requester
from .requisitions import ApprovalRecord, Requisition
from .special_needs import SpecialNeed

SCHEMA_VERSION = 1

REQUESTER_REGISTERED = "requester_registered"
REQUESTER_UPDATED = "requester_updated"
DEMAND_REGISTERED = "demand_registered"
DEMAND_CANCELLED = "demand_cancelled"
DEMAND_CLOSED = "demand_closed"
SPECIAL_NEED_REGISTERED = "special_need_registered"
REQUISITION_SUBMITTED = "requisition_submitted"
REQUISITION_APPROVED = "requisition_approved"
REQUISITION_REJECTED = "requisition_rejected"
DONATION_REGISTERED = "donation_registered"
DONATION_INSPECTED = "donation_inspected"


@dataclass(frozen=True)
class DomainEvent:
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dict(self.payload)


def utc(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day(d: date | None) -> str | None:
    return d.isoformat() if d else None


def requester_snapshot(r: Requester) -> dict[str, Any]:
    """The full requester: requester_id, kind (village|community|unit), name (of the village
    or unit, not a person), township, location {lat, lon}, drop_points [{id, name, location,
    window_start "HH:MM", window_end "HH:MM"}], and for areas population, households,
    risk_level (sealed|controlled|prevention), vulnerable {elderly_alone, disabled,
    chronic_patients, infants, pregnant}; for units unit_type, headcount, beds (the other
    group's fields are null); version (1, 2, …)."""
    v = r.vulnerable
    return {
        "requester_id": r.id, "kind": r.kind.value, "name": r.name, "township": r.township,
        "location": {"lat": r.location.lat, "lon": r.location.lon},
        "drop_points": [{
            "id": dp.id, "name": dp.name,
            "location": {"lat": dp.location.lat, "lon": dp.location.lon},
            "window_start": dp.window_start, "window_end": dp.window_end,
        } for dp in r.drop_points],
        "population": r.population, "households": r.households,
        "risk_level": r.risk_level.value if r.risk_level else None,
        "vulnerable": None if v is None else {
            "elderly_alone": v.elderly_alone, "disabled": v.disabled,
            "chronic_patients": v.chronic_patients, "infants": v.infants, "pregnant": v.pregnant,
        },
        "unit_type": r.unit_type.value if r.unit_type else None,
        "headcount": r.headcount, "beds": r.beds, "version": r.version,
    }


def requester_registered(r: Requester) -> DomainEvent:
    """requester_registered: requester_snapshot fields + registered_at."""
    return DomainEvent(REQUESTER_REGISTERED,
                       {**requester_snapshot(r), "registered_at": utc(r.registered_at)},
                       r.registered_at or r.updated_at)


def requester_updated(r: Requester, changed: Iterable[str]) -> DomainEvent:
    """requester_updated: the full new snapshot (requester_snapshot) + changed_fields (names
    of the spec fields that changed, e.g. ["risk_level"]) + updated_at. Consumers replace
    their copy when `version` is newer than theirs."""
    return DomainEvent(REQUESTER_UPDATED, {**requester_snapshot(r), "changed_fields": list(changed),
                                           "updated_at": utc(r.updated_at)}, r.updated_at)


def _line(ln: DemandLine, origin: DemandOrigin) -> dict[str, Any]:
    return {
        "line_no": ln.line_no, "item_code": ln.item_code, "quantity": ln.quantity,
        "tier": int(ln.tier), "tier_name": ln.tier.label, "flagged": ln.flagged,
        "norm_quantity": ln.norm_quantity, "special_need_id": ln.special_need_id,
        "note": "" if origin is DemandOrigin.SPECIAL_NEED or ln.special_need_id else ln.note,
    }


def demand_registered(d: Demand, requester: Requester) -> DomainEvent:
    """demand_registered: a new open demand for allocation.

    demand_id; requester_id; requester_kind; township; risk_level (areas, else null);
    unit_type (units, else null); delivery_day; requested_day (null: earliest open day);
    rolled_over (bool: asked for a day whose cut-off had passed); cutoff_at; submitted_at;
    origin (direct|import|special_need|requisition|carry_over); origin_ref (requisition id,
    special need id, or the demand carried over; null for direct); flagged (any line);
    top_tier (smallest line tier); lines [{line_no, item_code, quantity, tier, tier_name,
    flagged (over the per-capita norm), norm_quantity (null: no norm), special_need_id,
    note ("" for special-need lines)}].
    """
    return DomainEvent(DEMAND_REGISTERED, {
        "demand_id": d.id, "requester_id": d.requester_id, "requester_kind": requester.kind.value,
        "township": requester.township,
        "risk_level": requester.risk_level.value if requester.risk_level else None,
        "unit_type": requester.unit_type.value if requester.unit_type else None,
        "delivery_day": day(d.delivery_day), "requested_day": day(d.requested_day),
        "rolled_over": d.rolled_over, "cutoff_at": utc(d.cutoff_at),
        "submitted_at": utc(d.submitted_at), "origin": d.origin.value, "origin_ref": d.origin_ref,
        "flagged": d.flagged, "top_tier": int(d.top_tier),
        "lines": [_line(ln, d.origin) for ln in d.lines],
    }, d.submitted_at)


def demand_cancelled(d: Demand) -> DomainEvent:
    """demand_cancelled: demand_id, requester_id, delivery_day, cancelled_at, reason."""
    return DomainEvent(DEMAND_CANCELLED, {
        "demand_id": d.id, "requester_id": d.requester_id, "delivery_day": day(d.delivery_day),
        "cancelled_at": utc(d.closed_at), "reason": d.cancel_reason,
    }, d.closed_at or d.submitted_at)


def demand_closed(d: Demand) -> DomainEvent:
    """demand_closed: delivery results were applied.

    demand_id; requester_id; delivery_day; status (fulfilled|partly_fulfilled|rolled);
    closed_at; carry_over_demand_id (the new demand holding the remainder, announced by its
    own demand_registered; null when fulfilled); lines [{line_no, item_code, quantity,
    delivered, remainder}].
    """
    return DomainEvent(DEMAND_CLOSED, {
        "demand_id": d.id, "requester_id": d.requester_id, "delivery_day": day(d.delivery_day),
        "status": d.status.value, "closed_at": utc(d.closed_at),
        "carry_over_demand_id": d.carry_over_demand_id,
        "lines": [{"line_no": ln.line_no, "item_code": ln.item_code, "quantity": ln.quantity,
                   "delivered": ln.delivered or 0, "remainder": ln.remainder} for ln in d.lines],
    }, d.closed_at or d.submitted_at)


def special_need_registered(n: SpecialNeed) -> DomainEvent:
    """special_need_registered (pseudonymous only): special_need_id; requester_id;
    beneficiary (the pseudonym "BEN-" + 20 hex, stable per person and requester); category
    (infant_formula|chronic_medicine|elderly_alone|disability|pregnancy|other); lines
    [{item_code, quantity}] (no notes); period_days (null: one-off); start_day;
    registered_by (grid worker identity); registered_at. Never the name or phone."""
    return DomainEvent(SPECIAL_NEED_REGISTERED, {
        "special_need_id": n.id, "requester_id": n.requester_id,
        "beneficiary": n.beneficiary.pseudonym, "category": n.category.value,
        "lines": [{"item_code": ln.item_code, "quantity": ln.quantity} for ln in n.lines],
        "period_days": n.period_days, "start_day": day(n.start_day),
        "registered_by": n.registered_by, "registered_at": utc(n.registered_at),
    }, n.registered_at)


def _approval(a: ApprovalRecord) -> dict[str, Any]:
    return {"step": a.step.value, "actor_id": a.actor_id, "role": a.role,
            "decision": a.decision.value, "reason": a.reason, "at": utc(a.at)}


def requisition_submitted(req: Requisition, unit: Requester) -> DomainEvent:
    """requisition_submitted: requisition_id; unit_id; unit_type; township; purpose;
    headcount_basis (declared); registered_basis (headcount, + beds per policy, on record);
    basis_exceeds_registered; flagged; delivery_day (wished, or null); filed_by; filed_at;
    lines [{line_no, item_code, quantity, tier, tier_name, flagged, norm_quantity, note}]."""
    return DomainEvent(REQUISITION_SUBMITTED, {
        "requisition_id": req.id, "unit_id": req.unit_id,
        "unit_type": unit.unit_type.value if unit.unit_type else None,
        "township": unit.township, "purpose": req.purpose, "headcount_basis": req.headcount_basis,
        "registered_basis": req.registered_basis,
        "basis_exceeds_registered": req.basis_exceeds_registered, "flagged": req.flagged,
        "delivery_day": day(req.delivery_day), "filed_by": req.filed_by,
        "filed_at": utc(req.filed_at),
        "lines": [_line(ln, DemandOrigin.REQUISITION) for ln in req.lines],
    }, req.filed_at)


def requisition_approved(req: Requisition, demand: Demand) -> DomainEvent:
    """requisition_approved (HQ approval; the demand is announced by its own
    demand_registered): requisition_id; unit_id; demand_id; delivery_day (of the demand);
    approved_at; approvals [{step (submit|head|hq), actor_id, role, decision, reason, at}]."""
    last = req.approvals[-1]
    return DomainEvent(REQUISITION_APPROVED, {
        "requisition_id": req.id, "unit_id": req.unit_id, "demand_id": demand.id,
        "delivery_day": day(demand.delivery_day), "approved_at": utc(last.at),
        "approvals": [_approval(a) for a in req.approvals],
    }, last.at)


def requisition_rejected(req: Requisition) -> DomainEvent:
    """requisition_rejected: requisition_id; unit_id; step (head|hq); reason; rejected_by;
    role; rejected_at; approvals (the whole trail, as in requisition_approved)."""
    last = req.approvals[-1]
    return DomainEvent(REQUISITION_REJECTED, {
        "requisition_id": req.id, "unit_id": req.unit_id, "step": last.step.value,
        "reason": last.reason, "rejected_by": last.actor_id, "role": last.role,
        "rejected_at": utc(last.at), "approvals": [_approval(a) for a in req.approvals],
    }, last.at)


def _donation_head(d: Donation) -> dict[str, Any]:
    return {
        "donation_id": d.id, "donor_kind": d.donor.kind.value, "donor": d.donor.display_name,
        "targeted": d.targeted, "target_requester_id": d.target_requester_id,
        "target_use": d.target_use, "received_at": utc(d.received_at),
    }


def _lot(ln: DonationLine) -> dict[str, Any]:
    return {"line_no": ln.line_no, "item_code": ln.item_code, "quantity": ln.quantity,
            "lot": ln.lot, "expiry": day(ln.expiry), "production_date": day(ln.production_date)}


def donation_registered(d: Donation) -> DomainEvent:
    """donation_registered: donation_id; donor_kind (organization|person); donor (display
    name: organisations in full, persons masked 张**; never the contact); targeted;
    target_requester_id (or null); target_use; received_at; registered_by; lines [{line_no,
    item_code, quantity, lot, expiry, production_date (or null), certificates [refs],
    expired_on_arrival}]."""
    return DomainEvent(DONATION_REGISTERED, {
        **_donation_head(d), "registered_by": d.registered_by,
        "lines": [{**_lot(ln), "certificates": list(ln.certificates),
                   "expired_on_arrival": ln.expired_on_arrival} for ln in d.lines],
    }, d.received_at)


def donation_inspected(d: Donation, line_nos: Iterable[int]) -> DomainEvent:
    """donation_inspected: the lines just inspected, so that logistics can make a receipt
    for the accepted ones.

    donation_id; donor_kind; donor (display name); targeted; target_requester_id;
    target_use; received_at; status (registered|partly_inspected|inspected, after this
    inspection); lines [{line_no, item_code, quantity, lot, expiry, production_date,
    decision (accept|redirect|return), medical_grade (bool for accepted medicine / protective
    items, else null), redirect_to ("" unless redirected), reason, inspector, inspected_at}].
    """
    lines = [d.lines[i] for i in line_nos]
    if any(ln.inspection is None for ln in lines):
        raise ValueError("donation_inspected needs inspected lines")
    at = max(ln.inspection.at for ln in lines if ln.inspection)
    return DomainEvent(DONATION_INSPECTED, {
        **_donation_head(d), "status": d.status.value,
        "lines": [{
            **_lot(ln), "decision": ln.inspection.decision.value,
            "medical_grade": ln.inspection.medical_grade,
            "redirect_to": ln.inspection.redirect_to, "reason": ln.inspection.reason,
            "inspector": ln.inspection.inspector, "inspected_at": utc(ln.inspection.at),
        } for ln in lines if ln.inspection],
    }, at)
