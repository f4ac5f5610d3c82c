"""Fakes for the session, threshold and sweep unit tests: an in-memory Kaltura (rooms, entries, tasks) with the
duck-typed surface of ``KalturaClient`` the automations use, a fake clock and the in-memory AutomationDeps.

Room reports are rendered the way docs/kaltura.md#report-csv-strings describes ``getCsvFromStringParams``: UTF-8 BOM,
header line, unquoted comma-joined values (commas inside values replaced by spaces), ``\\n`` line ends, whole result,
and handed to the sink in small odd-sized chunks so that streaming code meets split lines and split multibyte
characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kauto.automation_config import build_automation_config
from kauto.automations.deps import AutomationDeps
from kauto.errors import QueueUnavailableError
from kauto.kaltura import (
    Entry,
    KalturaStreamInterruptedError,
    ReportJobHandle,
    ReportJobState,
    ReportJobStatus,
    StreamResult,
    VendorTask,
)
from kauto_local.fakes import InMemoryAlertPublisher, InMemoryEventQueue, InMemoryLedger, InMemoryObjectStore

PARTNER_ID = 1234567
NOW = 1_795_000_000
BOM = b"\xef\xbb\xbf"

ROOM_DATA_COLUMNS = (
    "entry_id",
    "entry_name",
    "parent_entry_id",
    "cue_point_id",
    "session_start_time",
    "session_end_time",
    "session_host_user_id",
    "meeting_view_period_unique_users",
    "meeting_engaged_play_time_ratio",
)
ATTENDEE_COLUMNS = (
    "entry_id",
    "cue_point_id",
    "user_id",
    "user_name",
    "user_email",
    "user_type",
    "meeting_view_time",
    "meeting_engaged_play_time_ratio",
)
BREAKOUT_COLUMNS = (
    "parent_entry_id",
    "parent_entry_name",
    "breakout_entry_id",
    "breakout_entry_name",
    "cue_point_id",
    "session_initiator",
    "session_start_time",
    "session_end_time",
    "duration",
    "participant_count",
    "engagement_rate",
)


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Attendee:
    user_id: str
    name: str
    email: str
    engagement: float
    user_type: str = "Viewer"
    view_time: int = 600


@dataclass
class Breakout:
    entry_id: str
    name: str
    cue_point_id: str
    start: int
    end: int
    initiator: str = "Host Person"
    participants: int = 3
    engagement: float = 0.5


@dataclass
class Session:
    room_entry_id: str
    session_id: str
    start: int
    end: int
    room_name: str = "Weekly sync"
    host: str = "host@example.com"
    unique_users: int = 5
    engagement: float = 0.8
    attendees: list[Attendee] = field(default_factory=list)
    breakouts: list[Breakout] = field(default_factory=list)


@dataclass
class CsvCall:
    report_id: int
    params: dict[str, str]


class _Reports:
    def __init__(self, kaltura: FakeKaltura) -> None:
        self._kaltura = kaltura

    def csv(self, report_id: int, params: Mapping[str, str | int], sink: Any, **_: Any) -> StreamResult:
        kaltura = self._kaltura
        text_params = {key: str(value) for key, value in params.items()}
        kaltura.csv_calls.append(CsvCall(report_id, text_params))
        for forbidden in (";", "="):
            assert not any(forbidden in f"{k}{v}" for k, v in text_params.items())
        body = BOM + kaltura.render(report_id, text_params)
        digest = hashlib.sha256()
        written = 0
        for chunk in _chunks(body, kaltura.chunk_size):
            if kaltura.break_after_bytes is not None and written >= kaltura.break_after_bytes:
                kaltura.break_after_bytes = None
                raise KalturaStreamInterruptedError("stream broke off", bytes_written=written)
            if written == 0 and chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]  # the client strips the BOM by default
            sink.write(chunk)
            digest.update(chunk)
            written += len(chunk)
        return StreamResult(written, digest.hexdigest(), body.count(b"\n"))


class _Entries:
    def __init__(self, kaltura: FakeKaltura) -> None:
        self._kaltura = kaltura

    def get(self, entry_id: str) -> Entry:
        self._kaltura.entry_gets.append(entry_id)
        return Entry.from_api(self._kaltura.entries[entry_id])

    def list(
        self,
        *,
        since: int,
        until: int,
        time_field: str = "createdAt",
        statuses: Iterable[int] = (),
        entry_types: Iterable[int | str] = (),
        admin_tags_any: Iterable[str] = (),
    ) -> Iterator[Entry]:
        wanted = {int(status) for status in statuses}
        types = {str(entry_type) for entry_type in entry_types}
        self._kaltura.entry_lists.append((since, until, time_field))
        found = [
            raw
            for raw in self._kaltura.entries.values()
            if since <= raw[time_field] <= until
            and (not wanted or raw["status"] in wanted)
            and (not types or str(raw["type"]) in types)
        ]
        return iter([Entry.from_api(raw) for raw in sorted(found, key=lambda raw: raw[time_field])])


@dataclass
class CollabGenerate:
    report_name: str
    parameters: dict[str, Any]
    privileges: str


class _ReportJobs:
    """The Reports Microservice: ``collab_bodies[name]`` is served after ``pending_polls`` pending answers;
    ``collab_failures[name]`` makes the job fail. Bodies are RFC 4180 CSV, streamed in odd-sized chunks."""

    def __init__(self, kaltura: FakeKaltura, privileges: str = "") -> None:
        self._kaltura = kaltura
        self._privileges = privileges

    def generate(self, report_name: str, parameters: Mapping[str, Any]) -> ReportJobHandle:
        kaltura = self._kaltura
        kaltura.collab_generated.append(CollabGenerate(report_name, dict(parameters), self._privileges))
        job_id = f"job{len(kaltura.collab_generated)}"
        kaltura.collab_polls[job_id] = 0
        return ReportJobHandle(PARTNER_ID, "https://reports.example", job_id, report_name, kaltura.clock())

    def poll(self, handle: ReportJobHandle) -> ReportJobStatus:
        kaltura = self._kaltura
        kaltura.collab_polls[handle.session_id] += 1
        if handle.report_name in kaltura.collab_failures:
            return ReportJobStatus(ReportJobState.FAILED, kaltura.collab_failures[handle.report_name])
        if kaltura.collab_polls[handle.session_id] <= kaltura.collab_pending_polls:
            return ReportJobStatus(ReportJobState.PENDING, "pending")
        return ReportJobStatus(ReportJobState.COMPLETED, "completed")

    def download(self, handle: ReportJobHandle, sink: Any) -> StreamResult:
        body = self._kaltura.collab_bodies.get(handle.report_name, b"")
        for chunk in _chunks(body, self._kaltura.chunk_size):
            sink.write(chunk)
        return StreamResult(len(body), hashlib.sha256(body).hexdigest(), body.count(b"\n"))


class _Reach:
    def __init__(self, kaltura: FakeKaltura) -> None:
        self._kaltura = kaltura

    def list_tasks(
        self,
        *,
        entry_id: str | None = None,
        catalog_item_id: int | None = None,
        statuses: Iterable[int] = (),
        created_between: tuple[int, int] | None = None,
    ) -> Iterator[VendorTask]:
        wanted = {int(status) for status in statuses}
        found = [
            raw
            for raw in self._kaltura.tasks.values()
            if (not wanted or raw["status"] in wanted)
            and (created_between is None or created_between[0] <= raw["createdAt"] <= created_between[1])
        ]
        return iter([VendorTask.from_api(raw) for raw in sorted(found, key=lambda raw: raw["createdAt"])])


class FakeKaltura:
    """An in-memory Kaltura partner: room sessions (reports 6000-6002), entries and vendor tasks."""

    def __init__(self) -> None:
        self.sessions: list[Session] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.csv_calls: list[CsvCall] = []
        self.entry_gets: list[str] = []
        self.entry_lists: list[tuple[int, int, str]] = []
        self.task_list_calls: list[dict[str, Any]] = []
        self.chunk_size = 7
        self.break_after_bytes: int | None = None
        self.room_filter_matches_parents = False
        """Whether report 6000's ``entry_ids`` also selects the breakout rows of the rooms named (unverified)."""
        self.collab_bodies: dict[str, bytes] = {}
        self.collab_failures: dict[str, str] = {}
        self.collab_pending_polls = 0
        self.collab_generated: list[CollabGenerate] = []
        self.collab_polls: dict[str, int] = {}
        self.clock: Any = lambda: NOW
        self.reports = _Reports(self)
        self.entries_api = _Entries(self)
        self.reach = _Reach(self)

    # -- data ------------------------------------------------------------------------------------------------

    def add_session(self, session: Session) -> Session:
        self.sessions.append(session)
        return session

    def add_entry(self, entry_id: str, **fields: Any) -> dict[str, Any]:
        raw = {
            "objectType": "KalturaMediaEntry",
            "id": entry_id,
            "name": f"Entry {entry_id}",
            "partnerId": PARTNER_ID,
            "status": 2,
            "type": 1,
            "mediaType": 1,
            "duration": 120,
            "msDuration": 120_000,
            "createdAt": NOW - 3600,
            "updatedAt": NOW - 600,
            "version": 1,
            "tags": "",
            "adminTags": "",
            **fields,
        }
        self.entries[entry_id] = raw
        return raw

    def add_task(self, task_id: int, **fields: Any) -> dict[str, Any]:
        raw = {
            "objectType": "KalturaEntryVendorTask",
            "id": task_id,
            "partnerId": PARTNER_ID,
            "entryId": "0_entry",
            "catalogItemId": 11,
            "status": 1,
            "createdAt": NOW - 3600,
            "updatedAt": NOW - 600,
            "turnAroundTime": -1,
            **fields,
        }
        self.tasks[task_id] = raw
        return raw

    # -- the call surface used by kauto.kaltura.listing (updatedAt-sliced task lists) -----------------------

    def call(self, service: str, action: str, params: Mapping[str, Any]) -> Any:
        assert (service, action) == ("reach_entryvendortask", "list"), (service, action)
        task_filter = params["filter"]
        pager = params["pager"]
        self.task_list_calls.append(dict(task_filter))
        low = task_filter.get("updatedAtGreaterThanOrEqual")
        high = task_filter.get("updatedAtLessThanOrEqual")
        found = sorted(
            (raw for raw in self.tasks.values() if low <= raw["updatedAt"] <= high),
            key=lambda raw: raw["updatedAt"],
        )
        start = (pager["pageIndex"] - 1) * pager["pageSize"]
        return {"objects": found[start : start + pager["pageSize"]], "totalCount": len(found)}

    # -- reports ---------------------------------------------------------------------------------------------

    def render(self, report_id: int, params: Mapping[str, str]) -> bytes:
        """The report body without the BOM, filtered like the simulator: sessions starting inside the window."""
        low = int(params.get("from_date") or params["fromDate"])
        high = int(params.get("to_date") or params["toDate"])
        entry_ids = _ids(params.get("entry_ids"))
        cue_point_ids = _ids(params.get("cue_point_ids"))
        parents = _ids(params.get("parentEntryIds"))
        sessions = [s for s in self.sessions if low <= s.start <= high]
        if report_id == 6000:
            columns, rows = ROOM_DATA_COLUMNS, self._room_rows(sessions, entry_ids, self.room_filter_matches_parents)
        elif report_id == 6001:
            columns, rows = ATTENDEE_COLUMNS, self._attendee_rows(sessions, entry_ids, cue_point_ids)
        else:
            columns, rows = BREAKOUT_COLUMNS, self._breakout_rows(sessions, parents)
        lines = [",".join(columns)] + [",".join(str(cell).replace(",", " ") for cell in row) for row in rows]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @staticmethod
    def _room_rows(sessions: list[Session], entry_ids: set[str] | None, with_parents: bool) -> list[list[object]]:
        rows: list[list[object]] = []
        for s in sessions:
            if entry_ids is None or s.room_entry_id in entry_ids:
                rows.append(
                    [
                        s.room_entry_id,
                        s.room_name,
                        "",
                        s.session_id,
                        s.start,
                        s.end,
                        s.host,
                        s.unique_users,
                        s.engagement,
                    ]
                )
            for b in s.breakouts:
                if entry_ids is None or b.entry_id in entry_ids or (with_parents and s.room_entry_id in entry_ids):
                    rows.append(
                        [b.entry_id, b.name, s.room_entry_id, b.cue_point_id, b.start, b.end, b.initiator,
                         b.participants, b.engagement]
                    )  # fmt: skip
        return rows

    @staticmethod
    def _attendee_rows(
        sessions: list[Session], entry_ids: set[str] | None, cue_point_ids: set[str] | None
    ) -> list[list[object]]:
        return [
            [s.room_entry_id, s.session_id, a.user_id, a.name, a.email, a.user_type, a.view_time, a.engagement]
            for s in sessions
            if (entry_ids is None or s.room_entry_id in entry_ids)
            and (cue_point_ids is None or s.session_id in cue_point_ids)
            for a in s.attendees
        ]

    @staticmethod
    def _breakout_rows(sessions: list[Session], parents: set[str] | None) -> list[list[object]]:
        return [
            [s.room_entry_id, s.room_name, b.entry_id, b.name, b.cue_point_id, b.initiator, b.start, b.end,
             b.end - b.start, b.participants, b.engagement]
            for s in sessions
            if parents is None or s.room_entry_id in parents
            for b in s.breakouts
        ]  # fmt: skip


def _ids(raw: str | None) -> set[str] | None:
    return {part for part in raw.split(",") if part} if raw else None


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(body), size):
        yield body[offset : offset + size]


class _ClientView:
    """What ``deps.kaltura(pid)`` returns: the fake under the attribute names of ``KalturaClient``."""

    def __init__(self, fake: FakeKaltura, privileges: str = "") -> None:
        self._fake = fake
        self.reports = fake.reports
        self.entries = fake.entries_api
        self.reach = fake.reach
        self.call = fake.call
        self.report_jobs = _ReportJobs(fake, privileges)

    def with_privileges(self, extra: str) -> _ClientView:
        return _ClientView(self._fake, extra)


def make_deps(
    kaltura: FakeKaltura,
    clock: FakeClock,
    config: Mapping[str, Any] | None = None,
    *,
    worker_timeout_seconds: int = 900,
    ledger: InMemoryLedger | None = None,
    events: InMemoryEventQueue | None = None,
) -> AutomationDeps:
    """AutomationDeps on in-memory fakes; ``config`` is the override document (merged over the bundled defaults)."""
    ledger = ledger or InMemoryLedger(clock=clock)
    kaltura.clock = clock
    view = _ClientView(kaltura)
    return AutomationDeps(
        config=build_automation_config(dict(config or {})),
        ledger=ledger,
        alerts=InMemoryAlertPublisher(clock=clock, ledger=ledger),
        store=InMemoryObjectStore("reports-bucket"),
        kaltura=lambda partner_id: view,  # type: ignore[arg-type,return-value]
        events=events or InMemoryEventQueue(),
        clock=clock,
        worker_timeout_seconds=worker_timeout_seconds,
    )


class FlakyEventQueue(InMemoryEventQueue):
    """An event queue that refuses every message while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def send(self, event: Any, delay_seconds: int = 0) -> str:
        if self.down:
            raise QueueUnavailableError("sqs", "SendMessage", "ServiceUnavailable")
        return super().send(event, delay_seconds)


def partner_config(**sections: Any) -> dict[str, Any]:
    """An override document giving PARTNER_ID its own section (so the sweep covers it)."""
    return {"partners": {str(PARTNER_ID): sections}}
