"""Allocation domain: the daily plan (who gets what, from where, and why), forecasts, classes.

Pure logic: no I/O, no framework imports. See engine.allocate for the rules it applies.
"""

from .engine import allocate
from .model import (
    Demand​Line,
)
