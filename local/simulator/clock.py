"""The simulator's controllable clock: KS expiry, task progress and dispatcher retries all read it."""

from __future__ import annotations

import threading
from collections.abc import Callable

# 2026-01-01T08:00:00Z, the same day as the sample events; before the docs/kaltura.md#ks-v2 test vector's `_e`
# (1893456000).
DEFAULT_START_TIME = 1767254400

TickListener = Callable[[int], None]


class SimClock:
    """Unix time in whole seconds that only moves when told to.

    ``advance`` runs the registered listeners (task progress, scheduled entry/session events, dispatcher retries)
    in the calling thread after the time has moved, so a test that advances the clock sees every consequence
    by the time the call returns.
    """

    def __init__(self, start: int = DEFAULT_START_TIME) -> None:
        self._now = int(start)
        self._lock = threading.Lock()
        self._listeners: list[TickListener] = []

    def now(self) -> int:
        """Current simulator time (unix seconds)."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> int:
        """Move forward by ``seconds`` (whole seconds), run the listeners and return the new time."""
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._now += int(seconds)
            now = self._now
        self._notify(now)
        return now

    def set(self, timestamp: int) -> int:
        """Jump to ``timestamp`` (not earlier than now) and run the listeners."""
        with self._lock:
            if timestamp < self._now:
                raise ValueError("the simulator clock only moves forward")
            self._now = int(timestamp)
            now = self._now
        self._notify(now)
        return now

    def add_listener(self, listener: TickListener) -> None:
        """Call ``listener(now)`` after every move of the clock."""
        with self._lock:
            self._listeners.append(listener)

    def _notify(self, now: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(now)
