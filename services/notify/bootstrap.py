"""Build notify's context from settings: the one place that wires adapters to the domain."""

from __future__ import annotations

import functools
import logging

from services.common.config import Settings
from services.common.db import make_engine
from services.common.migrate import check_at_head
from services.notify.adapters import senders
from services.notify.config import notify_config
from services.notify.handlers import NotifyContext

log = logging.getLogger(__name__)


def build_context(settings: Settings) -> tuple[NotifyContext, float]:
    """The context and the sender's interval in seconds."""
    config = notify_config(settings)
    engine = make_engine(settings.database_url, pool_size=4)
    check_at_head("notify", engine)
    log.info("notify channels", extra={"channels": [f"{c.id}:{c.type}" for c in config.channels]})
    return NotifyContext(engine=engine, channels=config.channels, retry=config.retry,
                         send=functools.partial(senders.send, http_timeout=config.http_timeout_s)), \
        config.send_interval_s
