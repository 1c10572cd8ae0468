"""The platform's delivery guarantees against the real RabbitMQ: outbox + relay with publisher
confirms + nameko @event_handler + idempotent consumption, including processes killed between
commit and publish, and between commit and ack."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import func, select

from services.common.db import UnitOfWork, make_engine
from services.common.messaging import EventPublisher
from services.common.relay import OutboxRelay, pending_count
from tests.support import probe_worker
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, start_probe


@pytest.fixture
def producer_db(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'producer.db'}")
    probe_worker.metadata.create_all(engine)
    return engine


def record(engine, n: int, commit: bool = True) -> list[str]:
    ids = []
    with UnitOfWork(engine, probe_worker.tables, "demo") as uow:
        for i in range(n):
            ids.append(uow.record_event("thing_happened", {"n": i}))
        if commit:
            uow.commit()
    return ids


def start_probe_db(tmp_path, service_env, failpoints: str = "") -> tuple[ServiceProcess, object]:
    db = tmp_path / "probe.db"
    proc = start_probe(service_env, tmp_path, db, "demo:thing_happened", timeout=30,
                       SUPPLY_FAILPOINTS=failpoints)
    return proc, make_engine(f"sqlite:///{db}")


def counts(engine, table) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.event_id, func.count()).group_by(table.c.event_id)).all()
    return {r[0]: r[1] for r in rows}


def test_committed_events_reach_a_nameko_handler_and_rolled_back_ones_never(tmp_path, service_env, producer_db):
    probe, probe_db = start_probe_db(tmp_path, service_env)
    try:
        sent = record(producer_db, 5)
        lost = record(producer_db, 2, commit=False)
        relay = OutboxRelay(producer_db, probe_worker.tables["outbox"],
                            EventPublisher(service_env["AMQP_URL"]))
        assert relay.run_once() == 5
        effects = eventually(lambda: len(counts(probe_db, probe_worker.effects)) == 5
                             and counts(probe_db, probe_worker.effects), what="5 effects")
        assert set(effects) == set(sent) and not set(effects) & set(lost)
        assert pending_count(producer_db, probe_worker.tables["outbox"]) == 0
    finally:
        probe.stop()


def test_relay_killed_between_publish_and_mark_publishes_again_and_consumer_applies_once(
        tmp_path, service_env, producer_db):
    probe, probe_db = start_probe_db(tmp_path, service_env)
    try:
        sent = record(producer_db, 3)
        args = [sys.executable, "tests/support/relay_probe.py", str(tmp_path / "producer.db")]
        crashed = ServiceProcess("relay", "probe", service_env, tmp_path, args=args,
                                 extra_env={"SUPPLY_FAILPOINTS": "relay_after_publish"}).start()
        assert crashed.wait_exit() == 75, crashed.log()
        assert pending_count(producer_db, probe_worker.tables["outbox"]) == 3  # published, not marked
        eventually(lambda: len(counts(probe_db, probe_worker.deliveries)) == 3, what="first delivery")
        again = ServiceProcess("relay", "probe", service_env, tmp_path, args=args).start()
        assert again.wait_exit() == 0, again.log()
        assert pending_count(producer_db, probe_worker.tables["outbox"]) == 0
        deliveries = eventually(lambda: sum(counts(probe_db, probe_worker.deliveries).values()) == 6
                                and counts(probe_db, probe_worker.deliveries), what="redelivery")
        assert deliveries == {e: 2 for e in sent}  # every event really was delivered twice
        assert counts(probe_db, probe_worker.effects) == {e: 1 for e in sent}  # applied once
    finally:
        probe.stop()


def test_worker_killed_after_commit_before_ack_gets_redelivery_and_applies_once(
        tmp_path, service_env, producer_db):
    probe, probe_db = start_probe_db(tmp_path, service_env, failpoints="worker_exit_after_commit")
    sent = record(producer_db, 1)
    OutboxRelay(producer_db, probe_worker.tables["outbox"],
                EventPublisher(service_env["AMQP_URL"])).run_once()
    assert probe.wait_exit(timeout=30) == 75, probe.log()
    assert counts(probe_db, probe_worker.effects) == {sent[0]: 1}  # committed before the crash
    probe2, _ = start_probe_db(tmp_path, service_env)
    try:
        eventually(lambda: counts(probe_db, probe_worker.deliveries).get(sent[0]) == 2,
                   what="redelivery after the crash")
        assert counts(probe_db, probe_worker.effects) == {sent[0]: 1}
    finally:
        probe2.stop()


def test_malformed_event_is_dead_lettered_and_the_consumer_keeps_going(tmp_path, service_env, producer_db):
    probe, probe_db = start_probe_db(tmp_path, service_env)
    try:
        pub = EventPublisher(service_env["AMQP_URL"])
        pub.publish("demo.events", "thing_happened", b'{"event_id": "garbage"}', "bad-1")
        sent = record(producer_db, 1)
        OutboxRelay(producer_db, probe_worker.tables["outbox"], pub).run_once()
        eventually(lambda: counts(probe_db, probe_worker.effects) == {sent[0]: 1}, what="good event applied")
        dead = probe_worker.tables["dead_letters"]
        with probe_db.connect() as conn:
            rows = conn.execute(select(dead.c.consumer, dead.c.error)).all()
        assert len(rows) == 1 and "malformed envelope" in rows[0].error
        assert probe.alive()
    finally:
        probe.stop()


def test_a_batch_with_a_refused_message_fails_whole_and_delivers_nothing(service_env):
    """The relay publishes each batch in one AMQP transaction: a message the broker refuses
    (here: to an exchange that does not exist) fails the batch, none of it reaches the queue,
    and the relay (which then keeps the rows pending) publishes it again later."""
    import pika

    from services.common.messaging import PublishError

    conn = pika.BlockingConnection(pika.URLParameters(service_env["AMQP_URL"]))
    channel = conn.channel()
    channel.exchange_declare("batch-test.events", "topic", durable=True)
    queue = channel.queue_declare("batch-test-queue", durable=True).method.queue
    channel.queue_bind(queue, "batch-test.events", "#")

    def waiting() -> int:
        return channel.queue_declare(queue, passive=True).method.message_count

    publisher = EventPublisher(service_env["AMQP_URL"])
    good = [("batch-test.events", "thing", f'{{"n": {i}}}', f"id-{i}") for i in range(3)]
    try:
        with pytest.raises(PublishError, match="connection failed|NOT_FOUND"):
            publisher.publish_batch([*good[:2], ("no-such.events", "thing", "{}", "id-x"), good[2]])
        assert waiting() == 0
        publisher.publish_batch(good)  # the publisher reconnects after the failure
        assert waiting() == 3
    finally:
        publisher.close()
        channel.queue_delete(queue)
        conn.close()


def test_a_commit_with_events_wakes_an_idle_relay_long_before_its_next_poll(tmp_path, service_env, producer_db):
    """The relay waits 60 s between idle polls here; the commit's doorbell makes it publish at once."""
    import threading

    from services.common.doorbell import Doorbell, ring

    probe, probe_db = start_probe_db(tmp_path, service_env)
    stop = threading.Event()
    bell = Doorbell(producer_db.url)
    relay = OutboxRelay(producer_db, probe_worker.tables["outbox"], EventPublisher(service_env["AMQP_URL"]),
                        idle_sleep=60, doorbell=bell)
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    try:
        thread.start()
        first = record(producer_db, 1)
        eventually(lambda: set(counts(probe_db, probe_worker.effects)) == set(first), timeout=20,
                   what="the first event (the relay's first poll or the bell)")
        later = record(producer_db, 3)
        eventually(lambda: set(counts(probe_db, probe_worker.effects)) == set(first + later), timeout=20,
                   what="events of a later commit, well before the 60 s poll")
    finally:
        stop.set()
        ring(producer_db.url)  # wakes the relay to see STOP
        thread.join(10)
        bell.close()
        probe.stop()
    assert not thread.is_alive()
