"""Events the simulated Kaltura raises when state changes; subscriptions turn them into signed webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENTRY_READY = "entry_ready"
VENDOR_TASK_STATUS = "vendor_task_status"
SESSION_ENDED = "session_ended"
ALL_KINDS = frozenset({ENTRY_READY, VENDOR_TASK_STATUS, SESSION_ENDED})


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something Kaltura would raise an event notification for; ``object`` is the API object at event time."""

    kind: str
    partner_id: int
    object: dict[str, Any]
    occurred_at: int


# (time it happened, tie-breaker, event): settle functions return these so the core can order them.
TimedEvent = tuple[int, int, SimEvent]
