"""Events monitoring consumes (see docs/events.md); each matches a handler in entrypoints/worker.py."""

from services.common.messaging import Subscription

SUBSCRIPTIONS = (
    Subscription("logistics", "zone_registered", "monitoring", "on_zone_registered"),
    Subscription("logistics", "stock_received", "monitoring", "on_stock_received"),
    Subscription("logistics", "stock_changed", "monitoring", "on_stock_changed"),
    Subscription("logistics", "lot_quarantined", "monitoring", "on_lot_quarantined"),
    Subscription("logistics", "lot_released", "monitoring", "on_lot_released"),
    Subscription("logistics", "reserve_below_floor", "monitoring", "on_reserve_below_floor"),
    Subscription("reports", "deadline_missed", "monitoring", "on_deadline_missed"),
    Subscription("market", "sellable_list_published", "monitoring", "on_sellable_list_published"),
)
