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
import ipaddress
import os
import sys
from urllib.parse import urlparse

ENTRYPOINTS = {"api": "grpc_api", "worker": "worker", "ingest": "mqtt_ingest", "scheduler": "scheduler"}
DEFAULT_AMQP_HOST = "127.0.0.1"  # services/common/config.py's default AMQP_URL


def plain_dns_will_do(env: dict[str, str]) -> bool:
    """Whether a worker may skip eventlet's green DNS (dnspython: 0.33 s of import per worker,
    issue #16 item 5): the broker is addressed by an IP or localhost, so no lookup blocks the hub.
    A service whose worker looks names up (notify: webhooks, SMTP) declares GREEN_DNS = True."""
    raw = env.get("AMQP_URL", "").strip()
    host = urlparse(raw).hostname if raw else DEFAULT_AMQP_HOST
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def main(service: str, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    kinds = importlib.import_module(f"services.{service}").PROCESSES
    if len(argv) != 1 or argv[0] not in kinds:
        sys.exit(f"usage: python -m services.{service} {'|'.join(kinds)}")
    kind = argv[0]
    if kind == "worker":
        package = importlib.import_module(f"services.{service}")
        if not getattr(package, "GREEN_DNS", False) and plain_dns_will_do(dict(os.environ)):
            os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")  # read when eventlet is imported
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
