"""Allocation inputs and the plan (分配方案): frozen dataclasses, quantities are ints.

Inputs: DemandLine, Requester, Depot, StockLot. Output: Plan, made of PlanLine, each saying
what was allocated, from which depot and lots (LotPick), any package substitution, what stays
unmet and why (Reason: a rule code and a sentence in Chinese and English).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class DemandLine:
    """One line of a demand for the delivery day.

    tier: 1 frontline medical, 2 vulnerable / special need, 3 sealed / high-risk area,
    4 controlled / medium-risk area, 5 the rest (RULES.md §3). flagged_abnormal: intake or
    forecast.detect_abnormal found it far above the norm; it is allocated normally and flagged.
    """

    demand_id: str
    line_no: int
    requester_id: str
    item_code: str
    quantity: int
    tier: int
    flagged_abnormal: bool = False


@dataclass(frozen=True, slots=True)
class Requester:
    id: str
    township: str
    lat: float
    lon: float
    population: int
    kind: str = "village"


@dataclass(frozen=True, slots=True)
class Depot:
    id: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class StockLot:
    """Usable stock of one lot in one depot (quarantined / damaged stock is not passed in)."""

    lot_id: str
    depot_id: str
    item_code: str
    available: int
    expiry: date


@dataclass(frozen=True, slots=True)
class ReserveFloor:
    """County-wide quantity of an item that ordinary tiers may not draw below (RULES.md §4).

    quantity = max(ceil(reserve_days × daily_consumption), absolute), daily_consumption =
    population × the item's per-capita daily norm, absolute = the policy's absolute floor of
    the item or its group (0: none). Kept per item of a group, since the items of a group are
    counted in different units (bags of rice, bottles of oil).
    """

    group: str
    item_code: str
    reserve_days: float
    daily_consumption: float
    quantity: int
    absolute: int = 0

    @property
    def by_absolute(self) -> bool:
        """The absolute floor, not the days of consumption, sets the quantity."""
        return self.absolute > 0 and self.quantity == self.absolute


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a line got what it got: a rule code and a sentence for the operator."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class ExcludedLot:
    """Stock left out of a plan: a lot expiring too soon for the delivery day, or one the
    stock source left out for its own reason."""

    lot_id: str
    depot_id: str
    item_code: str
    quantity: int
    expiry: date
    reason: Reason


@dataclass(frozen=True, slots=True)
class LotPick:
    depot_id: str
    lot_id: str
    quantity: int
    expiry: date


@dataclass(frozen=True, slots=True)
class Substitution:
    """A standard package given in place of the unmet part of a line (RULES.md §3.7).

    units_per_package: how many units of the line's item one package holds (its recipe).
    covers: units of the line's item this substitution stands for (≤ what was unmet).
    """

    package_code: str
    packages: int
    units_per_package: int
    covers: int
    picks: tuple[LotPick, ...]


@dataclass(frozen=True, slots=True)
class PlanLine:
    """The plan for one demand line.

    allocated: units of the asked item itself, drawn from `picks`. unmet: asked − allocated −
    substitution.covers. reasons: every rule that decided the line, and why anything is unmet.
    """

    demand: DemandLine
    allocated: int
    picks: tuple[LotPick, ...]
    substitution: Substitution | None
    unmet: int
    reasons: tuple[Reason, ...]

    @property
    def key(self) -> tuple[str, int]:
        return (self.demand.demand_id, self.demand.line_no)

    @property
    def demand_id(self) -> str:
        return self.demand.demand_id

    @property
    def line_no(self) -> int:
        return self.demand.line_no

    @property
    def requester_id(self) -> str:
        return self.demand.requester_id

    @property
    def item_code(self) -> str:
        return self.demand.item_code

    @property
    def tier(self) -> int:
        return self.demand.tier

    @property
    def asked(self) -> int:
        return self.demand.quantity

    @property
    def flagged_abnormal(self) -> bool:
        return self.demand.flagged_abnormal

    @property
    def fill_rate(self) -> float:
        return self.allocated / self.demand.quantity

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def depot_ids(self) -> tuple[str, ...]:
        """Depots the item itself comes from, nearest first."""
        seen: dict[str, None] = {}
        for p in self.picks:
            seen.setdefault(p.depot_id)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class ReserveDraw:
    """A frontline / vulnerable tier drew an item below its reserve floor (recorded, warned)."""

    item_code: str
    group: str
    tier: int
    floor: int
    stock_before: int
    stock_after: int

    @property
    def below_floor(self) -> int:
        return self.floor - self.stock_after


@dataclass(frozen=True, slots=True)
class PlanWarning:
    code: str
    item_code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class TierSummary:
    """One item in one tier: what was asked, what the tier could draw, what it got."""

    item_code: str
    tier: int
    lines: int
    asked: int
    available: int
    allocated: int
    substituted_packages: int


@dataclass(frozen=True)
class Plan:
    """The allocation plan for a delivery day. Lines are sorted by (demand_id, line_no)."""

    delivery_day: date
    catalogue_version: str
    lines: tuple[PlanLine, ...]
    floors: tuple[ReserveFloor, ...]
    reserve_draws: tuple[ReserveDraw, ...]
    warnings: tuple[PlanWarning, ...]
    summaries: tuple[TierSummary, ...]
    excluded_lots: tuple[str, ...]
    stats: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    excluded: tuple[ExcludedLot, ...] = ()

    def line(self, demand_id: str, line_no: int) -> PlanLine:
        keys = _LineKeys(self.lines)
        i = bisect.bisect_left(keys, (demand_id, line_no))
        if i < len(self.lines) and self.lines[i].key == (demand_id, line_no):
            return self.lines[i]
        raise KeyError((demand_id, line_no))

    def flagged(self) -> tuple[PlanLine, ...]:
        return tuple(pl for pl in self.lines if pl.demand.flagged_abnormal)

    def drawn_by_lot(self) -> dict[str, int]:
        """Quantity drawn from each lot (items and substitute packages)."""
        out: dict[str, int] = {}
        for pl in self.lines:
            picks = pl.picks + (pl.substitution.picks if pl.substitution else ())
            for p in picks:
                out[p.lot_id] = out.get(p.lot_id, 0) + p.quantity
        return out


class _LineKeys:
    """A sequence view of line keys for bisect without copying."""

    __slots__ = ("_lines",)

    def __init__(self, lines):
        self._lines = lines

    def __len__(self):
        return len(self._lines)

    def __getitem__(self, i):
        return self._lines[i].key
