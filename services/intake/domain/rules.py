"""Rule codes of the intake domain and the bilingual refusals that carry them.

A refusal is a RuleRefused (FAILED_PRECONDITION); its message is "zh / en". When the
refusal is about one field of the request (one line of a demand), LineRuleRefused also
names that field so that batch results and spreadsheet reports can point at it.
"""

from __future__ import annotations

from services.common.errors import RuleRefused

NON_ESSENTIAL = "NON_ESSENTIAL"                  # 篇5: 烟酒等非必须品除外
UNKNOWN_ITEM = "UNKNOWN_ITEM"                    # a demand line naming no catalogue item
CUTOFF_PASSED = "CUTOFF_PASSED"                  # cancel after the delivery day's cut-off
DEMAND_NOT_OPEN = "DEMAND_NOT_OPEN"              # cancel / close a demand that is not open
AREA_REQUESTER_ONLY = "AREA_REQUESTER_ONLY"      # special needs belong to villages / communities
UNIT_REQUESTER_ONLY = "UNIT_REQUESTER_ONLY"      # requisitions are filed by units
HEAD_APPROVAL_REQUIRED = "HEAD_APPROVAL_REQUIRED"  # HQ before the unit head (一把手审核)
REQUISITION_CLOSED = "REQUISITION_CLOSED"        # approve / reject a decided requisition
ALREADY_HEAD_APPROVED = "ALREADY_HEAD_APPROVED"  # head step taken twice
EXPIRED_ON_ARRIVAL = "EXPIRED_ON_ARRIVAL"        # expired donation line can only be returned
ALREADY_INSPECTED = "ALREADY_INSPECTED"          # a donation line is inspected once
VERSION_MISMATCH = "VERSION_MISMATCH"            # update with a stale expected_version
SEPARATION_OF_DUTIES = "SEPARATION_OF_DUTIES"    # 申请人 ≠ 审核人: one person, one step of a record


class LineRuleRefused(RuleRefused):
    """A rule refusal about one field (e.g. ``lines[2].item_code``) of the request."""

    def __init__(self, rule: str, field: str, message: str):
        super().__init__(rule, f"{field}: {message}")
        self.field = field


def same_person(a: str, b: str) -> bool:
    """Two identities from tokens name one person (case and surrounding blanks aside)."""
    return a.strip().casefold() == b.strip().casefold()


def refuse(rule: str, zh: str, en: str, field: str | None = None) -> RuleRefused:
    """Build (not raise) a bilingual refusal."""
    text = f"{zh} / {en}"
    return LineRuleRefused(rule, field, text) if field else RuleRefused(rule, text)
