"""fresh_vhost gives a run an empty vhost: what an earlier run left in its queues is gone."""

import shutil

import pika
import pytest

from services.common.broker_admin import fresh_vhost
from tests.support.infra import run_id


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl on the broker's machine")
def test_fresh_vhost_starts_empty_every_time():
    name = f"supply-fresh-{run_id()}"
    url = fresh_vhost("amqp://guest:guest@127.0.0.1:5672/%2F", name)
    try:
        assert url.endswith("/" + name)
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare("left-over", durable=True)
        ch.basic_publish("", "left-over", b"stale", pika.BasicProperties(delivery_mode=2))
        conn.close()
        url = fresh_vhost("amqp://guest:guest@127.0.0.1:5672/%2F", name)
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            ch.queue_declare("left-over", passive=True)  # the queue and its message are gone
        conn.close()
    finally:
        import subprocess

        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)
