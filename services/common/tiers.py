"""The five priority tiers' names (RULES.md §3), one for every value of the supply.v1 Tier enum."""

from __future__ import annotations

TIER_NAMES: dict[int, tuple[str, str]] = {
    1: ("一线医疗", "frontline medical"),
    2: ("困难群体/特殊需求", "vulnerable / special need"),
    3: ("封控/高风险区", "sealed / high-risk area"),
    4: ("管控/中风险区", "controlled / medium-risk area"),
    5: ("其他需求", "other demand"),
}
