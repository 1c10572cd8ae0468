"""One relay process for every service's outbox (issue #16 item 5): `python -m services.relays
[SERVICE…]` runs a thread per outbox (services.common.relay.run_relays) instead of one interpreter
per relay; `supplyctl up` starts it. `python -m services.<service> relay` still runs one service's
relay alone (docker-compose.yml and deploy/k8s run one per service, each next to its database)."""

from __future__ import annotations

import importlib
from pathlib import Path

SERVICES_DIR = Path(__file__).resolve().parents[1]


def relayed_services() -> list[str]:
    """The services whose PROCESSES declare a relay (each has an outbox in adapters/schema.py)."""
    return [p.parents[1].name for p in sorted(SERVICES_DIR.glob("*/adapters/schema.py"))
            if "relay" in getattr(importlib.import_module(f"services.{p.parents[1].name}"), "PROCESSES", ())]
