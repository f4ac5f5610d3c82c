"""The simulator's shared core: state, clock, report knobs and the events that state changes produce."""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import entries, microservice, reach, report_data, reports, room_reports, sessions
from .api import Registry
from .clock import SimClock
from .events import SimEvent, TimedEvent
from .state import SimState

EventListener = Callable[[SimEvent], None]


class SimulatorCore:
    """Everything the HTTP layer and the action handlers share."""

    def __init__(self, *, seed: int, clock: SimClock, cdn_url: Callable[[], str]) -> None:
        self.seed = seed
        self.clock = clock
        self.state = SimState(seed)
        self.registry = Registry()
        self.reports = report_data.ReportSettings()
        self.room_reports = room_reports.RoomReportSettings()
        self.microservice = microservice.MicroserviceSettings()
        self.exports = reports.ExportRegistry()
        self.report_totals = report_data.TotalsCache()
        self.microservice_jobs = microservice.JobRegistry()
        self._cdn_url = cdn_url
        self._listeners: list[EventListener] = []
        self._listeners_lock = threading.Lock()
        for module in (sessions, entries, reach, reports, room_reports):
            module.register(self.registry)

    @property
    def cdn_url(self) -> str:
        """Public base URL used inside returned objects and report URLs (no ``/api_v3``)."""
        return self._cdn_url()

    def add_listener(self, listener: EventListener) -> None:
        """Receive every :class:`SimEvent` (subscriptions of the dispatcher)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def emit(self, events: list[SimEvent]) -> None:
        """Hand events to the listeners; called with no state lock held so listeners may do HTTP."""
        with self._listeners_lock:
            listeners = list(self._listeners)
        for event in events:
            for listener in listeners:
                listener(event)

    def settle(self, now: int) -> list[SimEvent]:
        """Apply every time-driven change due by ``now`` in time order and return the events they raise."""
        with self.state.lock:
            timed: list[TimedEvent] = []
            timed += entries.settle(self, now)
            timed += reach.settle(self, now)
            timed += room_reports.settle(self, now)
        timed.sort(key=lambda item: (item[0], item[1]))
        return [event for _, _, event in timed]
