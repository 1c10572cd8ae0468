"""Group commit keeps run_idempotent's promises: each request gets its own answer or its own
error, a refused request rolls back alone, a repeated key answers the first result."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from services.common.db import GroupCommitter, UnitOfWork, make_engine, platform_tables
from services.common.errors import Conflict, InvalidInput

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
