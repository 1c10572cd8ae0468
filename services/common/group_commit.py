"""Group commit: one writer applies many concurrent idempotent writes in one transaction."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from services.common.db import UnitOfWork
from services.common.idempotency import check_idempotency_key, store_response, stored_response


class GroupCommitter:
    """Group commit for idempotent writes: concurrent requests are queued and one writer applies
    up to `max_batch` of them in a single transaction, then commits once.

    run(): any write, each under its own savepoint (a refused request rolls back alone) and with
    its own idempotency key. run_many(bulk, item): items queued with the same `bulk` function
    are handed to it together (see run_idempotent_many), so a hot write costs one statement
    per table per group instead of several per request. arun_many: the same, awaited.

    The writer is a thread of its own, or, given `loop`, that asyncio event loop: requests
    awaited on the loop are then queued and written without a thread hand-off (the write blocks
    the loop while it runs; writes are serial anyway). Requests from other threads are handed
    to the loop and written each in a transaction of its own, so that the loop is never held
    longer than one of them takes. Calls reach the loop one by one, so a group written at once
    would hold one request (measured: groups of 1.1 and half the throughput; docs/adr/0004). On
    the loop a group is therefore written once `quiet` seconds pass with no new request,
    `linger` seconds after its first request at the latest, or as soon as it is full.

    On SQLite, where writes are serial anyway, this replaces a BEGIN/COMMIT and a lock hand-off
    per request by one per batch; on PostgreSQL it saves a WAL flush per request. A caller sees
    exactly what run_idempotent would give it: its answer, or its own exception.
    """

    def __init__(self, uow_factory: Callable[[], UnitOfWork], max_batch: int = 64,
                 loop: asyncio.AbstractEventLoop | None = None, linger: float = 0.005,
                 quiet: float = 0.001):
        self.uow_factory = uow_factory
        self.max_batch = max_batch
        self.loop = loop
        self.linger = linger
        self.quiet = min(quiet, linger)
        self.flush: asyncio.Handle | None = None
        self.queued: list = []  # on the loop: requests waiting for the next write
        self.pending: queue.Queue = queue.Queue()  # to the writer thread
        if loop is None:
            threading.Thread(target=self._loop, name="group-commit", daemon=True).start()

    def run(self, scope: str, key: str, fingerprint: str,
            work: Callable[[UnitOfWork], bytes]) -> bytes:
        check_idempotency_key(key)
        return self.run_many(self._one_by_one, (scope, key, fingerprint, work))

    def run_many(self, bulk: Callable[[UnitOfWork, list[Any]], list[bytes | Exception]],
                 item: Any) -> bytes:
        """Queue `item`; bulk(uow, items) answers each item of a group, in order, with its
        response or its exception, writing in the group's transaction. If bulk raises, it
        must leave nothing written (its writes under a savepoint, as run_idempotent_many).
        Blocks; not for the event loop's own thread (use arun_many there)."""
        done: Future = Future()
        if self.loop is None:
            self.pending.put((bulk, item, done))
        else:
            # alone: a sync write may be large (a 500-demand batch), and the loop must keep
            # answering other calls and health checks between writes
            self.loop.call_soon_threadsafe(self._apply, [(bulk, item, done)])
        return done.result()

    async def arun_many(self, bulk: Callable[[UnitOfWork, list[Any]], list[bytes | Exception]],
                        item: Any) -> bytes:
        if self.loop is None:
            done: Future = Future()
            self.pending.put((bulk, item, done))
            return await asyncio.wrap_future(done)
        waiting = self.loop.create_future()
        self._queue_on_loop((bulk, item, waiting))
        return await waiting

    def _queue_on_loop(self, request: tuple) -> None:
        self.queued.append(request)
        self.last_queued = self.loop.time()
        if len(self.queued) == 1:
            self.first_queued = self.last_queued
            self.flush = self.loop.call_later(self.quiet, self._write_when_due)
        elif len(self.queued) >= self.max_batch:
            self.flush.cancel()
            self._write_queued()

    def _write_when_due(self) -> None:
        """Write once no request has been queued for `quiet` seconds (the calls that were
        coming have come), and at the latest `linger` after the first."""
        due = min(self.last_queued + self.quiet, self.first_queued + self.linger)
        now = self.loop.time()
        if now >= due - 0.0001:
            self._write_queued()
        else:
            self.flush = self.loop.call_later(due - now, self._write_when_due)

    def _write_queued(self) -> None:
        batch, self.queued = self.queued[:self.max_batch], self.queued[self.max_batch:]
        if self.queued:
            self.flush = self.loop.call_soon(self._write_queued)
        self._apply(batch)

    @staticmethod
    def _one_by_one(uow: UnitOfWork, items: list[Any]) -> list[bytes | Exception]:
        results: list[bytes | Exception] = []
        for scope, key, fingerprint, work in items:
            savepoint = uow.conn.begin_nested()
            try:
                response = stored_response(uow, scope, key, fingerprint)
                if response is None:
                    response = work(uow)
                    store_response(uow, scope, key, fingerprint, response)
                results.append(response)
                savepoint.commit()
            except Exception as exc:  # noqa: BLE001 - handed to that request's caller
                savepoint.rollback()
                results.append(exc)
        return results

    def _loop(self) -> None:
        while True:
            batch = [self.pending.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            self._apply(batch)

    def _apply(self, batch: list) -> None:
        groups: dict[Any, list[int]] = {}
        for i, (bulk, _, _) in enumerate(batch):
            groups.setdefault(bulk, []).append(i)
        results: list[Any] = [None] * len(batch)
        try:
            with self.uow_factory() as uow:
                for bulk, members in groups.items():
                    try:
                        answers = bulk(uow, [batch[i][1] for i in members])
                    except Exception as exc:  # noqa: BLE001 - this group's requests fail, not the others
                        answers = [exc] * len(members)
                    for i, answer in zip(members, answers, strict=True):
                        results[i] = answer
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - the whole batch failed to commit
            results = [exc] * len(batch)
        for (_, _, done), result in zip(batch, results, strict=True):
            if done.cancelled():  # the caller went away; its write stands, its key answers a retry
                continue
            if isinstance(result, BaseException):
                done.set_exception(result)
            else:
                done.set_result(result)
