"""Build logistics' context from settings: the one place that wires adapters to the domain.

Settings (environment, all optional):
  SUPPLY_ROUTING_SECONDS          PyVRP time limit per solve phase (default 10)
  SUPPLY_DONATION_DEPOT           depot that receives accepted donations first (default: the
                                  first depot, by id, with a fitting zone)
  SUPPLY_POPULATION               people the county's stock serves, for days of supply
                                  (default: sum of the villages' and communities' populations)
  SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL  a lot must be good this many days after arrival (default 0)
  SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY  a lot is picked only if good this many days after the
                                  delivery day (default 0)
  SUPPLY_TRIP_SPEED_KMH           average road speed for routing (default 30)
  SUPPLY_DELIVERY_STAFF_PER_DROP_POINT  delivery persons known per drop point for the
                                  staffing check (default 0: every drop point reports short)
  SUPPLY_LEDGER_KEY               the county key of the ledger's hash chain (HMAC-SHA256), at
                                  least 32 characters; a published development key outside
                                  production, required in production (ADR 0007)
"""

from __future__ import annotations

from services.common.auth import MIN_KEY_CHARS
from services.common.catalogue import load_catalogue
from services.common.config import DEV_LEDGER_KEY, ConfigError, Settings
from services.common.db import make_engine
from services.common.migrate import check_at_head
from services.logistics.domain.policy import (
    LedgerPolicy,
    PickPolicy,
    ReceiptPolicy,
    SupplyDaysPolicy,
    TripPolicy,
)
from services.logistics.handlers.base import LogisticsContext


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


def build_context(settings: Settings, *, pool_size: int = 10, check_schema: bool = True) -> LogisticsContext:
    engine = make_engine(settings.database_url, pool_size=pool_size)
    if check_schema:
        check_at_head("logistics", engine)
    env = settings.extra
    tz = str(settings.timezone)
    seconds = _num(env, "SUPPLY_ROUTING_SECONDS", 10, 0.1, 600)
    population = env.get("SUPPLY_POPULATION", "").strip()
    return LogisticsContext(
        engine=engine, catalogue=load_catalogue(settings.catalogue_path), clock=settings.clock(),
        timezone=tz, ledger_policy=LedgerPolicy(timezone=tz), ledger_key=ledger_key(settings),
        receipt_policy=ReceiptPolicy(timezone=tz, min_shelf_days_on_arrival=_num(
            env, "SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL", 0, 0, 3650, int)),
        pick_policy=PickPolicy(min_days_left_at_delivery=_num(
            env, "SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY", 0, 0, 3650, int)),
        supply_policy=SupplyDaysPolicy(timezone=tz),
        trip_policy=TripPolicy(timezone=tz, time_limit_s=seconds, fallback_time_limit_s=seconds,
                               speed_kmh=_num(env, "SUPPLY_TRIP_SPEED_KMH", 30, 1, 200)),
        donation_depot=env.get("SUPPLY_DONATION_DEPOT", "").strip(),
        population=_num(env, "SUPPLY_POPULATION", 0, 0, 10**9, int) if population else None,
        delivery_staff_per_drop_point=_num(env, "SUPPLY_DELIVERY_STAFF_PER_DROP_POINT", 0, 0,
                                           10_000, int),
    )
