"""Domain objects → supply.v1 messages. Requests go to the domain as they are (the domain reads
messages by field name); only answers need mapping."""

from __future__ import annotations

import dataclasses
from datetime import date

from supply.v1 import common_pb2 as common
from supply.v1 import intake_pb2 as pb

from services.common.proto_time import timestamp as ts
from services.intake import domain as d


def day(x: date | None) -> str:
    return x.isoformat() if x else ""


def enum(enum_type, prefix: str, value) -> int:
    if value is None:
        return 0
    return enum_type.Value(f"{prefix}_{str(getattr(value, 'value', value)).upper()}")


def requester(r: d.Requester) -> pb.Requester:
    m = pb.Requester(
        id=r.id, kind=enum(pb.RequesterKind, "REQUESTER_KIND", r.kind), name=r.name,
        township=r.township, location=common.GeoPoint(lat=r.location.lat, lon=r.location.lon),
        drop_points=[pb.DropPoint(id=p.id, name=p.name,
                                  location=common.GeoPoint(lat=p.location.lat, lon=p.location.lon),
                                  window=common.LocalTimeWindow(start=p.window_start, end=p.window_end))
                     for p in r.drop_points],
        risk_level=enum(common.RiskLevel, "RISK_LEVEL", r.risk_level),
        unit_type=enum(pb.UnitType, "UNIT_TYPE", r.unit_type), version=r.version,
        registered_at=ts(r.registered_at), updated_at=ts(r.updated_at or r.registered_at),
    )
    for f in ("population", "households", "headcount", "beds"):
        if getattr(r, f) is not None:
            setattr(m, f, getattr(r, f))
    if r.vulnerable is not None:
        m.vulnerable.CopyFrom(pb.VulnerableCounts(**dataclasses.asdict(r.vulnerable)))
    return m


def demand_line(ln: d.DemandLine) -> pb.DemandLine:
    m = pb.DemandLine(line_no=ln.line_no, item_code=ln.item_code, quantity=ln.quantity,
                      note=ln.note, tier=int(ln.tier), flagged=ln.flagged,
                      norm_quantity=ln.norm_quantity or 0, special_need_id=ln.special_need_id or "")
    if ln.delivered is not None:
        m.delivered = ln.delivered
    return m


def refused_lines(refused: tuple[d.RefusedLine, ...]) -> list[pb.RefusedLine]:
    return [pb.RefusedLine(line_no=r.line_no, item_code=r.item_code, field=r.field,
                           reason=common.Reason(code=r.code, zh=r.zh, en=r.en)) for r in refused]


def demand(x: d.Demand, policy: d.DemandPolicy) -> pb.Demand:
    return pb.Demand(
        id=x.id, requester_id=x.requester_id, delivery_day=day(x.delivery_day),
        requested_day=day(x.requested_day), rolled_over=x.rolled_over,
        status=enum(pb.DemandStatus, "DEMAND_STATUS", x.status),
        origin=enum(pb.DemandOrigin, "DEMAND_ORIGIN", x.origin), origin_ref=x.origin_ref or "",
        lines=[demand_line(ln) for ln in x.lines], submitted_at=ts(x.submitted_at),
        cutoff_at=ts(x.cutoff_at), closed_at=ts(x.closed_at), cancel_reason=x.cancel_reason,
        carry_over_demand_id=x.carry_over_demand_id or "", flagged=x.flagged,
        top_tier=int(x.top_tier),
        notices=[common.Reason(code=n.code, zh=n.zh, en=n.en) for n in d.notices(x, policy)],
        refused_lines=refused_lines(x.refused_lines),
    )


def special_need(v: d.SpecialNeedView) -> pb.SpecialNeed:
    return pb.SpecialNeed(
        id=v.id, requester_id=v.requester_id, beneficiary=v.pseudonym, masked_name=v.masked_name,
        masked_phone=v.masked_phone,
        category=enum(pb.SpecialNeedCategory, "SPECIAL_NEED_CATEGORY", v.category),
        lines=[common.ItemLine(item_code=ln.item_code, quantity=ln.quantity, note=ln.note)
               for ln in v.lines],
        period_days=v.period_days or 0, start_day=day(v.start_day),
        registered_by=v.registered_by, registered_at=ts(v.registered_at),
        refused_lines=refused_lines(v.refused_lines))


def requisition(r: d.Requisition) -> pb.Requisition:
    step = d.pending_step(r)
    return pb.Requisition(
        id=r.id, unit_id=r.unit_id, purpose=r.purpose, headcount_basis=r.headcount_basis,
        registered_basis=r.registered_basis, basis_exceeds_registered=r.basis_exceeds_registered,
        flagged=r.flagged, lines=[demand_line(ln) for ln in r.lines],
        status=enum(pb.RequisitionStatus, "REQUISITION_STATUS", r.status),
        approvals=[pb.ApprovalRecord(
            step=enum(pb.ApprovalStep, "APPROVAL_STEP", a.step), actor_id=a.actor_id, role=a.role,
            decision=enum(pb.ApprovalDecision, "APPROVAL_DECISION", a.decision), reason=a.reason,
            at=ts(a.at)) for a in r.approvals],
        filed_at=ts(r.filed_at), delivery_day=day(r.delivery_day), demand_id=r.demand_id or "",
        pending_step=enum(pb.ApprovalStep, "APPROVAL_STEP", step),
        refused_lines=refused_lines(r.refused_lines))


def donation(x: d.Donation) -> pb.Donation:
    lines = []
    for ln in x.lines:
        m = pb.DonationLine(line_no=ln.line_no, item_code=ln.item_code, quantity=ln.quantity,
                            lot=ln.lot, expiry=day(ln.expiry), certificates=list(ln.certificates),
                            production_date=day(ln.production_date),
                            expired_on_arrival=ln.expired_on_arrival)
        if ln.inspection is not None:
            i = ln.inspection
            m.inspection.CopyFrom(pb.Inspection(
                decision=enum(pb.InspectionDecision, "INSPECTION_DECISION", i.decision),
                reason=i.reason, inspector=i.inspector, inspected_at=ts(i.at),
                redirect_to=i.redirect_to))
            if i.medical_grade is not None:
                m.inspection.medical_grade = i.medical_grade
        lines.append(m)
    return pb.Donation(
        id=x.id, donor_kind=enum(pb.DonorKind, "DONOR_KIND", x.donor.kind),
        donor_name=x.donor.display_name, donor_contact=x.donor.masked_contact, lines=lines,
        target_requester_id=x.target_requester_id or "", target_use=x.target_use,
        targeted=x.targeted, received_at=ts(x.received_at), registered_by=x.registered_by,
        status=enum(pb.DonationStatus, "DONATION_STATUS", x.status), note=x.note)


def donation_summary(s: d.DonationDaySummary) -> pb.DonationSummary:
    def tally(t):
        return pb.Tally(lines=t.lines, quantity=t.quantity)

    return pb.DonationSummary(day=day(s.day), donations_received=s.donations_received, items=[
        pb.DonationItemSummary(item_code=i.item_code, received=tally(i.received),
                               accepted=tally(i.accepted), redirected=tally(i.redirected),
                               returned=tally(i.returned)) for i in s.items])
