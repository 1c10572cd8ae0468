"""Events notify consumes (see docs/notify.md); each matches a handler in entrypoints/worker.py."""

from services.common.messaging import Subscription

SUBSCRIPTIONS = (
    Subscription("monitoring", "alert_raised", "notify", "on_alert_raised"),
    Subscription("monitoring", "alert_cleared", "notify", "on_alert_cleared"),
    Subscription("reports", "deadline_missed", "notify", "on_deadline_missed"),
    Subscription("reports", "daily_report_ready", "notify", "on_daily_report_ready"),
)
