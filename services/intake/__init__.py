"""Intake (需求登记): requesters, demands, special needs, donations. `python -m services.intake <process>`."""

PROCESSES = ("api", "worker", "relay")  # the processes `python -m services.intake` starts
