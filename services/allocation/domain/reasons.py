"""Rule codes and the sentences that explain a plan line (RULES.md §3.9), in Chinese and English."""

from __future__ import annotations

from services.common.catalogue import Item
from services.common.tiers import TIER_NAMES

from .model import Reason, ReserveFloor

TIER_ORDER = "TIER_ORDER"
FAIR_SHARE = "FAIR_SHARE"
NEAREST_DEPOT = "NEAREST_DEPOT"
NEXT_DEPOT = "NEXT_DEPOT"
FEFO = "FEFO"
RESERVE_FLOOR = "RESERVE_FLOOR"
RESERVE_DRAW = "RESERVE_DRAW"
PACKAGE_SUBSTITUTE = "PACKAGE_SUBSTITUTE"
NO_STOCK = "NO_STOCK"
EXPIRED_EXCLUDED = "EXPIRED_EXCLUDED"
NON_ESSENTIAL = "NON_ESSENTIAL"
ABNORMAL_FLAGGED = "ABNORMAL_FLAGGED"

ALL_CODES = (
    TIER_ORDER, FAIR_SHARE, NEAREST_DEPOT, NEXT_DEPOT, FEFO, RESERVE_FLOOR, RESERVE_DRAW,
    PACKAGE_SUBSTITUTE, NO_STOCK, EXPIRED_EXCLUDED, NON_ESSENTIAL, ABNORMAL_FLAGGED,
)
# Codes that say why part of a line is unmet; every line with unmet > 0 carries one of them.
SHORTAGE_CODES = frozenset({FAIR_SHARE, RESERVE_FLOOR, NO_STOCK, NON_ESSENTIAL, TIER_ORDER})

UNIT_ZH = {
    "bag": "袋", "box": "盒", "piece": "件", "kg": "公斤", "bottle": "瓶", "pack": "包",
    "package": "份", "can": "罐", "carton": "盒", "case": "箱", "dose": "剂", "drum": "桶",
}


def _u(item: Item) -> tuple[str, str]:
    return UNIT_ZH.get(item.unit, item.unit), item.unit


def _tier(t: int) -> tuple[str, str]:
    return TIER_NAMES.get(t, (f"第{t}级", f"tier {t}"))


def tier_order(item: Item, tier: int, asked: int, taken_above: int, available: int) -> Reason:
    uz, ue = _u(item)
    tz, te = _tier(tier)
    return Reason(
        TIER_ORDER,
        f"按优先级分配：{item.name_zh}第{tier}级（{tz}）；较高级别已分{taken_above}{uz}，"
        f"本级可分{available}{uz}，本级共申请{asked}{uz}。",
        f"Priority order: {item.name_en}, tier {tier} ({te}); higher tiers drew {taken_above} "
        f"{ue}, {available} {ue} were open to this tier against {asked} {ue} asked.",
    )


def fair_share(item: Item, tier: int, asked: int, allocated: int) -> Reason:
    uz, ue = _u(item)
    rate = allocated / asked if asked else 0.0
    return Reason(
        FAIR_SHARE,
        f"库存不足，同级按相同满足率分配（不平均分数量）：{allocated}/{asked}{uz}，满足率{rate:.1%}，"
        f"取整按最大余数法。",
        f"Short: tier {tier} shares at one fill rate (not an equal split of quantity): "
        f"{allocated}/{asked} {ue} = {rate:.1%}, rounded by largest remainder.",
    )


def reserve_floor(item: Item, floor: ReserveFloor, blocked: int) -> Reason:
    uz, ue = _u(item)
    if floor.by_absolute:
        basis_zh, basis_en = "指挥部设定的绝对底线", "the absolute floor HQ set"
    else:
        basis_zh = f"{floor.reserve_days:g}天用量"
        basis_en = f"{floor.reserve_days:g} days of consumption"
    return Reason(
        RESERVE_FLOOR,
        f"储备底线：{item.name_zh}全县须保留{floor.quantity}{uz}（{basis_zh}），普通需求不得动用，"
        f"本级因此少分{blocked}{uz}。",
        f"Reserve floor: {floor.quantity} {ue} of {item.name_en} ({basis_en}) are kept "
        f"county-wide; ordinary demand may not draw them, {blocked} {ue} held back from this tier.",
    )


def reserve_draw(item: Item, tier: int, floor: int, after: int) -> Reason:
    uz, ue = _u(item)
    return Reason(
        RESERVE_DRAW,
        f"动用储备：第{tier}级可低于储备底线领用，{item.name_zh}库存降至{after}{uz}，"
        f"低于底线{floor}{uz}，已记录并告警。",
        f"Reserve drawn: tier {tier} may draw below the floor; {item.name_en} stock falls to "
        f"{after} {ue}, under its floor of {floor} {ue}; recorded and warned.",
    )


def no_stock(item: Item) -> Reason:
    return Reason(
        NO_STOCK,
        f"无可用库存：各仓库均无可分配的{item.name_zh}。",
        f"No stock: no depot holds usable {item.name_en}.",
    )


def expired_excluded(item: Item, quantity: int, lots: int, min_days: int) -> Reason:
    uz, ue = _u(item)
    when_zh = "配送日当天或之前到期" if min_days == 1 else f"距配送日不足{min_days}天到期"
    when_en = ("expire on or before the delivery day" if min_days == 1
               else f"expire within {min_days} days of the delivery day")
    return Reason(
        EXPIRED_EXCLUDED,
        f"过期批次不分配：{lots}个批次共{quantity}{uz}{item.name_zh}{when_zh}，已排除。",
        f"Expired lots excluded: {lots} lots, {quantity} {ue} of {item.name_en} {when_en}.",
    )


def nearest_depot(item: Item) -> Reason:
    return Reason(
        NEAREST_DEPOT,
        f"就近调配：{item.name_zh}从有货的最近仓库发出，不足时由次近仓库补足。",
        f"Nearest first: {item.name_en} comes from the nearest depot holding it, "
        f"then the next nearest.",
    )


def next_depot(item: Item, nearest_depot_id: str) -> Reason:
    return Reason(
        NEXT_DEPOT,
        f"最近的仓库{nearest_depot_id}的{item.name_zh}已分给优先级更高或运距更优的需求，"
        f"由较远仓库补足。",
        f"The nearest depot {nearest_depot_id} had no {item.name_en} left for this line "
        f"(drawn by higher tiers or nearer requesters); a farther depot served it.",
    )


def fefo(item: Item) -> Reason:
    return Reason(
        FEFO,
        f"先到期先出：仓内{item.name_zh}按有效期由近到远出库。",
        f"First-expiry-first-out: {item.name_en} leaves each depot earliest expiry first.",
    )


def package_substitute(item: Item, package: Item, per_package: int) -> Reason:
    uz, ue = _u(item)
    return Reason(
        PACKAGE_SUBSTITUTE,
        f"以{package.name_zh}替代：{item.name_zh}不足部分改发标准包，每包含{per_package}{uz}"
        f"{item.name_zh}。",
        f"Substituted by {package.name_en}: the short part of {item.name_en} is served as "
        f"standard packages, each holding {per_package} {ue}.",
    )


def non_essential(item: Item) -> Reason:
    return Reason(
        NON_ESSENTIAL,
        f"非必需品（烟酒等）不予分配：{item.name_zh}。",
        f"Non-essential goods (tobacco, alcohol) are not allocated: {item.name_en}.",
    )


ABNORMAL = Reason(
    ABNORMAL_FLAGGED,
    "异常申领已标记：照常分配，请指挥部复核。",
    "Abnormal requisition flagged: allocated as usual, for HQ to review.",
)


def reserve_warning_text(item: Item, tier: int, floor: int, before: int, after: int
                         ) -> tuple[str, str]:
    uz, ue = _u(item)
    return (
        f"{item.name_zh}储备被第{tier}级动用：库存由{before}{uz}降至{after}{uz}，低于储备底线"
        f"{floor}{uz}，请尽快补库。",
        f"{item.name_en} reserve drawn by tier {tier}: stock {before} → {after} {ue}, below "
        f"its floor of {floor} {ue}; replenish soon.",
    )
