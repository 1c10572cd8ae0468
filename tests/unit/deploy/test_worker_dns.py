"""Workers skip eventlet's green DNS (dnspython, ≈ 0.33 s of import each; issue #16 item 5) when
the broker is addressed by an IP or localhost; a service whose worker looks names up keeps it."""

from __future__ import annotations

import pytest

import services.notify
from services.launcher import plain_dns_will_do


@pytest.mark.parametrize(("url", "plain"), [
    ("amqp://guest:guest@127.0.0.1:5672/%2F", True),
    ("amqp://u:p@localhost/%2F", True),
    ("amqps://u:p@[::1]:5671/", True),
    ("amqp://u:p@10.0.3.7/", True),
    ("amqp://u:p@rabbitmq:5672/%2F", False),  # docker-compose: a name, looked up by the hub
    ("amqp://u:p@mq.county.example/", False),
])
def test_plain_dns_only_when_the_broker_is_an_address(url, plain):
    assert plain_dns_will_do({"AMQP_URL": url}) is plain


def test_the_default_broker_is_an_address():
    assert plain_dns_will_do({}) is True


def test_notify_keeps_green_dns_for_its_webhooks_and_smtp():
    assert services.notify.GREEN_DNS is True
