"""Intake domain: requesters, demands, special needs, unit requisitions, donations.

Pure logic: no I/O, no clock (instants are passed in, timezone-aware), no framework.
Errors: services.common.errors InvalidInput (field path named), NotFound, RuleRefused
(rule codes in .rules), PermissionDenied (requisition roles).
"""

from .demands import (
    DeliveryOutcome,
    Demand,
    DemandLine,
    DemandOrigin,
    DemandStatus,
    Notice,
    RefusedLine,
    RequestedLine,
    Tier,
    apply_delivery_results,
    build_lines,
    cancel_demand,
    delivered_so_far,
    derive_tier,
    follow_cutoff,
    notices,
    parse_lines,
    record_delivery,
    submit_demand,
)
from .donations import (
    Donation,
    DonationDaySummary,
    DonationLine,
    DonationStatus,
    Donor,
    DonorKind,
    Inspection,
    InspectionDecision,
    ItemDaySummary,
    Tally,
    daily_summary,
    inspect_line,
    register_donation,
)
from .events import DomainEvent
from .personal_data import mask_contact, mask_name, mask_phone, normalize_phone
from .policy import (
    CountyCutoff,
    DeliveryTarget,
    DemandPolicy,
    DonationPolicy,
    ImportPolicy,
    SpecialNeedPolicy,
    county_cutoff,
)
from .requesters import (
    DropPoint,
    GeoPoint,
    Requester,
    RequesterKind,
    RiskLevel,
    UnitType,
    VulnerableCounts,
    changed_fields,
    parse_requester,
    register_requester,
    requester_spec,
    update_requester,
)
from .requisitions import (
    Actor,
    ApprovalRecord,
    ApprovalStep,
    Decision,
    Requisition,
    RequisitionStatus,
    approve_head,
    approve_hq,
    file_requisition,
    pending_step,
    reject_requisition,
)
from .rules import LineRuleRefused
from .special_needs import (
    Beneficiary,
    SpecialNeed,
    SpecialNeedCategory,
    SpecialNeedView,
    pseudonym,
    register_special_need,
    special_need_demand,
)

__all__ = [
    "Actor", "ApprovalRecord", "ApprovalStep", "Beneficiary", "CountyCutoff", "Decision",
    "DeliveryOutcome", "county_cutoff", "follow_cutoff",
    "DeliveryTarget", "Demand", "DemandLine", "DemandOrigin", "DemandPolicy", "DemandStatus",
    "DomainEvent", "Donation", "DonationDaySummary", "DonationLine", "DonationPolicy",
    "DonationStatus", "Donor", "DonorKind", "DropPoint", "GeoPoint", "ImportPolicy",
    "Inspection", "InspectionDecision", "ItemDaySummary", "LineRuleRefused", "Notice", "RefusedLine", "RequestedLine",
    "Requester", "RequesterKind", "Requisition", "RequisitionStatus", "RiskLevel", "SpecialNeed",
    "SpecialNeedCategory", "SpecialNeedPolicy", "SpecialNeedView", "Tally", "Tier", "UnitType",
    "VulnerableCounts", "apply_delivery_results",
    "record_delivery",
    "delivered_so_far", "approve_head", "approve_hq", "build_lines",
    "cancel_demand", "changed_fields", "daily_summary", "derive_tier", "file_requisition",
    "inspect_line", "mask_contact", "mask_name", "mask_phone", "normalize_phone", "notices", "parse_lines",
    "parse_requester", "pending_step", "pseudonym", "register_donation", "register_requester",
    "register_special_need", "reject_requisition", "requester_spec", "special_need_demand",
    "submit_demand", "update_requester",
]
