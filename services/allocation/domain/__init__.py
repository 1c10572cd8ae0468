"""Allocation domain: the daily plan (who gets what, from where, and why), forecasts, classes.

Pure logic: no I/O, no framework imports. engine.allocate documents the rules it applies.
"""

from .engine import allocate
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

__all__ = [
    "DemandLine", "Depot", "ExcludedLot", "LotPick", "Plan", "PlanLine", "PlanWarning", "Policy",
    "Reason", "Requester", "ReserveDraw", "ReserveFloor", "StockLot", "Substitution",
    "TierSummary", "allocate", "reserve_floors",
]
