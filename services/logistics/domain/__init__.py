"""Logistics domain (RULES.md §4, §8, §9, §10): depots, zones, lots, the append-only ledger
(台账), receipts with segregation, FEFO picking, days of supply, trips and proof of delivery.

Pure logic: no I/O, no framework imports. Times are timezone-aware arguments.
"""
