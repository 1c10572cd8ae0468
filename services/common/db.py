"""Database engine, the unit of work, and the platform tables every service carries in its own
database: the outbox, processed events (idempotent consumers) and idempotency keys (write RPCs).

SQLite (a file per service under var/) is the embedded default; PostgreSQL is the production
path. SQLite write transactions start with BEGIN IMMEDIATE so that the API, worker and relay
processes sharing one file queue for the write lock instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.common.errors import Conflict, InvalidInput
from services.common.serde import dumps

UTCDateTime = DateTime(timezone=True)
Json = JSON().with_variant(JSONB(), "postgresql")  # aggregates stored whole; JSONB on PostgreSQL


def platform_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the platform tables to a service's metadata (each service owns its copy)."""
    outbox = Table(
        "outbox", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("exchange", String(200), nullable=False),
        Column("routing_key", String(100), nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
    )
    Index("ix_outbox_unpublished", outbox.c.published_at, outbox.c.id)
    processed = Table(
        "processed_events", metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )
    idem = Table(
        "idempotency_keys", metadata,
        Column("scope", String(200), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )
    dead = Table(
        "dead_letters", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("consumer", String(200), nullable=False),
        Column("event_id", String(64), nullable=True),
        Column("body", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("failed_at", UTCDateTime, nullable=False),
        Column("replayed_at", UTCDateTime, nullable=True),
    )
    return {"outbox": outbox, "processed_events": processed, "idempotency_keys": idem,
            "dead_letters": dead}


READ_ONLY = "supply_read_only"
"""Execution option for a connection that only reads: on SQLite its transactions take no write
lock, so they neither wait for writers nor hold them up (WAL readers see a snapshot)."""


def make_engine(url: str, *, pool_size: int = 10, checkpoint_every: float | None = None) -> Engine:
    """checkpoint_every (SQLite): copy the write-ahead log back into the database on a thread of
    its own every that many seconds, instead of in whichever commit crosses 1 000 log pages.
    For the process on the hot write path: the thread copies outside the GIL, on the other
    core (intake's write path: −6 % CPU per demand in the writing thread)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        in_file = bool(path) and path != ":memory:"
        if in_file:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=dumps)
        background_checkpoint = in_file and checkpoint_every is not None

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit is on the disk before the caller is answered (NORMAL would
            # lose the last acknowledged demands to a power cut; costs one fsync per commit,
            # which the group commit shares among its group)
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            if background_checkpoint:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        if background_checkpoint:
            threading.Thread(target=_checkpoint_forever, args=(path, checkpoint_every),
                             name="wal-checkpoint", daemon=True).start()

        # One writer at a time within the process: threads queue on a lock instead of spinning in
        # SQLite's busy handler (whose sleeps grow to 100 ms); other processes still wait on
        # the file lock through busy_timeout.
        writer = threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")  # a snapshot to read from: takes no write lock
                return
            writer.acquire()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                writer.release()
                raise
            conn.info["holds_writer"] = True

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _sqlite_end(conn):
            if conn.info.pop("holds_writer", False):
                writer.release()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         json_serializer=dumps)


def _checkpoint_forever(path: str, every: float) -> None:
    """PASSIVE checkpoints: never wait for readers or writers; what a reader still needs is
    copied by a later one. Other processes' commits keep checkpointing as usual too."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    while True:
        time.sleep(every)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            logging.getLogger(__name__).warning("wal checkpoint failed; retrying",
                                                extra={"error": str(exc)})


def is_postgres(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "postgresql"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UnitOfWork:
    """One transaction: the state change and the events it records commit together or not at all.

    Use as a context manager; leaving without commit() rolls back.
    """

    def __init__(self, engine: Engine, tables: dict[str, Table], source: str,
                 clock_now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.tables = tables
        self.source = source
        self.now = clock_now
        self.conn: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        self.conn = self.engine.connect()
        self.conn.begin()
        return self

    def __exit__(self, *exc) -> None:
        assert self.conn is not None
        if self.conn.in_transaction():
            self.conn.rollback()
        self.conn.close()
        self.conn = None

    def commit(self) -> None:
        assert self.conn is not None
        self.conn.commit()

    def rollback(self) -> None:
        assert self.conn is not None
        self.conn.rollback()

    def record_event(self, event_type: str, payload: dict[str, Any], *,
                     correlation_id: str = "", schema_version: int = 1) -> str:
        """Write an event to the outbox in this transaction; the relay publishes it after commit."""
        return self.record_events([(event_type, payload, schema_version)],
                                  correlation_id=correlation_id)[0]

    def record_events(self, events: list[tuple[str, dict[str, Any], int]], *,
                      correlation_id: str = "") -> list[str]:
        """record_event for many (event_type, payload, schema_version) in one statement."""
        from services.common.logs import correlation_id as current_correlation_id
        from services.common.messaging import exchange_of, make_envelope

        assert self.conn is not None
        if not events:
            return []
        correlation_id = correlation_id or current_correlation_id.get()  # the call's or event's
        occurred, created, exchange = self.now(), utcnow(), exchange_of(self.source)
        envelopes = [make_envelope(self.source, event_type, payload, correlation_id=correlation_id,
                                   schema_version=version, occurred_at=occurred)
                     for event_type, payload, version in events]
        insert_many(self.conn, self.tables["outbox"], [{
            "event_id": e["event_id"], "exchange": exchange, "routing_key": e["event_type"],
            "created_at": created, "attempts": 0,
            "body": dumps(e),
        } for e in envelopes])
        return [e["event_id"] for e in envelopes]


_inserts: dict[tuple, tuple[str, tuple[str, ...], tuple[Callable | None, ...]] | None] = {}


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT rows (dicts with the same keys) of `table` with one executemany on the driver.

    The statement is compiled once per table, columns and dialect, and each column's bind
    processor (dates to text on SQLite, JSON encoding …) is applied here. This skips what
    SQLAlchemy does again on every execute (cache key, compiled parameters, per-row processing
    through its execution context): −4.4 % instructions per demand on intake's write path.
    Tables whose missing columns have Python-side defaults go through SQLAlchemy as usual."""
    if not rows:
        return
    keys = tuple(rows[0])
    plan_key = (table, keys, conn.dialect.name)
    if plan_key not in _inserts:
        _inserts[plan_key] = _insert_plan(conn, table, keys)
    plan = _inserts[plan_key]
    if plan is None:
        conn.execute(insert(table), list(rows))
        return
    sql, order, processors = plan
    params = [tuple(row[k] if p is None else p(row[k]) for k, p in zip(order, processors, strict=True))
              for row in rows]
    if not conn.dialect.positional:
        params = [dict(zip(order, values, strict=True)) for values in params]
    conn.exec_driver_sql(sql, params)


def _insert_plan(conn: Connection, table: Table, keys: tuple[str, ...]):
    if any(c.default is not None and c.key not in keys for c in table.columns):
        return None
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(keys))
    order = tuple(compiled.positiontup) if conn.dialect.positional else keys
    processors = tuple(table.c[k].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                       for k in order)
    return compiled.string, order, processors


def request_fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_lookups: dict[Any, Any] = {}


def _idempotency_lookup(table: Table):
    """The lookup statement, built once per table (SQLAlchemy then reuses its compiled form)."""
    if id(table) not in _lookups:
        _lookups[id(table)] = select(table.c.request_hash, table.c.response).where(
            table.c.scope == bindparam("scope"), table.c.key == bindparam("key"))
    return _lookups[id(table)]


def check_idempotency_key(key: str) -> None:
    if not key or not key.strip():
        raise InvalidInput("idempotency_key", "required for every write (any unique string, ≤ 200 chars)")
    if len(key) > 200:
        raise InvalidInput("idempotency_key", "longer than 200 characters")


def stored_response(uow: UnitOfWork, scope: str, key: str, fingerprint: str) -> bytes | None:
    """The answer already given under (scope, key), None if none; Conflict if the key was used
    for a different request."""
    assert uow.conn is not None
    row = uow.conn.execute(_idempotency_lookup(uow.tables["idempotency_keys"]),
                           {"scope": scope, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise Conflict(f"idempotency_key {key!r} was already used for a different request")
    return bytes(row.response)


def store_response(uow: UnitOfWork, scope: str, key: str, fingerprint: str, response: bytes) -> None:
    assert uow.conn is not None
    uow.conn.execute(insert(uow.tables["idempotency_keys"]), {
        "scope": scope, "key": key, "request_hash": fingerprint, "response": response,
        "created_at": utcnow()})


def _idempotency_lookup_many(table: Table):
    """Like _idempotency_lookup, for a list of keys (scope checked by the caller)."""
    if ("many", id(table)) not in _lookups:
        _lookups[("many", id(table))] = select(
            table.c.scope, table.c.key, table.c.request_hash, table.c.response,
        ).where(table.c.key.in_(bindparam("keys", expanding=True)))
    return _lookups[("many", id(table))]


def stored_responses(uow: UnitOfWork, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, bytes]]:
    """(request_hash, response) already stored under each of these (scope, key), in one query
    per 500 keys."""
    assert uow.conn is not None
    lookup = _idempotency_lookup_many(uow.tables["idempotency_keys"])
    found: dict[tuple[str, str], tuple[str, bytes]] = {}
    wanted = sorted({key for _, key in keys})
    for start in range(0, len(wanted), 500):
        rows = uow.conn.execute(lookup, {"keys": wanted[start:start + 500]})
        found.update({(r.scope, r.key): (r.request_hash, bytes(r.response)) for r in rows
                      if (r.scope, r.key) in keys})
    return found


def run_idempotent_many(uow: UnitOfWork, requests: Sequence[tuple[str, str, str]],
                        prepare: Callable[[int], tuple[bytes, Any]],
                        write: Callable[[list[Any]], None]) -> list[bytes | Exception]:
    """run_idempotent for many requests in the caller's transaction, with one insert per table
    for all of them instead of statements per request.

    requests: (scope, key, fingerprint) of each. prepare(i) checks request i and returns its
    answer and the rows it would write, without writing; an exception it raises becomes that
    request's result alone. write(rows of every accepted request) inserts them. A key stored
    before answers with its stored response; a key repeated within `requests` answers as its
    first occurrence did (Conflict in both cases if the request differs).

    The first attempt assumes every key is new and looks none up: the keys' unique index
    refuses the insert if one was stored before (a retried request, or a concurrent writer),
    and then the set starts again from one lookup of all its keys.
    """
    assert uow.conn is not None
    for attempt in range(5):
        stored = stored_responses(uow, {(scope, key) for scope, key, _ in requests}) if attempt else {}
        results: list[bytes | Exception] = []
        staged: list[Any] = []
        new_keys: list[dict[str, Any]] = []
        created = utcnow()
        for i, (scope, key, fingerprint) in enumerate(requests):
            try:
                check_idempotency_key(key)
                prior = stored.get((scope, key))
                if prior is not None:
                    if prior[0] != fingerprint:
                        raise Conflict(f"idempotency_key {key!r} was already used for a different request")
                    results.append(prior[1])
                    continue
                answer, rows = prepare(i)
            except Exception as exc:  # noqa: BLE001 - prepare wrote nothing: the error is this request's alone
                results.append(exc)
                continue
            stored[(scope, key)] = (fingerprint, answer)
            staged.append(rows)
            new_keys.append({"scope": scope, "key": key, "request_hash": fingerprint,
                             "response": answer, "created_at": created})
            results.append(answer)
        if not staged:
            return results
        try:
            with uow.conn.begin_nested():
                write(staged)
                insert_many(uow.conn, uow.tables["idempotency_keys"], new_keys)
            return results
        except IntegrityError:
            continue
    raise Conflict("concurrent requests with the same idempotency keys did not settle; retry")


def run_idempotent(uow: UnitOfWork, scope: str, key: str, fingerprint: str,
                   work: Callable[[UnitOfWork], bytes]) -> bytes:
    """Run `work` once per (scope, key); a repeat returns the stored response unchanged.

    The key is stored in the same transaction as the effect, so a crash leaves either both or
    neither. Reusing a key for a different request is a Conflict.
    """
    check_idempotency_key(key)
    with uow:
        previous = stored_response(uow, scope, key, fingerprint)
        if previous is not None:
            return previous
        response = work(uow)
        try:
            store_response(uow, scope, key, fingerprint, response)
            uow.commit()
        except IntegrityError:
            uow.rollback()
        else:
            return response
    with uow:  # a concurrent duplicate won the race: answer with its response
        previous = stored_response(uow, scope, key, fingerprint)
    if previous is None:
        raise Conflict(f"idempotency_key {key!r}: concurrent request did not complete")
    return previous


def mark_processed(uow: UnitOfWork, consumer: str, event_id: str) -> bool:
    """Record that `consumer` handled `event_id` in this transaction; False if it already had."""
    table = uow.tables["processed_events"]
    assert uow.conn is not None
    seen = uow.conn.execute(
        select(table.c.event_id).where(table.c.consumer == consumer, table.c.event_id == event_id)
    ).first()
    if seen is not None:
        return False
    uow.conn.execute(insert(table).values(consumer=consumer, event_id=event_id, processed_at=utcnow()))
    return True


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


__all__ = [
    "UnitOfWork", "make_engine", "platform_tables", "run_idempotent", "mark_processed", "ping",
    "request_fingerprint", "new_id", "utcnow", "is_postgres", "delete", "update",
]


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
