"""Allocation domain: the daily plan (who gets what, from where, and why), forecasts, classes.

Pure logic: no I/O, no framework imports. engine.allocate documents the rules it applies.
`allocate` is imported from the engine on first use: the engine holds numpy and ortools
(≈ 23 MiB), which an allocation process that has computed no plan does not need (issue #16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import (
    DemandLine,
    Depot,
    ExcludedLot,
    LotPick,
    Plan,
    PlanLine,
    PlanWarning,
    Reason,
    Requester,
    ReserveDraw,
    ReserveFloor,
    StockLot,
    Substitution,
    TierSummary,
)
from .policy import Policy, reserve_floors

if TYPE_CHECKING:
    from .engine import allocate


def __getattr__(name: str):
    if name == "allocate":
        from .engine import allocate

        return allocate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DemandLine", "Depot", "ExcludedLot", "LotPick", "Plan", "PlanLine", "PlanWarning", "Policy",
    "Reason", "Requester", "ReserveDraw", "ReserveFloor", "StockLot", "Substitution",
    "TierSummary", "allocate", "reserve_floors",
]
