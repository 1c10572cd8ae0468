"""Market policy: every number that is a rule of the channel (docs/market.md, Rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time


@dataclass(frozen=True)
class MarketPolicy:
    """order_cutoff: local time on D-1 after which orders for day D are refused (an outlet may
    have its own). purchase_list_cutoff: local time on D-1 by which a purchase list for pickup
    day D reaches its supply point. purchase_interval_days: at least this many days between two
    pickup days of one village (代买 every three days)."""

    order_cutoff: time = time(20, 0)
    order_cutoff_days_before: int = 1
    max_lines: int = 50
    max_quantity_per_line: int = 99
    max_price_fen: int = 100_000
    purchase_list_cutoff: time = time(18, 0)
    purchase_list_days_before: int = 1
    purchase_interval_days: int = 3
    max_purchase_lines: int = 100
    max_purchase_quantity_per_line: int = 10_000


DEFAULT_POLICY = MarketPolicy()
