"""Events intake consumes (see docs/events.md)."""

from services.common.messaging import Subscription

SUBSCRIPTIONS = (
    Subscription("logistics", "delivery_confirmed", "intake", "on_delivery_confirmed"),
    Subscription("allocation", "plan_approved", "intake", "on_plan_approved"),
    Subscription("allocation", "policy_changed", "intake", "on_policy_changed"),
)
