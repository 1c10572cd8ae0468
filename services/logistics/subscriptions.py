"""Events logistics consumes (see docs/events.md); the worker's @event_handlers match these."""

from services.common.messaging import Subscription

SUBSCRIPTIONS = (
    Subscription("intake", "donation_inspected", "logistics", "on_donation_inspected"),
    Subscription("intake", "requester_registered", "logistics", "on_requester_registered"),
    Subscription("intake", "requester_updated", "logistics", "on_requester_updated"),
    Subscription("allocation", "plan_approved", "logistics", "on_plan_approved"),
    Subscription("monitoring", "alert_raised", "logistics", "on_alert_raised"),
)
