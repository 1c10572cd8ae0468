"""Daily prices of vegetables, meat, eggs and milk (菜肉蛋奶) per product per market, and the
abnormal-rise alert (保供稳价, RULES.md §11).

Money is an integer number of fen (分); a submission in yuan with more than two decimals is
refused rather than rounded. The rise test is exact (fractions): today's price must be strictly
more than the baseline × (1 + rise_pct/100), the baseline being the mean of the daily prices in
the `baseline_days` before today, one price per day (the latest submission of a day wins), with
at least `min_history_days` of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from services.common.days import parse_day
from services.common.errors import InvalidInput, NotFound
from services.monitoring.domain.readings import id_problem

CATEGORIES = ("vegetable", "meat", "egg", "milk")


@dataclass(frozen=True)
class PriceProduct:
    code: str
    name_zh: str
    name_en: str
    category: str
    unit_zh: str
    unit_en: str
    min_fen: int
    max_fen: int


DEFAULT_PRODUCTS: tuple[PriceProduct, ...] = (
    PriceProduct("CABBAGE", "大白菜", "napa cabbage", "vegetable", "元/公斤", "yuan/kg", 20, 5_000),
    PriceProduct("POTATO", "土豆", "potatoes", "vegetable", "元/公斤", "yuan/kg", 20, 5_000),
    PriceProduct("TOMATO", "西红柿", "tomatoes", "vegetable", "元/公斤", "yuan/kg", 50, 8_000),
    PriceProduct("GREENS", "青菜", "leafy greens", "vegetable", "元/公斤", "yuan/kg", 50, 8_000),
    PriceProduct("PORK", "猪肉(后腿肉)", "pork (hind leg)", "meat", "元/公斤", "yuan/kg", 500, 30_000),
    PriceProduct("BEEF", "牛肉", "beef", "meat", "元/公斤", "yuan/kg", 1_000, 50_000),
    PriceProduct("EGG", "鸡蛋", "eggs", "egg", "元/公斤", "yuan/kg", 200, 10_000),
    PriceProduct("MILK", "纯牛奶", "milk", "milk", "元/升", "yuan/L", 200, 10_000),
)


@dataclass(frozen=True)
class PricePolicy:
    rise_pct: float = 20.0
    baseline_days: int = 7
    min_history_days: int = 3
    products: tuple[PriceProduct, ...] = DEFAULT_PRODUCTS

    def product(self, code: str) -> PriceProduct:
        for p in self.products:
            if p.code == code:
                return p
        raise NotFound(f"unknown price product {code!r}")


@dataclass(frozen=True)
class PriceObservation:
    product: str
    market: str
    day: date
    price_fen: int


@dataclass(frozen=True)
class PriceRise:
    product: str
    market: str
    day: date
    price_fen: int
    baseline_fen: float
    rise_pct: float
    threshold_pct: float
    history_days: int
    name_zh: str
    name_en: str

    @property
    def text_zh(self) -> str:
        return (f"{self.market} {self.name_zh} {self.day.isoformat()} 价格 {self.price_fen / 100:.2f} 元,"
                f"较前期均价 {self.baseline_fen / 100:.2f} 元上涨 {self.rise_pct:.1f}%"
                f"(阈值 {self.threshold_pct:g}%)")

    @property
    def text_en(self) -> str:
        return (f"{self.name_en} at {self.market} on {self.day.isoformat()}: {self.price_fen / 100:.2f} yuan, "
                f"{self.rise_pct:.1f} % above the baseline {self.baseline_fen / 100:.2f} yuan "
                f"(threshold {self.threshold_pct:g} %)")

    def evidence(self) -> dict:
        return {"product": self.product, "market": self.market, "day": self.day.isoformat(),
                "price_fen": self.price_fen, "baseline_fen": round(self.baseline_fen, 2),
                "rise_pct": round(self.rise_pct, 2), "threshold_pct": self.threshold_pct,
                "history_days": self.history_days}


MAX_PRICE_FEN = 100_000_000  # one million yuan: no retail price of 菜肉蛋奶 comes near it


def parse_price_fen(value: Any, field_name: str = "price_yuan") -> int:
    """Yuan (number or decimal string) → integer fen. Refuses bools, NaN/inf, > 2 decimals, ≤ 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidInput(field_name, f"must be a number of yuan, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(field_name, f"must be a finite number, got {value!r}")
    try:
        d = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidInput(field_name, f"{value!r} is not a number") from None
    if not d.is_finite():
        raise InvalidInput(field_name, f"must be a finite number, got {value!r}")
    fen = d * 100
    if fen != fen.to_integral_value():
        raise InvalidInput(field_name, f"{value!r} has more than 2 decimals (fen)")
    if fen <= 0:
        raise InvalidInput(field_name, f"must be positive, got {value!r}")
    if fen > MAX_PRICE_FEN:  # before any arithmetic in float, which a 1e309 would overflow
        raise InvalidInput(field_name, f"at most {MAX_PRICE_FEN // 100} yuan / 价格超出范围")
    return int(fen)


def validate_submission(raw: Mapping[str, Any], policy: PricePolicy = PricePolicy(),
                        today: date | None = None) -> PriceObservation:
    """A price report {product, market, day, price_yuan} → observation; InvalidInput names the field."""
    code = raw.get("product")
    if not isinstance(code, str) or not code:
        raise InvalidInput("product", "missing")
    try:
        product = policy.product(code)
    except NotFound:
        known = ", ".join(p.code for p in policy.products)
        raise InvalidInput("product", f"unknown product {code!r}; known: {known}") from None
    market = raw.get("market")
    problem = id_problem(market, "market")
    if problem:
        raise InvalidInput("market", problem)
    day = parse_day(raw.get("day"), "day", required=True)
    if today is not None and day > today:
        raise InvalidInput("day", f"{day.isoformat()} is in the future (today {today.isoformat()})")
    if "price_yuan" not in raw:
        raise InvalidInput("price_yuan", "missing")
    fen = parse_price_fen(raw["price_yuan"])
    if not product.min_fen <= fen <= product.max_fen:
        raise InvalidInput(
            "price_yuan",
            f"{fen / 100:.2f} {product.unit_en} is implausible for {product.name_en} "
            f"(expected {product.min_fen / 100:.2f}..{product.max_fen / 100:.2f})",
        )
    return PriceObservation(product=code, market=market, day=day, price_fen=fen)


def detect_price_rise(today: PriceObservation, history: Iterable[PriceObservation],
                      policy: PricePolicy = PricePolicy()) -> PriceRise | None:
    """Compare today's price with the mean of the previous `baseline_days` days' prices."""
    start = today.day - timedelta(days=policy.baseline_days)
    by_day: dict[date, int] = {}
    for o in history:
        if (o.product, o.market) == (today.product, today.market) and start <= o.day < today.day:
            by_day[o.day] = o.price_fen
    if len(by_day) < policy.min_history_days:
        return None
    baseline = Fraction(sum(by_day.values()), len(by_day))
    threshold = Fraction(policy.rise_pct).limit_denominator(10_000)
    if today.price_fen <= baseline * (1 + threshold / 100):
        return None
    product = policy.product(today.product)
    return PriceRise(
        product=today.product, market=today.market, day=today.day, price_fen=today.price_fen,
        baseline_fen=float(baseline), rise_pct=float((today.price_fen / baseline - 1) * 100),
        threshold_pct=policy.rise_pct, history_days=len(by_day),
        name_zh=product.name_zh, name_en=product.name_en,
    )


class PriceBook:
    """Daily prices in memory (the service loads the last `baseline_days` + 1 days)."""

    def __init__(self, policy: PricePolicy = PricePolicy()):
        self.policy = policy
        self._prices: dict[tuple[str, str, date], PriceObservation] = {}

    def record(self, obs: PriceObservation) -> PriceRise | None:
        """Store a day's price (a later submission for the same day replaces it) and check it."""
        self._prices[(obs.product, obs.market, obs.day)] = obs
        return self.check(obs.product, obs.market, obs.day)

    def check(self, product: str, market: str, day: date) -> PriceRise | None:
        obs = self._prices.get((product, market, day))
        if obs is None:
            return None
        return detect_price_rise(obs, self._history(product, market), self.policy)

    def check_day(self, day: date) -> list[PriceRise]:
        out = []
        for (product, market, d) in sorted(self._prices):
            if d == day:
                rise = self.check(product, market, day)
                if rise:
                    out.append(rise)
        return out

    def _history(self, product: str, market: str) -> list[PriceObservation]:
        return [o for (p, m, _), o in self._prices.items() if (p, m) == (product, market)]


# --- prices from the market's sellable lists (market's sellable_list_published) ----------------

@dataclass(frozen=True)
class PriceItem:
    """A catalogue item whose list price feeds a watched product: `units` of the product's unit
    (kg, L) in one catalogue unit of the item (a box of 30 eggs: 1.8 kg)."""

    item_code: str
    product: str
    units: Fraction = Fraction(1)


DEFAULT_PRICE_ITEMS: tuple[PriceItem, ...] = (
    PriceItem("PORK-KG", "PORK"), PriceItem("CABBAGE-KG", "CABBAGE"), PriceItem("POTATO-KG", "POTATO"),
    PriceItem("EGG-30", "EGG", Fraction(9, 5)), PriceItem("MILK-1L", "MILK"),
)


def parse_price_items(text: str, policy: PricePolicy = PricePolicy()) -> tuple[PriceItem, ...]:
    """`ITEM=PRODUCT[:units],…` (e.g. `PORK-KG=PORK,EGG-30=EGG:1.8`); ValueError names the entry."""
    out = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        item, _, rest = entry.partition("=")
        product, _, units = rest.partition(":")
        item, product = item.strip(), product.strip()
        if not item or not product:
            raise ValueError(f"{entry!r} is not ITEM=PRODUCT[:units]")
        try:
            policy.product(product)
        except NotFound:
            raise ValueError(f"{entry!r}: unknown product {product!r}; known: "
                             f"{', '.join(p.code for p in policy.products)}") from None
        try:
            u = Fraction(Decimal(units.strip())) if units.strip() else Fraction(1)
        except (InvalidOperation, ValueError):
            raise ValueError(f"{entry!r}: units must be a decimal number") from None
        if u <= 0:
            raise ValueError(f"{entry!r}: units must be above 0")
        out.append(PriceItem(item, product, u))
    return tuple(out)


def observations_from_list(payload: Mapping[str, Any], items: Iterable[PriceItem], today: date
                           ) -> list[PriceObservation]:
    """The watched products' prices on an outlet's sellable list: per product unit (fen, rounded
    half up), market = the outlet, on the list's day or today when the list is for a later day
    (a price is observed when it is published). Items not watched are ignored; a product fed by
    two items of the list takes the first."""
    by_item = {i.item_code: i for i in items}
    day = min(parse_day(payload.get("day"), "day", required=True), today)
    market = payload.get("outlet_id")
    problem = id_problem(market, "outlet_id")
    if problem:
        raise InvalidInput("outlet_id", problem)
    out: dict[str, PriceObservation] = {}
    for i, line in enumerate(payload.get("lines") or ()):
        item = by_item.get(line.get("item_code"))
        if item is None or item.product in out:
            continue
        fen = line.get("price_fen")
        if isinstance(fen, bool) or not isinstance(fen, int) or fen <= 0:
            raise InvalidInput(f"lines[{i}].price_fen", f"must be a positive whole number of fen, got {fen!r}")
        per_unit = Fraction(fen) / item.units
        out[item.product] = PriceObservation(item.product, market, day, int(per_unit + Fraction(1, 2)))
    return list(out.values())
