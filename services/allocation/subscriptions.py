"""Events allocation consumes (see docs/events.md): its own view of requesters and demands."""

from services.common.messaging import Subscription

SUBSCRIPTIONS = (
    Subscription("intake", "requester_registered", "allocation", "on_requester_registered"),
    Subscription("intake", "requester_updated", "allocation", "on_requester_updated"),
    Subscription("intake", "demand_registered", "allocation", "on_demand_registered"),
    Subscription("intake", "demand_cancelled", "allocation", "on_demand_cancelled"),
    Subscription("intake", "demand_closed", "allocation", "on_demand_closed"),
)
