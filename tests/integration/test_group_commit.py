"""Group commit keeps run_idempotent's promises: each request gets its own answer or its own
error, a refused request rolls back alone, a repeated key answers the first result — for
one-by-one writes (run) and for bulk writes (run_many with run_idempotent_many)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from services.common.db import READ_ONLY, UnitOfWork, make_engine, platform_tables
from services.common.errors import Conflict, InvalidInput
from services.common.group_commit import GroupCommitter
from services.common.idempotency import run_idempotent_many
from tests.support.polling import eventually

metadata = MetaData()
tables = platform_tables(metadata)
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String))


@pytest.fixture
def committer(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gc.db'}")
    metadata.create_all(engine)
    tables["things"] = things
    return GroupCommitter(lambda: UnitOfWork(engine, tables, "test"), max_batch=16), engine


def make(name: str):
    def work(uow):
        if name.startswith("bad"):
            uow.conn.execute(insert(things).values(name=name))  # written, then rolled back
            raise InvalidInput("name", f"{name} refused")
        uow.conn.execute(insert(things).values(name=name))
        uow.record_event("thing_made", {"name": name})
        return name.encode()
    return work


def test_concurrent_requests_each_get_their_own_outcome(committer):
    gc, engine = committer
    names = [f"bad-{i}" if i % 7 == 0 else f"ok-{i}" for i in range(200)]

    def call(name):
        try:
            return gc.run("scope", f"key-{name}", "fp-" + name, make(name))
        except InvalidInput as exc:
            return exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, names))
    for name, result in zip(names, results, strict=True):
        if name.startswith("bad"):
            assert isinstance(result, InvalidInput) and name in result.message
        else:
            assert result == name.encode()
    with engine.connect() as conn:
        stored = {r.name for r in conn.execute(select(things.c.name))}
        events = conn.execute(select(func.count()).select_from(tables["outbox"])).scalar_one()
    assert stored == {n for n in names if n.startswith("ok")}  # refused ones left nothing
    assert events == len(stored)


def test_repeated_key_answers_the_first_result_and_a_changed_request_is_a_conflict(committer):
    gc, engine = committer
    assert gc.run("s", "k1", "fp-a", make("ok-a")) == b"ok-a"
    assert gc.run("s", "k1", "fp-a", make("ok-a")) == b"ok-a"
    with pytest.raises(Conflict):
        gc.run("s", "k1", "fp-b", make("ok-b"))
    with pytest.raises(InvalidInput, match="idempotency_key"):
        gc.run("s", "", "fp", make("ok-c"))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(things)).scalar_one() == 1


def test_the_same_key_twice_in_one_batch_is_done_once(committer):
    gc, engine = committer
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: gc.run("s", "same", "fp", make("ok-once")), range(8)))
    assert results == [b"ok-once"] * 8
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(things)).scalar_one() == 1


# ---- bulk writes: one statement per table for a whole group ---------------------------------
def bulk(uow, items: list[tuple[str, str]]) -> list[bytes | Exception]:
    """A bulk writer of things, items (key, name): a name starting with bad is refused."""
    def prepare(i: int):
        name = items[i][1]
        if name.startswith("bad"):
            raise InvalidInput("name", f"{name} refused")
        return name.encode(), name

    def write(names: list[str]) -> None:
        uow.conn.execute(insert(things), [{"name": n} for n in names])
        uow.record_events([("thing_made", {"name": n}, 1) for n in names])

    return run_idempotent_many(uow, [(f"s-{k}", k, "fp-" + n) for k, n in items], prepare, write)


def test_bulk_requests_in_one_group_each_get_their_own_outcome(committer):
    gc, engine = committer
    calls = [(f"k{i}", f"bad-{i}" if i % 5 == 0 else f"ok-{i}") for i in range(120)]
    calls += [("k1", "ok-1"), ("k2", "ok-other")]  # a repeat, and a reused key with another body

    def call(item):
        try:
            return gc.run_many(bulk, item)
        except (InvalidInput, Conflict) as exc:
            return exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, calls))
    for (_key, name), result in zip(calls[:120], results, strict=False):
        if name.startswith("bad"):
            assert isinstance(result, InvalidInput) and name in result.message
        else:
            assert result == name.encode()
    assert results[120] == b"ok-1"
    assert isinstance(results[121], Conflict) and "k2" in results[121].message
    with engine.connect() as conn:
        stored = sorted(r.name for r in conn.execute(select(things.c.name)))
        events = conn.execute(select(func.count()).select_from(tables["outbox"])).scalar_one()
    assert stored == sorted(n for _, n in calls[:120] if n.startswith("ok"))  # each once
    assert events == len(stored)


def test_bulk_a_key_repeated_within_one_call_is_done_once(committer):
    _, engine = committer
    with UnitOfWork(engine, tables, "test") as uow:
        answers = bulk(uow, [("a", "ok-a"), ("a", "ok-a"), ("a", "ok-b")])
        uow.commit()
    assert answers[:2] == [b"ok-a", b"ok-a"] and isinstance(answers[2], Conflict)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(things)).scalar_one() == 1


def test_bulk_starts_again_when_another_writer_stored_a_key_first(committer):
    """Between the key lookup and the insert another writer (PostgreSQL, another process)
    stores one of the keys: the whole set is rolled back to its savepoint and answered again,
    that request from the stored answer, the others written once."""
    _, engine = committer
    attempts = []
    with UnitOfWork(engine, tables, "test") as uow:
        def prepare(i: int):
            if i == 0 and not attempts:  # the other writer's row lands now, before our insert
                uow.conn.execute(insert(tables["idempotency_keys"]), {
                    "scope": "s", "key": "k0", "request_hash": "fp-0", "response": b"theirs",
                    "created_at": uow.now()})
            attempts.append(i)
            return f"ours-{i}".encode(), f"ok-{i}"

        def write(names):
            uow.conn.execute(insert(things), [{"name": n} for n in names])

        answers = run_idempotent_many(uow, [("s", f"k{i}", f"fp-{i}") for i in range(3)], prepare, write)
        uow.commit()
    assert answers == [b"theirs", b"ours-1", b"ours-2"]
    assert attempts == [0, 1, 2, 1, 2]
    with engine.connect() as conn:
        assert sorted(r.name for r in conn.execute(select(things.c.name))) == ["ok-1", "ok-2"]


# ---- on the event loop (the intake API's SubmitDemand) --------------------------------------
@pytest.fixture
def counted(tmp_path):
    """An engine, and a unit-of-work factory that counts the transactions it opens."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gc-loop.db'}")
    metadata.create_all(engine)
    tables["things"] = things
    opened = []

    def uow():
        opened.append(1)
        return UnitOfWork(engine, tables, "test")
    return engine, uow, opened


def test_on_the_loop_concurrent_calls_are_written_in_groups_with_their_own_outcomes(counted):
    engine, uow, opened = counted
    calls = [(f"k{i}", f"bad-{i}" if i % 6 == 0 else f"ok-{i}") for i in range(60)]

    async def main():
        gc = GroupCommitter(uow, max_batch=16, loop=asyncio.get_running_loop(), linger=0.01)

        async def call(item):
            try:
                return await gc.arun_many(bulk, item)
            except InvalidInput as exc:
                return exc
        return await asyncio.gather(*(call(c) for c in calls))

    results = asyncio.run(main())
    for (_key, name), result in zip(calls, results, strict=True):
        if name.startswith("bad"):
            assert isinstance(result, InvalidInput) and name in result.message
        else:
            assert result == name.encode()
    assert len(opened) == 4  # 60 calls queued in one turn of the loop: groups of 16, 16, 16, 12
    with engine.connect() as conn:
        stored = sorted(r.name for r in conn.execute(select(things.c.name)))
    assert stored == sorted(n for _, n in calls if n.startswith("ok"))


def test_on_the_loop_calls_from_other_threads_are_written_one_by_one_between_the_groups(counted):
    """Sync writers (other RPCs, on the pool) hand their write to the loop; each is written
    alone, so one large write never holds the loop for several."""
    engine, uow, opened = counted

    async def main():
        loop = asyncio.get_running_loop()
        gc = GroupCommitter(uow, max_batch=64, loop=loop, linger=0.05, quiet=0.05)
        with ThreadPoolExecutor(4) as pool:
            from_threads = [loop.run_in_executor(pool, gc.run_many, bulk, (f"t{i}", f"ok-t{i}"))
                            for i in range(8)]
            on_loop = [gc.arun_many(bulk, (f"l{i}", f"ok-l{i}")) for i in range(8)]
            return await asyncio.gather(*from_threads, *on_loop)

    results = asyncio.run(main())
    assert results == [f"ok-t{i}".encode() for i in range(8)] + [f"ok-l{i}".encode() for i in range(8)]
    assert len(opened) == 8 + 1  # each sync write alone; the 8 calls on the loop in one group
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(things)).scalar_one() == 16


def test_on_the_loop_a_caller_that_goes_away_does_not_lose_the_others(counted):
    engine, uow, _ = counted

    async def main():
        gc = GroupCommitter(uow, loop=asyncio.get_running_loop(), linger=0.02)
        gone = asyncio.ensure_future(gc.arun_many(bulk, ("gone", "ok-gone")))
        staying = asyncio.ensure_future(gc.arun_many(bulk, ("stay", "ok-stay")))
        await asyncio.sleep(0)  # both queued
        gone.cancel()
        assert await staying == b"ok-stay"
        # the cancelled caller's demand was written with its key: its retry gets that answer
        return await gc.arun_many(bulk, ("gone", "ok-gone"))

    assert asyncio.run(main()) == b"ok-gone"
    with engine.connect() as conn:
        assert sorted(r.name for r in conn.execute(select(things.c.name))) == ["ok-gone", "ok-stay"]


def test_on_the_loop_a_group_is_written_when_calls_stop_coming_or_at_the_latest_after_linger(counted):
    _, uow, opened = counted

    async def main():
        loop = asyncio.get_running_loop()
        # quiet: a lone call is written once no other call comes, long before its 30 s linger
        gc = GroupCommitter(uow, loop=loop, linger=30, quiet=0.01)
        assert await asyncio.wait_for(gc.arun_many(bulk, ("lone", "ok-lone")), 5) == b"ok-lone"
        # linger: calls that keep coming (every 5 ms, more often than quiet) are still written
        # 0.1 s after the first of them, not only once they stop
        gc = GroupCommitter(uow, loop=loop, linger=0.1, quiet=0.05)
        started = loop.time()
        first = asyncio.ensure_future(gc.arun_many(bulk, ("s0", "ok-s0")))
        for i in range(1, 200):
            if first.done():
                break
            asyncio.ensure_future(gc.arun_many(bulk, (f"s{i}", f"ok-s{i}")))
            await asyncio.sleep(0.005)
        assert await first == b"ok-s0"
        return loop.time() - started, i

    waited, queued = asyncio.run(main())
    assert queued < 199, f"the first call of a steady stream waited {waited:.2f} s, for the stream to end"
    assert len(opened) >= 2


def test_background_checkpoint_copies_the_log_into_the_database_while_commits_do_not(tmp_path):
    path = tmp_path / "ck.db"
    engine = make_engine(f"sqlite:///{path}", checkpoint_every=0.05)
    metadata.create_all(engine)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        conn.execute(insert(things), [{"name": "x" * 1000} for _ in range(3000)])  # ~3 MB of log;
        # the commit leaves it all in the log (wal_autocheckpoint=0): only the thread copies it
    eventually(lambda: path.stat().st_size > 3_000_000, what="log copied into the database file")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(things)).scalar() == 3000


def test_every_sqlite_connection_syncs_the_log_at_each_commit(tmp_path):
    """synchronous=FULL in WAL mode: the log is synced at every commit, so an answered write
    survives a power cut, not only a crash of the process (NORMAL syncs only at checkpoints)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    with engine.connect() as first, engine.connect() as second:  # each connection, not only one
        for conn in (first.execution_options(**{READ_ONLY: True}),
                     second.execution_options(**{READ_ONLY: True})):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
