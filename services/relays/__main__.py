from __future__ import annotations

import importlib
import sys

from services.relays import relayed_services


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    offered = relayed_services()
    services = argv or offered
    if not services or set(services) - set(offered):
        sys.exit(f"usage: python -m services.relays [{'|'.join(offered)} …]")
    from services.common.config import ConfigError, load_settings
    from services.common.logs import setup_logging
    from services.common.relay import run_relays

    try:
        settings = {s: load_settings(s) for s in services}
        setup_logging("relays", "relay", settings[services[0]].log_level)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    outboxes = {s: (settings[s], importlib.import_module(f"services.{s}.adapters.schema").tables["outbox"])
                for s in services}
    sys.exit(run_relays(outboxes))


if __name__ == "__main__":
    main()
