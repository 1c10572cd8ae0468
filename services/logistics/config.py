"""Logistics' settings beyond the platform's (services.common.config), checked at start so that
a typo stops the process with a message that names the variable.

| variable | default | what |
|---|---|---|
| SUPPLY_ROUTING_SECONDS | 10 | PyVRP time limit per solve phase (0.1 … 600 s) |
| SUPPLY_DONATION_DEPOT | (first depot, by id, with a fitting zone) | depot that receives accepted donations first |
| SUPPLY_POPULATION | (sum of the villages' and communities' populations) | people the county's stock serves, for days of supply |
| SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL | 0 | a lot must be good this many days after arrival |
| SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY | 0 | a lot is picked only if good this many days after the delivery day |
| SUPPLY_TRIP_SPEED_KMH | 30 | average road speed for routing (1 … 200) |
| SUPPLY_DELIVERY_STAFF_PER_DROP_POINT | 0 | delivery persons known per drop point for the staffing check (0: every drop point reports short) |
| SUPPLY_LEDGER_KEY | a published development key outside production; required in production | the county key of the ledger's hash chain (HMAC-SHA256), at least 32 characters (ADR 0007) |
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.auth import MIN_KEY_CHARS
from services.common.config import DEV_LEDGER_KEY, ConfigError, Settings


@dataclass(frozen=True)
class LogisticsConfig:
    ledger_key: bytes
    routing_s: float = 10.0
    donation_depot: str = ""  # "": the first depot, by id, with a fitting zone
    population: int | None = None  # None: the sum of the requesters' populations
    min_shelf_days_on_arrival: int = 0
    min_days_left_at_delivery: int = 0
    trip_speed_kmh: float = 30.0
    delivery_staff_per_drop_point: int = 0


def _num(env: dict, name: str, default: float, lo: float, hi: float, cast=float):
    raw = env.get(name, "").strip()
    if not raw:
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def load_logistics_config(settings: Settings) -> LogisticsConfig:
    env = settings.extra
    population = env.get("SUPPLY_POPULATION", "").strip()
    return LogisticsConfig(
        ledger_key=ledger_key(settings),
        routing_s=_num(env, "SUPPLY_ROUTING_SECONDS", 10, 0.1, 600),
        donation_depot=env.get("SUPPLY_DONATION_DEPOT", "").strip(),
        population=_num(env, "SUPPLY_POPULATION", 0, 0, 10**9, int) if population else None,
        min_shelf_days_on_arrival=_num(env, "SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL", 0, 0, 3650, int),
        min_days_left_at_delivery=_num(env, "SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY", 0, 0, 3650, int),
        trip_speed_kmh=_num(env, "SUPPLY_TRIP_SPEED_KMH", 30, 1, 200),
        delivery_staff_per_drop_point=_num(env, "SUPPLY_DELIVERY_STAFF_PER_DROP_POINT", 0, 0,
                                           10_000, int),
    )


def ledger_key(settings: Settings) -> bytes:
    """SUPPLY_LEDGER_KEY: signs every new ledger line; whoever holds it can verify the chain.
    Production refuses a missing, published or short key at start (services.common.production)."""
    raw = settings.extra.get("SUPPLY_LEDGER_KEY", "").strip()
    if not raw and settings.env != "production":
        raw = DEV_LEDGER_KEY
    if len(raw) < MIN_KEY_CHARS:
        raise ConfigError(f"SUPPLY_LEDGER_KEY must be a random key of at least {MIN_KEY_CHARS} "
                          f"characters (keys the ledger's hash chain) / SUPPLY_LEDGER_KEY 须为至少 "
                          f"{MIN_KEY_CHARS} 个字符的随机密钥(台账哈希链密钥)")
    return raw.encode()
