"""The outbox's doorbell: a unit of work that committed outbox rows rings it, and the relay of
that outbox, waiting between polls, wakes at once instead of at its next idle poll
(SUPPLY_RELAY_IDLE_MS). An alarm's event leaves the machine a poll interval sooner.

Best effort and local: a Linux abstract unix datagram socket named after the outbox's database,
so only processes of one machine and network namespace hear it, and two test stacks with their
own databases never ring each other's relay. A ring nobody hears (no relay listening, a second
relay of the same outbox, a relay in another container) is dropped; the idle poll still finds the
rows, so nothing depends on the bell but the latency.
"""

from __future__ import annotations

import hashlib
import logging
import os
import select
import socket
import sys
from functools import lru_cache

from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

SUPPORTED = sys.platform.startswith("linux")


@lru_cache(maxsize=64)
def address(database_url: str) -> bytes:
    """The bell of the outbox in DATABASE_URL (a SQLite path made absolute, no password)."""
    url: URL = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=os.path.abspath(url.database))
    key = url._replace(password=None).render_as_string(hide_password=False)  # set() keeps a None
    return b"\0supply-outbox-" + hashlib.sha256(key.encode()).hexdigest()[:24].encode()


_sender: socket.socket | None = None


def ring(database_url: str | URL) -> None:
    """Wake the relay of this database's outbox, if one listens here; never blocks, never raises."""
    global _sender
    if not SUPPORTED:
        return
    try:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        _sender.sendto(b"!", address(_text(database_url)))
    except OSError:  # nobody listens, or its queue is full: it is awake or will poll anyway
        pass


def _text(url: str | URL) -> str:
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


class Doorbell:
    """The relay's side: `wait(timeout)` returns early when the bell rings."""

    def __init__(self, database_url: str | URL):
        self.sock: socket.socket | None = None
        if not SUPPORTED:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(address(_text(database_url)))
        except OSError as exc:  # another relay of this outbox has it: this one polls
            sock.close()
            log.info("relay: outbox doorbell taken, polling only", extra={"error": str(exc)})
            return
        sock.setblocking(False)
        self.sock = sock

    def wait(self, timeout: float) -> bool:
        """Sleep up to TIMEOUT seconds or until rung; True when rung."""
        sock = self.sock
        if sock is None:
            select.select([], [], [], timeout)
            return False
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except (OSError, ValueError):  # closed meanwhile (ValueError: its fd is -1)
            return False
        if not ready:
            return False
        try:
            while sock.recv(16):
                pass
        except OSError:  # drained, or closed meanwhile
            pass
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
