"""Remaining shelf life and mean kinetic temperature from a zone's temperature history
(RULES.md §9).

Square-root model (Ratkowsky; Dalgaard): RRS(T) = ((T − Tmin)/(Tref − Tmin))² for T > Tmin, else 0;
remaining = SL_ref − Σ Δt·RRS(Tᵢ) in days.
MKT: T_MK = (ΔH/R) / −ln( Σ tᵢ·e^(−ΔH/(R·Tᵢ)) / Σ tᵢ ), ΔH/R = 10 000 K, kelvin inside, °C out.

Each reading's temperature holds until the next reading of the zone, with no cap: the product
keeps ageing while a sensor is silent, and the last known temperature is the best estimate
(the offline alert tells people the estimate is blind). Time before a zone's first reading is
not charged.

Incremental: a zone keeps running sums (`ThermalHistory`), O(1) per reading; a lot keeps the
zone's sums at its entry (`LotThermalAccount`) and carries what it accrued in earlier zones,
so a lot's figures are differences of sums, O(1) per query. The kinetic sum is scaled by
e^(ΔH/(R·T0)), T0 = 298.15 K, to keep it near 1 (the scale cancels in the ratio).

SL_ref of a lot: the item group's SpoilageModel.sl_ref_days (the catalogue's per-category
SL_ref at Tref). When the lot's printed expiry is known, a lot that arrives part-way through its
printed life starts with the same fraction of SL_ref: SL_ref × (expires_at − received_at) /
shelf_life_days, capped at SL_ref. Only items in cold storage classes (chilled, frozen by
default) are tracked: the fresh-food models have Tref 4 °C and would spoil ambient potatoes
in a day and a half.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.catalogue import Catalogue, Item, ItemGroup, SpoilageModel, StorageClass

KELVIN = 273.15
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class SpoilagePolicy:
    delta_h_over_r_k: float = 10_000.0
    tracked_storage_classes: tuple[str, ...] = ("chilled", "frozen")
    mkt_min_stay: timedelta = timedelta(hours=24)
    scale_t_k: float = 298.15


def check_model(model: SpoilageModel) -> None:
    if model.t_ref_c <= model.t_min_c or model.sl_ref_days <= 0:
        raise ValueError(f"spoilage model needs Tref > Tmin and SL_ref > 0, got {model}")


def rrs(temp_c: float, model: SpoilageModel) -> float:
    """Relative rate of spoilage against Tref."""
    check_model(model)
    if temp_c <= model.t_min_c:
        return 0.0
    return ((temp_c - model.t_min_c) / (model.t_ref_c - model.t_min_c)) ** 2


def _kinetic_weight(temp_c: float, policy: SpoilagePolicy) -> float:
    t_k = temp_c + KELVIN
    return math.exp(-policy.delta_h_over_r_k * (1.0 / t_k - 1.0 / policy.scale_t_k))


@dataclass(frozen=True)
class ThermalTotals:
    """days: Σ Δt; kinetic: Σ Δt·e^(−ΔH/(R·T)) scaled; consumed: Σ Δt·RRS (days at Tref)."""

    days: float = 0.0
    kinetic: float = 0.0
    consumed: float = 0.0

    def __add__(self, o: ThermalTotals) -> ThermalTotals:
        return ThermalTotals(self.days + o.days, self.kinetic + o.kinetic, self.consumed + o.consumed)

    def __sub__(self, o: ThermalTotals) -> ThermalTotals:
        return ThermalTotals(self.days - o.days, self.kinetic - o.kinetic, self.consumed - o.consumed)

    def mkt_c(self, policy: SpoilagePolicy = SpoilagePolicy()) -> float | None:
        if self.days <= 0 or self.kinetic <= 0:
            return None
        h = policy.delta_h_over_r_k
        return h / (h / policy.scale_t_k - math.log(self.kinetic / self.days)) - KELVIN


@dataclass
class _Sums:
    days: float = 0.0
    kinetic: float = 0.0
    consumed: dict[SpoilageModel, float] = field(default_factory=dict)


class ThermalHistory:
    """Running sums of one zone's temperature history."""

    def __init__(self, zone_key: str, policy: SpoilagePolicy = SpoilagePolicy()):
        self.zone_key = zone_key
        self.policy = policy
        self.last_ts: datetime | None = None
        self.last_temp_c: float | None = None
        self._sums = _Sums()

    def _segment(self, sums: _Sums, days: float, temp_c: float) -> None:
        sums.days += days
        sums.kinetic += days * _kinetic_weight(temp_c, self.policy)
        for m in sums.consumed:
            sums.consumed[m] += days * rrs(temp_c, m)

    def feed(self, ts: datetime, temp_c: float) -> bool:
        """Add a reading in time order; False (ignored) when not newer than the last one."""
        if self.last_ts is not None:
            if ts <= self.last_ts:
                return False
            self._segment(self._sums, (ts - self.last_ts).total_seconds() / SECONDS_PER_DAY,
                          self.last_temp_c)
        self.last_ts, self.last_temp_c = ts, temp_c
        return True

    def feed_series(self, stamps: Sequence[datetime], temps: Sequence[float]) -> None:
        """`feed` of each (ts, temp) in order, in one loop with the same sums, added in the same
        order (so to the same bits)."""
        last_ts, last_temp = self.last_ts, self.last_temp_c
        sums = self._sums
        days, kinetic = sums.days, sums.kinetic
        models = [(m, m.t_min_c, m.t_ref_c - m.t_min_c) for m in sums.consumed]
        consumed = [sums.consumed[m] for m, *_ in models]
        h, inv_scale, exp = self.policy.delta_h_over_r_k, 1.0 / self.policy.scale_t_k, math.exp
        for ts, temp in zip(stamps, temps, strict=True):
            if last_ts is not None:
                if ts <= last_ts:
                    continue
                d = (ts - last_ts).total_seconds() / SECONDS_PER_DAY
                days += d
                kinetic += d * exp(-h * (1.0 / (last_temp + KELVIN) - inv_scale))
                if models:  # a zone holding lots of a tracked item
                    for j, (_, t_min, span) in enumerate(models):
                        consumed[j] += d * (((last_temp - t_min) / span) ** 2 if last_temp > t_min else 0.0)
            last_ts, last_temp = ts, temp
        sums.days, sums.kinetic = days, kinetic
        for (m, *_), c in zip(models, consumed, strict=True):
            sums.consumed[m] = c
        self.last_ts, self.last_temp_c = last_ts, last_temp

    def totals(self, at: datetime, model: SpoilageModel | None = None) -> ThermalTotals:
        """Sums up to `at`, the last temperature held from the last reading to `at`.

        Sums are not kept per instant: an `at` before the last reading counts as the last
        reading (callers feed readings and lot events in time order, as they happen). A model
        seen for the first time starts its sum at zero now (take entry snapshots through this
        method, so that the difference is right)."""
        if model is not None and model not in self._sums.consumed:
            check_model(model)
            self._sums.consumed[model] = 0.0
        s = self._sums
        days, kinetic = s.days, s.kinetic
        consumed = s.consumed.get(model, 0.0) if model is not None else 0.0
        if self.last_ts is not None and at > self.last_ts:
            extra = (at - self.last_ts).total_seconds() / SECONDS_PER_DAY
            days += extra
            kinetic += extra * _kinetic_weight(self.last_temp_c, self.policy)
            if model is not None:
                consumed += extra * rrs(self.last_temp_c, model)
        return ThermalTotals(days, kinetic, consumed)


def mean_kinetic_temperature(samples: Iterable[tuple[datetime, float]], until: datetime | None = None,
                             policy: SpoilagePolicy = SpoilagePolicy()) -> float | None:
    """MKT of a series, each value held until the next (the last one until `until`)."""
    h = ThermalHistory("", policy)
    for ts, temp in sorted(samples, key=lambda s: s[0]):
        h.feed(ts, temp)
    if h.last_ts is None:
        return None
    return h.totals(until or h.last_ts).mkt_c(policy)


def sl_ref_for_lot(item: Item, group: ItemGroup, received_at: datetime,
                   expires_at: datetime | None = None,
                   policy: SpoilagePolicy = SpoilagePolicy()) -> float | None:
    """SL_ref in days at Tref for a lot, or None when the item is not tracked."""
    if group.spoilage is None or item.storage_class not in policy.tracked_storage_classes:
        return None
    sl = group.spoilage.sl_ref_days
    if expires_at is not None and item.shelf_life_days > 0:
        left = (expires_at - received_at).total_seconds() / SECONDS_PER_DAY
        sl *= min(1.0, max(0.0, left / item.shelf_life_days))
    return sl


@dataclass
class LotThermalAccount:
    """A lot's thermal record across the zones it has been in since it was received."""

    lot_id: str
    item_code: str
    received_at: datetime
    model: SpoilageModel | None = None
    sl_ref_days: float | None = None
    carried: ThermalTotals = ThermalTotals()
    zone_key: str | None = None
    entry: ThermalTotals | None = None

    def enter(self, history: ThermalHistory, at: datetime) -> None:
        if self.zone_key is not None:
            raise ValueError(f"lot {self.lot_id} is still in {self.zone_key}; leave it first")
        self.zone_key = history.zone_key
        self.entry = history.totals(at, self.model)

    def leave(self, history: ThermalHistory, at: datetime) -> None:
        self.carried = self.totals(history, at)
        self.zone_key, self.entry = None, None

    def totals(self, history: ThermalHistory | None, at: datetime) -> ThermalTotals:
        if history is None or self.entry is None:
            return self.carried
        if history.zone_key != self.zone_key:
            raise ValueError(f"lot {self.lot_id} is in {self.zone_key}, not {history.zone_key}")
        return self.carried + (history.totals(at, self.model) - self.entry)

    def remaining_days(self, history: ThermalHistory | None, at: datetime) -> float | None:
        if self.sl_ref_days is None:
            return None
        return self.sl_ref_days - self.totals(history, at).consumed

    def mkt_c(self, history: ThermalHistory | None, at: datetime,
              policy: SpoilagePolicy = SpoilagePolicy()) -> float | None:
        return self.totals(history, at).mkt_c(policy)


def open_account(lot_id: str, item_code: str, catalogue: Catalogue, received_at: datetime,
                 expires_at: datetime | None = None,
                 policy: SpoilagePolicy = SpoilagePolicy()) -> LotThermalAccount:
    item = catalogue.item(item_code)
    group = catalogue.groups[item.group]
    sl = sl_ref_for_lot(item, group, received_at, expires_at, policy)
    return LotThermalAccount(lot_id=lot_id, item_code=item_code, received_at=received_at,
                             model=group.spoilage if sl is not None else None, sl_ref_days=sl)


@dataclass(frozen=True)
class SpoilageFinding:
    """kind: spoilage (remaining life ≤ 0) | mkt (MKT above the class's limit)."""

    kind: str
    lot_id: str
    item_code: str
    zone_key: str | None
    at: datetime
    remaining_days: float | None
    mkt_c: float | None
    mkt_limit_c: float | None

    @property
    def text_zh(self) -> str:
        if self.kind == "spoilage":
            return f"批次 {self.lot_id}({self.item_code})按温度历史推算已无剩余货架期,剩余 {self.remaining_days:.2f} 天"
        return (f"批次 {self.lot_id}({self.item_code})平均动力学温度 {self.mkt_c:.2f}°C "
                f"超过限值 {self.mkt_limit_c:g}°C")

    @property
    def text_en(self) -> str:
        if self.kind == "spoilage":
            return (f"lot {self.lot_id} ({self.item_code}) has no shelf life left by its temperature "
                    f"history: {self.remaining_days:.2f} days remaining")
        return (f"lot {self.lot_id} ({self.item_code}) mean kinetic temperature {self.mkt_c:.2f} °C "
                f"above limit {self.mkt_limit_c:g} °C")

    def evidence(self) -> dict:
        return {"remaining_days": None if self.remaining_days is None else round(self.remaining_days, 3),
                "mkt_c": None if self.mkt_c is None else round(self.mkt_c, 3),
                "mkt_limit_c": self.mkt_limit_c, "at": self.at.isoformat()}


def evaluate_lot(account: LotThermalAccount, history: ThermalHistory | None,
                 storage_class: StorageClass | None, at: datetime,
                 policy: SpoilagePolicy = SpoilagePolicy()) -> list[SpoilageFinding]:
    """Findings for a lot now. MKT is judged only after `mkt_min_stay` (a short stay's MKT is
    one excursion, which the alarm rules judge)."""
    out: list[SpoilageFinding] = []
    totals = account.totals(history, at)
    remaining = None if account.sl_ref_days is None else account.sl_ref_days - totals.consumed
    mkt = totals.mkt_c(policy)
    limit = storage_class.mkt_limit_c if storage_class else None

    def finding(kind: str) -> SpoilageFinding:
        return SpoilageFinding(kind=kind, lot_id=account.lot_id, item_code=account.item_code,
                               zone_key=account.zone_key, at=at, remaining_days=remaining,
                               mkt_c=mkt, mkt_limit_c=limit)

    if remaining is not None and remaining <= 0:
        out.append(finding("spoilage"))
    stay_days = policy.mkt_min_stay.total_seconds() / SECONDS_PER_DAY
    if limit is not None and mkt is not None and totals.days >= stay_days and mkt > limit:
        out.append(finding("mkt"))
    return out
