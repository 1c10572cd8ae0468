"""When the API's pool counts as saturated (services/common/grpc_server.Saturation), on a real
pool whose threads wait on events; times are given to check(), so nothing sleeps."""

from __future__ import annotations

import threading

from services.common.grpc_server import Saturation, _CountingPool
from tests.support.polling import eventually


def test_saturated_once_every_thread_is_held_and_none_freed_for_a_while():
    pool = _CountingPool(2)
    release = [threading.Event() for _ in range(3)]
    try:
        s = Saturation(pool, after=2.0)
        first = pool.submit(release[0].wait, 30)
        assert not s.check(0.0) and not s.saturated  # one thread of two held
        pool.submit(release[1].wait, 30)
        queued = pool.submit(release[2].wait, 30)
        assert pool.held == 3
        assert not s.check(1.0) and not s.check(2.9)  # full since 1.0
        assert s.check(3.0) and s.saturated
        assert not s.check(10.0)
        release[0].set()  # one finishes; the queued one takes its thread: full, but moving
        eventually(lambda: first.done() and pool.finished == 1, what="first call done")
        assert s.check(10.1) and not s.saturated
        assert not s.check(12.0) and s.check(12.1) and s.saturated  # stuck again for 2 s
        assert queued.running()
        release[1].set()
        release[2].set()
        eventually(lambda: pool.held == 0, what="pool empty")
        assert s.check(12.2) and not s.saturated and pool.finished == 3
    finally:
        for r in release:
            r.set()
        pool.shutdown(wait=True)


def test_work_cancelled_before_it_started_is_no_longer_held():
    pool = _CountingPool(1)
    release = threading.Event()
    try:
        pool.submit(release.wait, 30)
        waiting = pool.submit(release.wait, 30)
        assert pool.held == 2 and waiting.cancel()
        assert pool.held == 1
    finally:
        release.set()
        pool.shutdown(wait=True)
