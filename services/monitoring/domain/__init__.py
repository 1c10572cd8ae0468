"""Pure domain of the monitoring service: no I/O, no framework imports."""
