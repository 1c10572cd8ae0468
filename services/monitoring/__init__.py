"""Monitoring (监测): zones, sensors, alarms, lots. `python -m services.monitoring <process>`."""

PROCESSES = ("api", "worker", "relay", "ingest")  # the processes `python -m services.monitoring` starts
