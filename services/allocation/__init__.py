"""Allocation (分配): the daily plan, HQ's policy, the cut-off. `python -m services.allocation <process>`."""

PROCESSES = ("api", "worker", "relay")  # the processes `python -m services.allocation` starts
