"""What every nameko worker process shares: the database dependency and the runner.

Import this only in a worker process, after eventlet.monkey_patch() (see services/launcher.py):
grpcio does not work in a monkey-patched process, so workers never import gRPC servicers.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from nameko.extensions import DependencyProvider
from nameko.runners import ServiceRunner

from services.common.config import Settings
from services.common.consumers import Handler, consume, store_dead_letter
from services.common.db import UnitOfWork

log = logging.getLogger(__name__)


class EventConsumer:
    """Given to handler methods as `self.events`: runs one event through `consume`."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], service: str):
        self.uow_factory = uow_factory
        self.service = service
        self.dead_letter = store_dead_letter(uow_factory)

    def handle(self, method: str, body, handler: Handler) -> str:
        return consume(self.uow_factory, f"{self.service}.{method}", body, handler,
                       self.dead_letter)


class ServiceDatabase(DependencyProvider):
    """Injects an EventConsumer bound to the service's own database."""

    def __init__(self, make_uow_factory: Callable[[], Callable[[], UnitOfWork]], service: str):
        self.make_uow_factory = make_uow_factory
        self.service = service
        self.consumer: EventConsumer | None = None

    def setup(self):
        self.consumer = EventConsumer(self.make_uow_factory(), self.service)

    def get_dependency(self, worker_ctx):
        return self.consumer


def run_worker(service_classes: list[type], settings: Settings) -> None:
    config = {"AMQP_URI": settings.amqp_url, "serializer": "json", "max_workers": 8,
              "PREFETCH_COUNT": 16}
    runner = ServiceRunner(config)
    for cls in service_classes:
        runner.add_service(cls)

    def _stop(signum, frame):
        log.info("worker stopping", extra={"signal": signum})
        import eventlet

        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.start()
    log.info("worker started", extra={"services": [c.name for c in service_classes]})
    runner.wait()
