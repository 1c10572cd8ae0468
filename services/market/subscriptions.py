"""Events market consumes (see docs/events.md); each matches a handler in entrypoints/worker.py."""

from services.common.messaging import Subscription

SUBSCRIPTIONS = (
    Subscription("intake", "requester_registered", "market", "on_requester_registered"),
    Subscription("intake", "requester_updated", "market", "on_requester_updated"),
)
