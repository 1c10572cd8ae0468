"""One nameko worker process for the light workers (issue #16 item 5, ADR 0009): `python -m
services.workers [SERVICE…]` runs intake's, market's and notify's worker services in one
eventlet process, a nameko container each, instead of one interpreter per worker; `supplyctl up`
starts it. Their handlers only consume events and write their own database in short
transactions. Allocation's, logistics' and monitoring's workers keep a process each: plan and
routing CPU, and alert handling, must not wait behind another service's handler.
`python -m services.<service> worker` still runs one worker alone (docker-compose.yml and
deploy/k8s run one per service)."""

from __future__ import annotations

SHARED = ("intake", "market", "notify")  # the workers supplyctl runs in one process
