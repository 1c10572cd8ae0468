"""Alarm and thermal evaluation state ⇄ JSON, so that it can live in the database between MQTT
batches (ADR 0002). Pure: no I/O.

The domain's state machines (`RuleEvaluator`, `ZoneAlarms`, `ThermalHistory`) keep their state
in attributes; this module is the one place that knows their layout. `EVALUATOR_FIELDS` lists
every attribute of a RuleEvaluator and a unit test fails when the domain adds one, so the codec
cannot silently drop state. Instants are stored as integer epoch microseconds (exact).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.catalogue import SpoilageModel, StorageClass
from services.monitoring.domain.alarms import AlarmPolicy, RuleEvaluator, ZoneAlarms, _Episode
from services.monitoring.domain.spoilage import SpoilagePolicy, ThermalHistory, _Sums

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# set by the constructor from the rule, the policy and the interval (not stored)
EVALUATOR_CONFIG = frozenset({"rule", "depot", "zone", "sensor", "policy", "max_gap", "deadband",
                              "duration", "window", "_beyond", "_upward", "_limit", "_cumulative",
                              "_duration_s"})
# the state machine (stored)
EVALUATOR_STATE = frozenset({"is_open", "skipped", "_last_ts", "_last_value", "_last_beyond",
                             "_last_inside", "_run_start", "_run_peak", "_clear_start", "_episode",
                             "_intervals", "_interval_sum_s"})
EVALUATOR_FIELDS = EVALUATOR_CONFIG | EVALUATOR_STATE


def to_us(t: datetime | None) -> int | None:
    return None if t is None else (t - EPOCH) // _US


def from_us(v: int | None) -> datetime | None:
    return None if v is None else EPOCH + v * _US


# --- RuleEvaluator ---------------------------------------------------------------------------

def evaluator_state(ev: RuleEvaluator) -> dict[str, Any]:
    ep = ev._episode
    return {
        "o": ev.is_open, "k": ev.skipped, "t": to_us(ev._last_ts), "v": ev._last_value,
        "b": ev._last_beyond, "i": ev._last_inside, "rs": to_us(ev._run_start), "rp": ev._run_peak,
        "cs": to_us(ev._clear_start),
        "e": None if ep is None else [to_us(ep.first_beyond_at), ep.peak, ep.beyond_s,
                                      to_us(ep.last_emit_at), ep.last_emit_peak],
        "iv": [[to_us(s), to_us(e), p] for s, e, p in ev._intervals], "is": ev._interval_sum_s,
    }


def restore_evaluator(ev: RuleEvaluator, data: Mapping[str, Any]) -> RuleEvaluator:
    """Put stored state into a freshly constructed evaluator (same rule) and return it."""
    ev.is_open = bool(data["o"])
    ev.skipped = int(data["k"])
    ev._last_ts = from_us(data["t"])
    ev._last_value = float(data["v"])
    ev._last_beyond = bool(data["b"])
    ev._last_inside = bool(data["i"])
    ev._run_start = from_us(data["rs"])
    ev._run_peak = float(data["rp"])
    ev._clear_start = from_us(data["cs"])
    e = data["e"]
    ev._episode = None if e is None else _Episode(
        first_beyond_at=from_us(e[0]), peak=float(e[1]), beyond_s=float(e[2]),
        last_emit_at=from_us(e[3]), last_emit_peak=float(e[4]))
    ev._intervals = deque([from_us(s), from_us(t), float(p)] for s, t, p in data["iv"])
    ev._interval_sum_s = float(data["is"])
    return ev


# --- ZoneAlarms ------------------------------------------------------------------------------

def new_zone_alarms(depot: str, zone: str, storage_class: StorageClass, policy: AlarmPolicy,
                    intervals: Mapping[str, timedelta] | None = None) -> ZoneAlarms:
    return ZoneAlarms(depot, zone, storage_class, policy, dict(intervals or {}))


def sensor_evaluators(za: ZoneAlarms, sensor: str) -> dict[str, Any]:
    """The stored form of one sensor's evaluators in a zone: {rule code: state}."""
    out = {}
    for rule in za.storage_class.alarms:
        ev = za._evaluators.get((sensor, rule.code))
        if ev is not None:
            out[rule.code] = evaluator_state(ev)
    return out


def load_sensor_evaluators(za: ZoneAlarms, sensor: str, data: Mapping[str, Any] | None) -> None:
    """Restore one sensor's evaluators into the zone (rules no longer in the class are dropped)."""
    if not data:
        return
    for rule in za.storage_class.alarms:
        state = data.get(rule.code)
        if state is not None:
            restore_evaluator(za.evaluator(sensor, rule), state)


def open_rules_state(za: ZoneAlarms) -> dict[str, list[str]]:
    return {code: sorted(sensors) for code, sensors in za._open.items() if sensors}


def load_open_rules(za: ZoneAlarms, data: Mapping[str, Iterable[str]] | None) -> None:
    codes = {r.code for r in za.storage_class.alarms}
    za._open = {code: set(sensors) for code, sensors in (data or {}).items() if code in codes}


def zone_sensors(za: ZoneAlarms) -> set[str]:
    return {s for s, _ in za._evaluators}


# --- ThermalHistory --------------------------------------------------------------------------

def thermal_state(h: ThermalHistory) -> dict[str, Any]:
    s = h._sums
    return {"t": to_us(h.last_ts), "c": h.last_temp_c, "d": s.days, "k": s.kinetic,
            "m": [[m.sl_ref_days, m.t_ref_c, m.t_min_c, v] for m, v in s.consumed.items()]}


def restore_thermal(zone_key: str, data: Mapping[str, Any] | None,
                    policy: SpoilagePolicy | None = None) -> ThermalHistory:
    h = ThermalHistory(zone_key, policy or SpoilagePolicy())
    if not data:
        return h
    h.last_ts = from_us(data["t"])
    h.last_temp_c = None if data["c"] is None else float(data["c"])
    h._sums = _Sums(days=float(data["d"]), kinetic=float(data["k"]),
                    consumed={SpoilageModel(sl, tr, tm): float(v) for sl, tr, tm, v in data["m"]})
    return h


def thermal_models(h: ThermalHistory) -> int:
    """How many spoilage models the zone keeps sums for (a new one means the state changed)."""
    return len(h._sums.consumed)
