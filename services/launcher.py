"""`python -m services.<service> <process>`: run one process of a service, one of the PROCESSES
its package declares (services/<service>/__init__.py).

api     the gRPC API (grpc.aio, no eventlet: grpcio does not work under it; ADR 0004)
worker  the nameko worker (event handlers, timers); eventlet-patched before anything else
relay   the outbox relay (committed events → RabbitMQ, broker-acknowledged batches)
ingest  monitoring's MQTT ingest
scheduler  the reports' process (the 17:30 report, the day's deadlines, its outbox relay)
"""

from __future__ import annotations

import importlib
import sys

ENTRYPOINTS = {"api": "grpc_api", "worker": "worker", "ingest": "mqtt_ingest", "scheduler": "scheduler"}


def main(service: str, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    kinds = importlib.import_module(f"services.{service}").PROCESSES
    if len(argv) != 1 or argv[0] not in kinds:
        sys.exit(f"usage: python -m services.{service} {'|'.join(kinds)}")
    kind = argv[0]
    if kind == "worker":
        import eventlet

        eventlet.monkey_patch()
    from services.common.config import ConfigError, load_settings
    from services.common.logs import setup_logging

    try:
        settings = load_settings(service)
        setup_logging(service, kind, settings.log_level)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    if kind == "relay":
        from services.common.relay import run_relay

        schema = importlib.import_module(f"services.{service}.adapters.schema")
        run_relay(settings, schema.tables)
        return
    importlib.import_module(f"services.{service}.entrypoints.{ENTRYPOINTS[kind]}").run(settings)
