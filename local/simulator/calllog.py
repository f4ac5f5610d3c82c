"""The simulator's record of every call it served, for test assertions (secrets never recorded)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One API call (a multirequest contributes one record per inner call).

    ``params`` exclude the KS, secrets and token hashes. ``error_code`` is None on success. ``executed`` is False
    when a transport fault answered before the action ran. ``faults`` lists the fault rules that acted.
    """

    service: str
    action: str
    partner_id: int | None
    params: Mapping[str, Any]
    error_code: str | None
    at: int
    faults: tuple[str, ...] = ()
    multirequest_index: int | None = None
    executed: bool = True


@dataclass
class CallLog:
    """Thread-safe append-only list of :class:`CallRecord`."""

    _records: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, record: CallRecord) -> None:
        """Record a call."""
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[CallRecord]:
        """Copy of all records, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget all records."""
        with self._lock:
            self._records.clear()
