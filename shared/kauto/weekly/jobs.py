"""The report worker: run one step of a weekly report job, for all four report surfaces.

Each job writes ``weekly/partner_id=<pid>/week=<YYYY-Www>/report=<report>/<report>.csv`` through the streaming
multipart writer (:mod:`kauto.aws.s3_writer`) and the CSV cleaner (:mod:`kauto.csvclean`: RFC 4180 quoting,
formula injection neutralized, ``<column>_iso`` twins of timestamp columns), the same rules as the session reports.
Memory stays bounded whatever the size: getTable rows arrive page by page, CSV bodies stream through a small bounded
pipe, the writer holds one part (uploaded from a helper thread while the next rows are cleaned); nothing touches /tmp.

Pieces. A report is requested as a sequence of time pieces merged in order into one file:

- ``getTable``: the week is probed first (its page 1 is kept as the data when the week fits in one query). Past
  9,000 rows (75% of the 12,000-row window, docs/kaltura.md#report-gettable) the week is cut into local days, each day
  into equal parts; the client splits a piece further if it still holds more than 12,000 rows.
- ``getUrlForReportAsCsv``: a getTable probe of one row gives the columns and the count; past 45,000 rows (75% of
  the 60,000 of docs/kaltura.md#report-csv-url) the week is cut the same way. A piece that comes back with 60,000 rows
  may have been cut off: the job starts over with twice as many pieces per day.
- ``getCsvFromStringParams``: one request per local day (``"pieces": "day"``) or one for the week
  (docs/kaltura.md#report-csv-strings: the whole result, no paging).
- Reports Microservice: generate, then poll by re-enqueueing this job's next step with a delay (no Lambda sleeps
  while Kaltura works), then download (one piece).

Checkpoints. Before each piece after the first of an invocation the job checks the time left; under
``checkpoint_margin_seconds`` it checkpoints the writer (uploaded parts stay in the multipart upload, the buffered
tail goes to ``_checkpoints/``) and continues in the next step from the next piece, with the cleaner's columns, so the
object is byte-identical to an uninterrupted run.

Failures. Retryable errors (Kaltura transport/5xx/``ACTION_BLOCKED``/out of time, AWS errors) retry the step from its
last checkpoint, with backoff, up to :data:`MAX_JOB_ATTEMPTS` attempts in a row; permanent ones (permission, unknown
report, a failed microservice report, a row limit with ``"on_row_limit": "fail"``) fail the job, alert once and
count it in the run. Configuration errors and unexpected errors fail the SQS record (retry, then the DLQ).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import math
import queue
import threading
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from kauto.automations.errors import RetryLaterError
from kauto.automations.room_reports import ROOM_REPORTS
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, Severity
from kauto.aws.manifest import SourceCall
from kauto.aws.object_store import CheckpointError, ObjectStore, ObjectTooLargeError, ObjectWriter
from kauto.csvclean import ISO_SUFFIX, CsvCleaner, CsvFormatError, CsvSpec
from kauto.errors import ConfigError, DependencyUnavailableError
from kauto.kaltura import (
    KalturaClient,
    KalturaError,
    KalturaResultLimitError,
    ReportFilter,
    ReportJobFailedError,
    ReportJobHandle,
    ReportJobState,
    ReportTable,
)
from kauto.kaltura.microservice import advance_job
from kauto.kaltura.reports import DELIMITER, MAX_CSV_ROWS, MAX_TABLE_ROWS
from kauto.kaltura.streams import stream_into
from kauto.weekly import digest
from kauto.weekly.config import LIST_PLACEHOLDERS, Pieces, RowLimit, Surface, WeeklyReport, parse_template
from kauto.weekly.deps import WeeklyDeps
from kauto.weekly.messages import DigestRequest, JobMessage, parse_message
from kauto.weekly.runs import (
    JobRecord,
    LeaseStatus,
    continue_job,
    finish_job,
    lease_job,
    release_job,
    report_object_key,
)

T = TypeVar("T")

SPLIT_FILL = 0.75
"""Aim each piece at 75% of the row limit: room for rows spread unevenly over the week."""
TABLE_PIECE_ROWS = int(MAX_TABLE_ROWS * SPLIT_FILL)
CSV_PIECE_ROWS = int(MAX_CSV_ROWS * SPLIT_FILL)
MAX_PIECES_PER_DAY = 288
"""Five-minute pieces: a report denser than this is not spread over time and cannot be split usefully."""
MAX_JOB_ATTEMPTS = 5
RETRY_BASE_SECONDS = 30
MAX_RETRY_SECONDS = 900
WRITE_BATCH_CHARS = 256 * 1024
"""Cleaned records are handed to the writer in batches of about this size (one call per record is slow)."""
UPLOAD_QUEUE_DEPTH = 32
"""Batches waiting for the upload thread: about 8 MiB, one part's worth of cleaning ahead of the upload."""
_PIPE_POLL_SECONDS = 0.05
_PREAMBLE_LIMIT = 1024 * 1024


class JobOutcome(StrEnum):
    """What handling one message did."""

    DONE = "done"
    FAILED = "failed"
    CONTINUED = "continued"
    """Checkpointed (or restarted with finer pieces): the next step was enqueued."""
    WAITING = "waiting"
    """A microservice report is still being generated: the next poll was enqueued with a delay."""
    RETRYING = "retrying"
    STALE = "stale"
    BUSY = "busy"
    ALREADY_FINISHED = "already_finished"
    UNKNOWN = "unknown"
    DIGEST = "digest"


_LEASE_OUTCOMES = {
    LeaseStatus.STALE: JobOutcome.STALE,
    LeaseStatus.BUSY: JobOutcome.BUSY,
    LeaseStatus.ALREADY_FINISHED: JobOutcome.ALREADY_FINISHED,
    LeaseStatus.UNKNOWN: JobOutcome.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class StepResult:
    """The end of a step: ``result`` when the file is complete, else the ``continuation`` of the next step."""

    result: Mapping[str, Any] | None = None
    continuation: Mapping[str, Any] | None = None
    delay_seconds: int = 0
    waiting: bool = False


# ------------------------------------------------------------------------------------------------ entry points


def handle_message(body: str, deps: WeeklyDeps) -> JobOutcome:
    """Handle one ReportJobsQueue message (a job step or a digest request). Raises what must fail the SQS record."""
    message = parse_message(body)
    if isinstance(message, DigestRequest):
        digest.build_digest(message.partner_id, message.week, deps)
        return JobOutcome.DIGEST
    return run_job_step(message, deps)


def run_job_step(message: JobMessage, deps: WeeklyDeps) -> JobOutcome:
    """Lease the step, run it and record what happened (see the module docstring for the error handling)."""
    lease = lease_job(message, deps)
    if lease.job is None or lease.status is not LeaseStatus.LEASED:
        outcome = _LEASE_OUTCOMES.get(lease.status, JobOutcome.STALE)
        logger.info("job message skipped", extra=_log(message) | {"outcome": outcome.value})
        return outcome
    job, token = lease.job, lease.token
    try:
        step = execute(job, deps)
    except ConfigError:
        release_job(job, token, deps)
        raise
    except Exception as error:
        return _after_error(job, token, error, deps)
    if step.result is not None:
        finish_job(job, token, deps, result=step.result)
        count("WeeklyReportDone", surface=job.report.surface.value)
        logger.info(
            "weekly report written",
            extra=_log(message) | {"rows": step.result.get("rows"), "bytes": step.result.get("bytes")},
        )
        return JobOutcome.DONE
    continue_job(
        job, token, deps, continuation=step.continuation, delay_seconds=step.delay_seconds, waiting=step.waiting
    )
    return JobOutcome.WAITING if step.waiting else JobOutcome.CONTINUED


def _after_error(job: JobRecord, token: str, error: Exception, deps: WeeklyDeps) -> JobOutcome:
    code = _error_code(error)
    if _is_retryable(error):
        attempts = job.attempts + 1
        if attempts < MAX_JOB_ATTEMPTS:
            # A checkpoint that no longer matches S3 cannot be resumed: start the file over.
            continuation = None if isinstance(error, CheckpointError) else job.continuation
            delay = min(MAX_RETRY_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
            logger.warning("weekly job step failed, retrying", extra=_job_log(job) | {"error": code, "delay_s": delay})
            count("WeeklyJobRetry", error=type(error).__name__)
            continue_job(
                job, token, deps, continuation=continuation, delay_seconds=delay, waiting=False, attempts=attempts
            )
            return JobOutcome.RETRYING
    elif not _is_permanent(error):
        release_job(job, token, deps)
        raise error
    logger.error("weekly report failed", extra=_job_log(job) | {"error": code, "attempts": job.attempts + 1})
    finish_job(job, token, deps, result=None, error=code)
    count("WeeklyReportFailed", surface=job.report.surface.value)
    deps.alerts.publish(
        Alert(
            rule="weekly_report_failed",
            severity=Severity.WARNING,
            partner_id=job.partner_id,
            subject=f"Kaltura partner {job.partner_id}: weekly report {job.report.name} for {job.week} failed",
            summary=(
                f"The weekly report {job.report.name} ({job.report.surface.value}) of {job.week} could not be "
                f"produced ({code}). The other reports of the week are not affected."
            ),
            details={"report": job.report.name, "week": job.week, "error": code, "run_id": job.run_id},
        ),
        dedupe_key=f"{job.week}:{job.run_id}:{job.report.name}",
    )
    return JobOutcome.FAILED


def _is_retryable(error: Exception) -> bool:
    if isinstance(error, KalturaError):
        return error.retryable
    return isinstance(error, DependencyUnavailableError | RetryLaterError | CheckpointError)


def _is_permanent(error: Exception) -> bool:
    return isinstance(error, KalturaError | CsvFormatError | ObjectTooLargeError)


def _error_code(error: Exception) -> str:
    code = getattr(error, "code", None)
    return str(code) if isinstance(code, str) and code else type(error).__name__


# ------------------------------------------------------------------------------------------------------ a step


def execute(job: JobRecord, deps: WeeklyDeps) -> StepResult:
    """Run one step of ``job`` from its continuation."""
    client = deps.kaltura(job.partner_id)
    report = job.report
    if report.surface is Surface.MICROSERVICE:
        return _microservice_step(job, client, deps)
    source: _Source
    if report.surface is Surface.TABLE:
        source = _TableSource(job, client)
    elif report.surface is Surface.CSV_URL:
        source = _CsvUrlSource(job, client)
    else:
        source = _CsvParamsSource(job, client)
    return _run_pieces(job, source, deps, job.continuation)


class _PieceFullError(Exception):
    """A CSV export piece came back with the 60,000-row maximum: it may have been cut off."""


class _Source(Protocol):
    """One report surface, requested piece by piece."""

    spec: CsvSpec

    def plan(self, min_per_day: int) -> tuple[dict[str, Any], Any]:
        """The pieces (``{"per_day": n, ...}``; 0 = the whole week at once) and any data fetched while planning."""
        ...

    def write_piece(self, plan: Mapping[str, Any], piece: tuple[int, int], output: _Output, prefetched: Any) -> None:
        """Stream the rows of ``piece`` into ``output``."""
        ...

    def source_call(self, plan: Mapping[str, Any]) -> SourceCall:
        """The call recorded in the manifest."""
        ...


def _run_pieces(
    job: JobRecord, source: _Source, deps: WeeklyDeps, continuation: Mapping[str, Any] | None
) -> StepResult:
    key = report_object_key(job.partner_id, job.week, job.report.name)
    state = dict(continuation or {})
    resumed = "output" in state
    prefetched: Any = None
    if resumed:
        plan, first = dict(state["plan"]), int(state["next_piece"])
        output = _Output.resume(deps.store, state["output"], job.report, source.spec)
    else:
        plan, prefetched = source.plan(int(state.get("min_per_day", 0)))
        first = 0
        output = _Output.open(deps.store, key, job.report, source.spec)
    pieces = week_pieces(job.window.days, int(plan["per_day"]))
    try:
        for index in range(first, len(pieces)):
            left = deps.time_left()
            if index > first and left is not None and left < job.limits.checkpoint_margin_seconds:
                count("WeeklyJobCheckpoint", surface=job.report.surface.value)
                logger.info("weekly job checkpointed", extra=_job_log(job) | {"next_piece": index, "of": len(pieces)})
                return StepResult(continuation={"plan": plan, "next_piece": index, "output": output.checkpoint()})
            source.write_piece(plan, pieces[index], output, prefetched if index == 0 else None)
        written = output.complete()
    except _PieceFullError:
        output.abort()
        per_day = max(1, int(plan["per_day"])) * 2
        if job.report.on_row_limit is RowLimit.FAIL or per_day > MAX_PIECES_PER_DAY:
            raise KalturaResultLimitError(
                "SEARCH_TOO_GENERAL", f"report.getUrlForReportAsCsv: a piece of {job.report.name} holds 60,000 rows"
            ) from None
        logger.info(
            "CSV export piece full, starting over with finer pieces", extra=_job_log(job) | {"per_day": per_day}
        )
        return StepResult(continuation={"min_per_day": per_day})
    except BaseException as error:
        keep = resumed and isinstance(error, Exception) and _is_retryable(error)
        if not keep or isinstance(error, CheckpointError):
            output.abort()
        else:
            # Keep the multipart upload: the checkpoint this step started from is where the retry resumes.
            output.stop(discard=True)
        raise
    return StepResult(
        result={
            "key": written.key,
            "rows": written.rows,
            "bytes": written.bytes,
            "sha256": written.sha256,
            "columns": list(output.columns),
            "source": source.source_call(plan).to_json(),
            "pieces": len(pieces),
        }
    )


def week_pieces(days: tuple[int, ...], per_day: int) -> list[tuple[int, int]]:
    """``[from, to)`` pieces: the whole window (``per_day`` 0) or each local day cut into ``per_day`` equal parts."""
    if per_day <= 0:
        return [(days[0], days[-1])]
    pieces: list[tuple[int, int]] = []
    for start, end in itertools.pairwise(days):
        pieces.extend(
            (start + (end - start) * k // per_day, start + (end - start) * (k + 1) // per_day) for k in range(per_day)
        )
    return pieces


def _per_day(total: int, piece_rows: int, min_per_day: int) -> int:
    """Pieces per day so that a week of ``total`` rows spread evenly gives at most ``piece_rows`` per piece."""
    return max(min_per_day, 1, math.ceil(total / (7 * piece_rows)))


# --------------------------------------------------------------------------------------------------- surfaces


@dataclass(frozen=True, slots=True)
class WeeklyReportFilter(ReportFilter):
    """:class:`ReportFilter` plus ``playbackContextIdsIn`` (docs/kaltura.md#reports)."""

    playback_context_ids: tuple[str, ...] = ()

    def to_params(self) -> dict[str, Any]:
        params = ReportFilter.to_params(self)
        params["playbackContextIdsIn"] = DELIMITER.join(self.playback_context_ids) or None
        return params


def report_filter(job: JobRecord, start: int, end: int) -> WeeklyReportFilter:
    """The report input filter of ``[start, end)`` with the report's filters and time zone offset at ``start``."""
    filters = job.report.filters
    return WeeklyReportFilter(
        from_date=start,
        to_date=end,
        time_zone_offset=job.window.offset_minutes(start),
        entry_ids=filters.entries,
        category_ids=filters.categories,
        virtual_event_ids=filters.virtual_events,
        playback_context_ids=filters.playback_contexts,
    )


class _TableSource:
    """``report.getTable``, paged and split by the client (docs/kaltura.md#report-gettable)."""

    def __init__(self, job: JobRecord, client: KalturaClient) -> None:
        self._job = job
        self._client = client
        self.spec = CsvSpec(timestamp_columns=frozenset(job.report.timestamp_columns))

    def _table(self, start: int, end: int, *, split: bool) -> ReportTable:
        report = self._job.report
        return self._client.reports.table(
            _must(report.report_type, "report_type"),
            report_filter(self._job, start, end),
            order=report.order,
            split_on_limit=split,
        )

    def plan(self, min_per_day: int) -> tuple[dict[str, Any], Any]:
        window = self._job.window
        split = self._job.report.on_row_limit is RowLimit.SPLIT
        probe = self._table(window.start, window.end, split=split)
        total = probe.total_count
        if total <= TABLE_PIECE_ROWS or not split:
            if total > MAX_TABLE_ROWS and not split:
                raise KalturaResultLimitError(
                    "RESULT_LIMIT_EXCEEDED", f"report.getTable: {total} rows in the week (12,000 per query)"
                )
            return {"per_day": 0, "total_count": total}, probe
        return {"per_day": _per_day(total, TABLE_PIECE_ROWS, min_per_day), "total_count": total}, None

    def write_piece(self, plan: Mapping[str, Any], piece: tuple[int, int], output: _Output, prefetched: Any) -> None:
        split = self._job.report.on_row_limit is RowLimit.SPLIT
        table = prefetched if prefetched is not None else self._table(*piece, split=split)
        output.write(output.cleaner.clean_dicts(table, header=table.header))

    def source_call(self, plan: Mapping[str, Any]) -> SourceCall:
        window = self._job.window
        return SourceCall(
            "report",
            "getTable",
            {
                "reportType": self._job.report.report_type,
                "reportInputFilter": report_filter(self._job, window.start, window.end).to_params(),
                "order": self._job.report.order,
                "pieces": len(week_pieces(window.days, int(plan["per_day"]))),
            },
        )


class _CsvUrlSource:
    """``report.getUrlForReportAsCsv`` then the file it names (docs/kaltura.md#report-csv-url)."""

    def __init__(self, job: JobRecord, client: KalturaClient) -> None:
        self._job = job
        self._client = client
        self.spec = CsvSpec(timestamp_columns=frozenset(job.report.timestamp_columns))

    def plan(self, min_per_day: int) -> tuple[dict[str, Any], Any]:
        report, window = self._job.report, self._job.window
        # One getTable row tells the columns (the export's ``headers`` argument) and the week's row count.
        probe = self._client.reports.table(
            _must(report.report_type, "report_type"),
            report_filter(self._job, window.start, window.end),
            page_size=1,
            split_on_limit=False,
        )
        total = probe.total_count
        plan: dict[str, Any] = {"headers": list(probe.header), "total_count": total, "per_day": 0}
        if total > CSV_PIECE_ROWS or min_per_day:
            if report.on_row_limit is RowLimit.FAIL:
                if total > MAX_CSV_ROWS:
                    raise KalturaResultLimitError(
                        "SEARCH_TOO_GENERAL", f"report.getUrlForReportAsCsv: {total} rows in the week (60,000 per file)"
                    )
            else:
                plan["per_day"] = _per_day(total, CSV_PIECE_ROWS, min_per_day)
        return plan, None

    def write_piece(self, plan: Mapping[str, Any], piece: tuple[int, int], output: _Output, prefetched: Any) -> None:
        report = self._job.report
        rows_before = output.cleaner.stats.rows_in
        report_type = _must(report.report_type, "report_type")
        stream_into(
            lambda sink: self._client.reports.export_csv(
                report_type,
                report_filter(self._job, *piece),
                sink,
                title=report.name,
                text=f"{report.name} {self._job.week}",
                table_headers=plan["headers"],
                order=report.order,
            ),
            lambda chunks: output.write(output.cleaner.clean_bytes(table_section(chunks))),
        )
        if output.cleaner.stats.rows_in - rows_before >= MAX_CSV_ROWS:
            raise _PieceFullError

    def source_call(self, plan: Mapping[str, Any]) -> SourceCall:
        window = self._job.window
        return SourceCall(
            "report",
            "getUrlForReportAsCsv",
            {
                "reportType": self._job.report.report_type,
                "reportInputFilter": report_filter(self._job, window.start, window.end).to_params(),
                "order": self._job.report.order,
                "pieces": len(week_pieces(window.days, int(plan["per_day"]))),
            },
        )


class _CsvParamsSource:
    """``report.getCsvFromStringParams``: a raw CSV, whole, per request (docs/kaltura.md#report-csv-strings)."""

    def __init__(self, job: JobRecord, client: KalturaClient) -> None:
        self._job = job
        self._client = client
        report = job.report
        room = ROOM_REPORTS.get(report.report_id or 0)
        timestamps = frozenset(report.timestamp_columns)
        self.spec = (
            dataclasses.replace(room.spec, timestamp_columns=timestamps)
            if room is not None
            else CsvSpec(timestamp_columns=timestamps)
        )

    def plan(self, min_per_day: int) -> tuple[dict[str, Any], Any]:
        return {"per_day": 1 if self._job.report.pieces is Pieces.DAY else 0}, None

    def _params(self, start: int, end: int) -> dict[str, str | int]:
        rendered = render_params(self._job, start, end, lists=False)
        return {key: value for key, value in rendered.items() if isinstance(value, str)}

    def write_piece(self, plan: Mapping[str, Any], piece: tuple[int, int], output: _Output, prefetched: Any) -> None:
        report = self._job.report
        report_id, params = _must(report.report_id, "report_id"), self._params(*piece)
        stream_into(
            lambda sink: self._client.reports.csv(report_id, params, sink, excluded_fields=report.excluded_fields),
            lambda chunks: output.write(output.cleaner.clean_bytes(chunks)),
        )

    def source_call(self, plan: Mapping[str, Any]) -> SourceCall:
        window = self._job.window
        params = self._params(window.start, window.end)
        return SourceCall(
            "report",
            "getCsvFromStringParams",
            {
                "id": self._job.report.report_id,
                "params": ";".join(f"{key}={value}" for key, value in params.items()),
                "excludedFields": ",".join(self._job.report.excluded_fields) or None,
                "pieces": len(week_pieces(window.days, int(plan["per_day"]))),
            },
        )


class _DownloadSource:
    """The CSV of a completed Reports Microservice job (one piece)."""

    def __init__(self, job: JobRecord, client: KalturaClient, handle: ReportJobHandle, params: Mapping[str, Any]):
        self._job = job
        self._client = client
        self._handle = handle
        self._params = params
        self.spec = CsvSpec(timestamp_columns=frozenset(job.report.timestamp_columns))

    def plan(self, min_per_day: int) -> tuple[dict[str, Any], Any]:
        return {"per_day": 0}, None

    def write_piece(self, plan: Mapping[str, Any], piece: tuple[int, int], output: _Output, prefetched: Any) -> None:
        stream_into(
            lambda sink: self._client.report_jobs.download(self._handle, sink),
            # The Reports Microservice writes RFC 4180 CSV (quoted cells), unlike the API's raw CSV actions.
            lambda chunks: output.write(output.cleaner.clean_quoted_bytes(chunks)),
        )

    def source_call(self, plan: Mapping[str, Any]) -> SourceCall:
        return SourceCall(
            "reportsMicroservice",
            "generate",
            {"reportName": self._job.report.report_name, "reportParameters": self._params},
        )


def _microservice_step(job: JobRecord, client: KalturaClient, deps: WeeklyDeps) -> StepResult:
    """Generate, then poll once per step (re-enqueued with a delay), then download
    (docs/kaltura.md#reports-microservice)."""
    state = dict(job.continuation or {})
    stored = state.get("handle")
    params = state.get("params") or render_params(job, job.window.start, job.window.end, lists=True)
    progress = advance_job(
        client.report_jobs,
        ReportJobHandle.from_dict(stored) if stored is not None else None,
        _must(job.report.report_name, "report_name"),
        params,
        now=deps.clock(),
        max_wait_seconds=job.limits.max_wait_seconds,
    )
    if progress.state is ReportJobState.FAILED:
        if progress.overdue:
            count("ReportJobPastDeadline")
        raise ReportJobFailedError(f"Reports Microservice report {progress.handle.report_name}: {progress.detail}")
    if progress.state is ReportJobState.PENDING:
        if progress.generated:
            logger.info("microservice report requested", extra=_job_log(job))
        continuation = {"handle": progress.handle.to_dict(), "params": params}
        return StepResult(continuation=continuation, delay_seconds=job.limits.poll_seconds, waiting=True)
    return _run_pieces(job, _DownloadSource(job, client, progress.handle, params), deps, None)


def render_params(job: JobRecord, start: int, end: int, *, lists: bool) -> dict[str, str | list[str]]:
    """Fill the report's parameter templates for ``[start, end)`` (see :mod:`kauto.weekly.config`).

    Dates are inclusive for these reports: ``to`` is the last second of the window. With ``lists`` a value that is a
    list placeholder alone becomes a JSON list (the microservice); otherwise lists are comma-joined.
    """
    window, filters = job.window, job.report.filters
    zone = zoneinfo.ZoneInfo(window.time_zone)
    first, last = dt.datetime.fromtimestamp(start, tz=zone), dt.datetime.fromtimestamp(end - 1, tz=zone)
    values = {
        "from_unix": str(start),
        "to_unix": str(end - 1),
        "from_day": first.strftime("%Y%m%d"),
        "to_day": last.strftime("%Y%m%d"),
        "from_date": first.date().isoformat(),
        "to_date": last.date().isoformat(),
        "tz_offset": str(window.offset_minutes(start)),
    } | {name: ",".join(filters.values(name)) for name in LIST_PLACEHOLDERS}
    params: dict[str, str | list[str]] = {}
    for key, template in job.report.params.items():
        parts = parse_template(template)
        alone = parts[0][1] if len(parts) == 1 and not parts[0][0] else None
        if lists and alone in LIST_PLACEHOLDERS:
            ids = list(filters.values(str(alone)))
            if ids:
                params[key] = ids
            continue
        text = "".join(literal + (values[name] if name is not None else "") for literal, name in parts)
        if text:
            params[key] = text
    return params


# ------------------------------------------------------------------------------------------------ the output


class _Output:
    """The cleaner and the writer of one report file, across pieces and steps."""

    def __init__(self, writer: ObjectWriter, cleaner: CsvCleaner, header_pending: bool, fallback: tuple[str, ...]):
        self.writer = writer
        self.cleaner = cleaner
        self._header_pending = header_pending
        self._fallback = fallback
        self._uploads: _UploadThread | None = None

    @classmethod
    def open(cls, store: ObjectStore, key: str, report: WeeklyReport, spec: CsvSpec) -> _Output:
        selected = selected_columns(report, spec)
        cleaner = CsvCleaner(spec, columns=selected or None)
        return cls(store.open_writer(key), cleaner, True, selected or spec.preferred_columns)

    @classmethod
    def resume(cls, store: ObjectStore, state: Mapping[str, Any], report: WeeklyReport, spec: CsvSpec) -> _Output:
        pending = bool(state["header_pending"])
        columns = tuple(state["columns"]) or selected_columns(report, spec)
        cleaner = CsvCleaner(spec, columns=columns or None, emit_header=pending)
        return cls(store.resume_writer(state["writer"]), cleaner, pending, columns or spec.preferred_columns)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.cleaner.columns or self._fallback

    def write(self, records: Iterable[str]) -> None:
        """Append cleaned records; the first one is the header while no header was written yet."""
        if self._uploads is None:
            self._uploads = _UploadThread(self.writer)
        uploads = self._uploads
        iterator = iter(records)
        if self._header_pending:
            header = next(iterator, None)
            if header is None:
                return
            uploads.write(header, 0)
            self._header_pending = False
        batch: list[str] = []
        size = 0
        for record in iterator:
            batch.append(record)
            size += len(record)
            if size >= WRITE_BATCH_CHARS:
                uploads.write("".join(batch), len(batch))
                batch, size = [], 0
        if batch:
            uploads.write("".join(batch), len(batch))

    def checkpoint(self) -> dict[str, Any]:
        self.stop()
        return {
            "writer": self.writer.checkpoint(),
            "columns": list(self.cleaner.columns),
            "header_pending": self._header_pending,
        }

    def complete(self) -> Any:
        if self._header_pending and self._fallback:
            # No piece had even a header line (an empty body): keep the layout stable for Athena.
            self.write(self.cleaner.clean_rows(self._fallback, []))
        self.stop()
        return self.writer.complete()

    def abort(self) -> None:
        self.stop(discard=True)
        self.writer.abort()

    def stop(self, *, discard: bool = False) -> None:
        """Wait until the upload thread has written everything queued (or, with ``discard``, drop it) and end it;
        raises the writer's error if it failed."""
        uploads, self._uploads = self._uploads, None
        if uploads is not None:
            uploads.close(discard=discard)


class _UploadThread:
    """Hands cleaned records to the object writer in a helper thread, so that uploading a full part to S3 overlaps
    cleaning the next rows instead of stalling them. At most ``depth`` batches wait (bounded memory)."""

    def __init__(self, writer: ObjectWriter, depth: int = UPLOAD_QUEUE_DEPTH) -> None:
        self._writer = writer
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._discard = threading.Event()
        self._thread = threading.Thread(target=self._run, name="weekly-report-upload", daemon=True)
        self._thread.start()

    def write(self, data: str, rows: int) -> None:
        self._put((data, rows))

    def close(self, *, discard: bool = False) -> None:
        if discard:
            self._discard.set()
        with contextlib.suppress(Exception):  # a thread that failed or ended already needs no end marker
            self._put(None)
        self._thread.join()
        if self._error is not None and not discard:
            raise self._error

    def _put(self, item: tuple[str, int] | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            if not self._thread.is_alive():
                raise RuntimeError("the report upload thread has stopped")
            try:
                self._queue.put(item, timeout=_PIPE_POLL_SECONDS)
            except queue.Full:
                continue
            return

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._discard.is_set():
                continue
            try:
                self._writer.write(item[0], rows=item[1])
            except BaseException as error:
                self._error = error
                return


def selected_columns(report: WeeklyReport, spec: CsvSpec) -> tuple[str, ...]:
    """The configured column selection with each timestamp column followed by its ``_iso`` twin."""
    columns: list[str] = []
    for name in report.columns:
        columns.append(name)
        if name in spec.timestamp_columns and name + ISO_SUFFIX not in report.columns:
            columns.append(name + ISO_SUFFIX)
    return tuple(columns)


def table_section(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The table of a getUrlForReportAsCsv file: its title, text and totals sections (each ended by a blank line)
    come first (docs/kaltura.md#report-csv-url; layout as the simulator documents it), so skip through the second blank
    line."""
    iterator = iter(chunks)
    head = bytearray()
    position = 0
    blank_lines = 0
    for chunk in iterator:
        head += chunk
        while blank_lines < 2:
            end = head.find(b"\n", position)
            if end < 0:
                break
            if not head[position:end].strip(b"\r"):
                blank_lines += 1
            position = end + 1
        if blank_lines == 2:
            if position < len(head):
                yield bytes(head[position:])
            yield from iterator
            return
        if len(head) > _PREAMBLE_LIMIT:
            raise CsvFormatError("a CSV export has no table section in its first MiB")


def _must(value: T | None, setting: str) -> T:
    """A setting the report's surface requires (the config validation guarantees it; a stored row might not)."""
    if value is None:
        raise ConfigError(setting, "required for this report surface")
    return value


def _log(message: JobMessage) -> dict[str, Any]:
    return {"partner_id": message.partner_id, "week": message.week, "report": message.report, "step": message.step}


def _job_log(job: JobRecord) -> dict[str, Any]:
    return {"partner_id": job.partner_id, "week": job.week, "report": job.report.name, "step": job.step}
