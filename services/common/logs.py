"""JSON logs with the correlation id of the request or event being handled: to stdout, or, when
SUPPLY_LOG_DIR is set (`supplyctl up` sets it to var/log/), to <service>-<process>.log there,
rotated at SUPPLY_LOG_MAX_MB with SUPPLY_LOG_BACKUPS old files kept."""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import sys
import uuid
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, process: str):
        super().__init__()
        self.service = service
        self.process_kind = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.service = self.service
        record.process_kind = self.process_kind
        return True


def log_path(log_dir: Path, service: str, process: str) -> Path:
    return log_dir / f"{service}-{process}.log"


def _handler(service: str, process: str, env: dict) -> logging.Handler:
    """stdout, or a size-rotated file under SUPPLY_LOG_DIR (one writer per file: one process)."""
    from services.common.config import _int

    log_dir = env.get("SUPPLY_LOG_DIR", "").strip()
    max_mb = _int(env, "SUPPLY_LOG_MAX_MB", 50, 1, 10_000)
    backups = _int(env, "SUPPLY_LOG_BACKUPS", 5, 1, 100)
    if not log_dir:
        return logging.StreamHandler(sys.stdout)
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return logging.handlers.RotatingFileHandler(
        log_path(Path(log_dir), service, process), maxBytes=max_mb * 1024 * 1024,
        backupCount=backups, encoding="utf-8")


def setup_logging(service: str, process: str, level: str = "INFO", env: dict | None = None) -> None:
    """Raises ConfigError naming the variable if a SUPPLY_LOG_* setting is wrong."""
    handler = _handler(service, process, dict(os.environ if env is None else env))
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s %(service)s %(process_kind)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_ContextFilter(service, process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pika", "kombu", "amqp", "nameko", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel("WARNING")
