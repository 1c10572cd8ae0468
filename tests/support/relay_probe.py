"""Relay a probe database's outbox until it is empty, then exit (tests of crash recovery).

    python tests/support/relay_probe.py <sqlite path>      (env AMQP_URL, SUPPLY_FAILPOINTS)
"""

import os
import sys

from services.common.db import make_engine
from services.common.messaging import EventPublisher
from services.common.relay import OutboxRelay
from tests.support.probe_worker import tables

if __name__ == "__main__":
    engine = make_engine(f"sqlite:///{sys.argv[1]}")
    relay = OutboxRelay(engine, tables["outbox"], EventPublisher(os.environ["AMQP_URL"]), batch=50)
    while relay.run_once():
        pass
