"""Fakes for the weekly scheduler, run and job unit tests: an in-memory Kaltura for the four report surfaces, the
in-memory WeeklyDeps, and a driver that delivers the job queue's messages the way the report worker would.

The fake Kaltura's report rows each sit at one instant of the week (like per-session rows), so any cut of the week
into pieces returns the same rows in the same order, and what the fake was asked is recorded for assertions:
``table_calls`` (windows and page sizes), ``export_calls``, ``csv_calls`` (rendered params), ``ms_calls``.
Bodies reach the sink in small odd-sized chunks so that streaming code meets split lines and characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kauto.automation_config import build_automation_config
from kauto.kaltura import (
    KalturaResultLimitError,
    ReportFilter,
    ReportJobHandle,
    ReportJobState,
    ReportJobStatus,
    StreamResult,
)
from kauto.weekly.config import parse_weekly_config
from kauto.weekly.deps import RunDeps, WeeklyDeps
from kauto.weekly.jobs import JobOutcome, handle_message
from kauto.weekly.messages import DigestRequest, JobMessage
from kauto_local.fakes import (
    InMemoryAlertPublisher,
    InMemoryJobQueue,
    InMemoryLedger,
    InMemoryObjectStore,
    QueuedMessage,
)

PARTNER_ID = 1234567
WEEK = "2026-W10"  # Monday 2026-03-02 .. Sunday 2026-03-08 (UTC: 1772409600 .. 1773014400)
WEEK_START = 1_772_409_600
WEEK_END = WEEK_START + 7 * 86400
NOW = WEEK_END + 6 * 3600  # Monday 06:00 UTC after the week
BOM = b"\xef\xbb\xbf"
TABLE_HEADER = ("object_id", "entry_name", "count_plays", "sum_time_viewed", "session_start")
ROOM_HEADER = (
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


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def instants(count: int, start: int = WEEK_START, end: int = WEEK_END) -> list[int]:
    """``count`` instants spread evenly over ``[start, end)``."""
    return [start + (end - start) * index // count for index in range(count)] if count else []


def table_row(index: int, instant: int) -> dict[str, str]:
    """Row ``index`` of a report: every 7th entry name is a spreadsheet formula (it must come out neutralized)."""
    name = f"=HYPERLINK(entry {index})" if index % 7 == 3 else f"Lecture {index}, part {index % 4}"
    return {
        "object_id": f"0_{index:07d}",
        "entry_name": name,
        "count_plays": str(1000 - index % 1000),
        "sum_time_viewed": f"{(index % 97) * 1.5:.1f}",
        "session_start": str(instant),
    }


@dataclass
class FakeTable:
    """What ``reports.table`` returns: header, total count, and the rows when iterated."""

    header: tuple[str, ...]
    total_count: int
    rows: list[dict[str, str]]
    refuse: bool = False

    def __iter__(self) -> Iterator[dict[str, str]]:
        if self.refuse:  # like the client: page 1 is fetched at once, the limit bites when iterating
            raise KalturaResultLimitError("RESULT_LIMIT_EXCEEDED", "more than 12000 rows")
        return iter(self.rows)


@dataclass
class MicroserviceJob:
    report_name: str
    parameters: dict[str, Any]
    polls_pending: int
    failure: str | None = None
    polls: int = 0
    downloads: int = 0


@dataclass
class FakeKaltura:
    """An in-memory partner for the weekly reports."""

    clock: FakeClock
    rows_per_report: dict[int, int] = field(default_factory=dict)
    first_day_only: set[int] = field(default_factory=set)
    """Report types whose rows all sit on the first day of the week (unevenly spread data)."""
    room_rows: int = 14
    chunk_size: int = 997
    table_calls: list[tuple[int, int, int, int | None]] = field(default_factory=list)
    export_calls: list[tuple[int, int, int, tuple[str, ...]]] = field(default_factory=list)
    csv_calls: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    ms_calls: list[str] = field(default_factory=list)
    ms_jobs: dict[str, MicroserviceJob] = field(default_factory=dict)
    ms_pending_polls: int = 2
    ms_failure: str | None = None
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    """Per method name (``table``, ``export_csv``, ``csv``, ``download``): exceptions raised by the next calls."""

    def __post_init__(self) -> None:
        self.reports = _Reports(self)
        self.report_jobs = _ReportJobs(self)

    def fail_next(self, method: str, *errors: Exception) -> None:
        self.failures.setdefault(method, []).extend(errors)

    def maybe_fail(self, method: str) -> None:
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    def rows(self, report_type: int, start: int, end: int) -> list[dict[str, str]]:
        """The report's rows with an instant in ``[start, end)``, in time order."""
        count = self.rows_per_report.get(report_type, 20)
        span_end = WEEK_START + 86400 if report_type in self.first_day_only else WEEK_END
        return [table_row(i, t) for i, t in enumerate(instants(count, WEEK_START, span_end)) if start <= t < end]

    def room_body(self, params: Mapping[str, str]) -> bytes:
        low = int(params.get("from_date") or params["fromDate"])
        high = int(params.get("to_date") or params["toDate"])
        lines = [",".join(ROOM_HEADER)]
        for index, start in enumerate(instants(self.room_rows)):
            if low <= start <= high:  # room reports select sessions starting inside [from, to] (inclusive)
                lines.append(
                    f"1_room{index % 3},Room {index} @host,,1_cue{index:04d},{start},{start + 3600},"
                    f"host{index}@example.com,{index % 9},0.{index % 10}5"
                )
        return ("\n".join(lines) + "\n").encode("utf-8")

    def stream(self, body: bytes, sink: Any, *, strip_bom: bool = True) -> StreamResult:
        if strip_bom and body.startswith(BOM):
            body = body[len(BOM) :]
        for offset in range(0, len(body), self.chunk_size):
            sink.write(body[offset : offset + self.chunk_size])
        return StreamResult(len(body), hashlib.sha256(body).hexdigest(), body.count(b"\n"))


class _Reports:
    def __init__(self, kaltura: FakeKaltura) -> None:
        self._k = kaltura

    def table(
        self,
        report_type: int,
        report_filter: ReportFilter,
        *,
        order: str | None = None,
        page_size: int | None = None,
        split_on_limit: bool = True,
        **_: Any,
    ) -> FakeTable:
        k = self._k
        k.maybe_fail("table")
        k.table_calls.append((report_type, report_filter.from_date, report_filter.to_date, page_size))
        rows = k.rows(report_type, report_filter.from_date, report_filter.to_date)
        refuse = len(rows) > 12_000 and not split_on_limit
        return FakeTable(TABLE_HEADER, len(rows), rows if page_size is None else rows[:page_size], refuse)

    def export_csv(
        self,
        report_type: int,
        report_filter: ReportFilter,
        sink: Any,
        *,
        title: str,
        table_headers: Sequence[str],
        text: str = "",
        max_rows: int = 60_000,
        **_: Any,
    ) -> StreamResult:
        k = self._k
        k.maybe_fail("export_csv")
        k.export_calls.append((report_type, report_filter.from_date, report_filter.to_date, tuple(table_headers)))
        rows = k.rows(report_type, report_filter.from_date, report_filter.to_date)[:max_rows]
        # docs/kaltura.md#report-csv-url / simulator layout: BOM, title, text, blank, totals header + row, blank, table.
        lines = [title, text, "", "count_plays,sum_time_viewed", f"{len(rows)},1.0", "", ",".join(table_headers)]
        lines += [",".join(row[name].replace(",", " ") for name in table_headers) for row in rows]
        return k.stream(BOM + ("\n".join(lines) + "\n").encode("utf-8"), sink)

    def csv(
        self,
        report_id: int,
        params: Mapping[str, str | int],
        sink: Any,
        *,
        excluded_fields: Sequence[str] = (),
        **_: Any,
    ) -> StreamResult:
        k = self._k
        k.maybe_fail("csv")
        text_params = {key: str(value) for key, value in params.items()}
        k.csv_calls.append((report_id, text_params))
        return k.stream(BOM + k.room_body(text_params), sink)


class _ReportJobs:
    def __init__(self, kaltura: FakeKaltura) -> None:
        self._k = kaltura

    def generate(self, report_name: str, parameters: Mapping[str, Any]) -> ReportJobHandle:
        k = self._k
        k.ms_calls.append("generate")
        session_id = f"session{len(k.ms_jobs)}"
        k.ms_jobs[session_id] = MicroserviceJob(report_name, dict(parameters), k.ms_pending_polls, k.ms_failure)
        return ReportJobHandle(PARTNER_ID, "https://reports.nvp1.ovp.kaltura.com", session_id, report_name, k.clock())

    def poll(self, handle: ReportJobHandle) -> ReportJobStatus:
        k = self._k
        k.ms_calls.append("poll")
        job = k.ms_jobs[handle.session_id]
        job.polls += 1
        if job.polls <= job.polls_pending:
            return ReportJobStatus(ReportJobState.PENDING, "pending")
        if job.failure:
            return ReportJobStatus(ReportJobState.FAILED, job.failure)
        return ReportJobStatus(ReportJobState.COMPLETED, "completed")

    def download(self, handle: ReportJobHandle, sink: Any) -> StreamResult:
        k = self._k
        k.maybe_fail("download")
        k.ms_calls.append("download")
        job = k.ms_jobs[handle.session_id]
        job.downloads += 1
        lines = ["poll_id,question,user_id,answer,answered_at"]
        lines += [f"poll{i % 3},@question {i},user{i},ABCD,{WEEK_START + i * 600}" for i in range(12)]
        return k.stream(BOM + ("\n".join(lines) + "\n").encode("utf-8"), sink)


@dataclass
class Harness:
    """WeeklyDeps on fakes plus the fakes themselves."""

    deps: WeeklyDeps
    kaltura: FakeKaltura
    clock: FakeClock
    ledger: InMemoryLedger
    store: InMemoryObjectStore
    jobs: InMemoryJobQueue
    alerts: InMemoryAlertPublisher
    time_left: list[float | None]
    digests: list[DigestRequest] = field(default_factory=list)
    delays: list[int] = field(default_factory=list)

    def deliver(
        self, max_messages: int = 500, *, on_message: Callable[[QueuedMessage], None] | None = None
    ) -> list[str]:
        """Deliver queued job messages until none is left (a delay advances the fake clock instead of waiting);
        digest requests are collected in ``digests``. Returns the outcomes in order."""
        outcomes: list[str] = []
        for _ in range(max_messages):
            pending = self.jobs.take()
            if not pending:
                return outcomes
            for queued in pending:
                self.delays.append(queued.delay_seconds)
                self.clock.advance(queued.delay_seconds)
                if on_message is not None:
                    on_message(queued)
                if isinstance(queued.message, DigestRequest):
                    self.digests.append(queued.message)
                    continue
                outcomes.append(handle_message(queued.message.to_json(), self.deps).value)
        raise AssertionError("the job queue did not drain")

    def send(self, message: JobMessage) -> JobOutcome:
        return handle_message(message.to_json(), self.deps)


def harness(weekly: Mapping[str, Any] | None = None, *, partners: Mapping[str, Any] | None = None) -> Harness:
    """Fakes wired into WeeklyDeps; ``weekly`` is the config's weekly section, ``time_left`` is settable."""
    clock = FakeClock()
    document: dict[str, Any] = {}
    if weekly is not None:
        document["weekly"] = dict(weekly)
    if partners is not None:
        document["partners"] = dict(partners)
    config = build_automation_config(document)
    ledger = InMemoryLedger(clock=clock)
    jobs = InMemoryJobQueue()
    store = InMemoryObjectStore()
    alerts = InMemoryAlertPublisher(clock=clock, ledger=ledger)
    kaltura = FakeKaltura(clock)
    time_left: list[float | None] = [None]
    run = RunDeps(config, parse_weekly_config(config.weekly), ledger, jobs, clock=clock, default_time_zone="UTC")
    deps = WeeklyDeps(run, store, alerts, kaltura=lambda _pid: kaltura, time_left=lambda: time_left[0])  # type: ignore[arg-type,return-value]
    return Harness(deps, kaltura, clock, ledger, store, jobs, alerts, time_left)
