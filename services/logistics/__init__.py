"""Logistics (物流): depots, receipts, stock, trips, delivery, the ledger. `python -m services.logistics <process>`."""

PROCESSES = ("api", "worker", "relay")  # the processes `python -m services.logistics` starts
