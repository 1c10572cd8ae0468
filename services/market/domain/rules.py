"""Rule codes of the market domain and their bilingual refusals ("zh / en", as intake words them)."""

from __future__ import annotations

from services.common.errors import InvalidInput, RuleRefused

NON_ESSENTIAL = "market_non_essential"
NOT_ON_LIST = "market_not_on_list"
AFTER_CUTOFF = "market_after_cutoff"
NO_OUTLET = "market_no_outlet"
UNKNOWN_ITEM = "market_unknown_item"
BAD_STATE = "market_bad_state"
PURCHASE_INTERVAL = "market_purchase_interval"
SLOT_NOT_VILLAGE = "market_slot_not_village"
SAME_PERSON = "market_same_person"


def refuse(rule: str, zh: str, en: str) -> RuleRefused:
    """Build (not raise) a bilingual refusal."""
    return RuleRefused(rule, f"{zh} / {en}")


def invalid(field: str, zh: str, en: str) -> InvalidInput:
    """Build (not raise) a bilingual InvalidInput naming `field`."""
    return InvalidInput(field, f"{zh} / {en}")


def same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()
