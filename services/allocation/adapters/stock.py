"""The stock port: what allocation needs from logistics when it plans, and an in-memory adapter.

Logistics owns depots, lots and the ledger; allocation asks for a fresh snapshot of usable
stock each time it plans (DESIGN.md §1: "queries between services where a fresh answer is
needed") and never keeps its own copy of stock. The gRPC adapter is
services/allocation/adapters/logistics_client.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from services.allocation.domain import StockLot


@dataclass(frozen=True)
class DepotInfo:
    id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class StockSnapshot:
    """Usable stock at one instant: lots with available = on hand − reserved, status available,
    not expired (logistics filters), and the depots they lie in. ledger_seq: the last ledger
    line the snapshot includes (0 when unknown). rejected: lots the adapter could not read,
    as (lot_id, why), reported on the plan instead of failing it. excluded: lots logistics left
    out of `lots`, with its reason code (EXPIRED: expires before the delivery day)."""

    depots: tuple[DepotInfo, ...]
    lots: tuple[StockLot, ...]
    taken_at: datetime | None = None
    ledger_seq: int = 0
    rejected: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    excluded: tuple[tuple[StockLot, str], ...] = field(default_factory=tuple)


class StockUnavailable(RuntimeError):
    """Logistics did not answer (down, timed out, refused): the plan cannot be made now."""


class StockSource(Protocol):
    def snapshot(self, delivery_day: date, item_codes: Sequence[str]) -> StockSnapshot:
        """Usable stock for `delivery_day` of `item_codes` (empty = every item).

        Raises StockUnavailable when the stock cannot be read."""
        ...


class InMemoryStockSource:
    """A StockSource over lists held in memory (unit tests, offline demos). Records each call."""

    def __init__(self, depots: Iterable[DepotInfo] = (), lots: Iterable[StockLot] = (),
                 *, taken_at: datetime | None = None, ledger_seq: int = 0,
                 excluded: Iterable[tuple[StockLot, str]] = ()):
        self.depots = list(depots)
        self.lots = list(lots)
        self.excluded = list(excluded)
        self.taken_at = taken_at
        self.ledger_seq = ledger_seq
        self.calls: list[tuple[date, tuple[str, ...]]] = []
        self.fail_with: str | None = None

    def snapshot(self, delivery_day: date, item_codes: Sequence[str]) -> StockSnapshot:
        self.calls.append((delivery_day, tuple(item_codes)))
        if self.fail_with:
            raise StockUnavailable(self.fail_with)
        wanted = set(item_codes)
        lots = tuple(x for x in self.lots if not wanted or x.item_code in wanted)
        excluded = tuple(x for x in self.excluded if not wanted or x[0].item_code in wanted)
        return StockSnapshot(tuple(self.depots), lots, self.taken_at, self.ledger_seq,
                             excluded=excluded)
