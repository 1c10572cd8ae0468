"""When a notification that failed is tried again, and when it is given up (dead letter)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

_NAMESPACE = uuid.UUID("0b6f3d2e-6c1a-4e0e-9a51-6e6f74696679")


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 5.0
    cap_s: float = 600.0
    dead_after: timedelta = timedelta(days=3)

    def delay(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failed ones: base × 2^(n-1), at most cap."""
        return min(self.cap_s, self.base_s * 2 ** max(0, min(attempts, 32) - 1))

    def is_dead(self, created_at: datetime, now: datetime) -> bool:
        return now - created_at >= self.dead_after


def notification_id(event_id: str, channel_id: str) -> str:
    """One id per (event, channel), the same however often the event is delivered."""
    return str(uuid.uuid5(_NAMESPACE, f"{event_id}/{channel_id}"))
