"""Weekly runs in the ledger: one run per (partner, ISO week), one job row per report, counters, completion.

Ledger rows (``LedgerTable``; every write that decides something is conditional):

- Run ``pk=weekly#<pid>``, ``sk=run#<YYYY-Www>``: ``run_id``, ``state`` (``running`` -> ``completing`` ->
  ``complete``), the report set (``specs``, fixed when the run starts), the window, ``jobs_expected``,
  ``jobs_done``, ``jobs_failed``, ``finished`` (report names), ``fanned_out``, and once complete ``manifest_key``.
  Claiming it is what makes a duplicate trigger produce one run (:func:`start_run`).
- Job ``pk=weekly#<pid>#<YYYY-Www>``, ``sk=job#<run_id>#<report>``: ``state`` (``queued``, ``waiting``,
  ``running``, ``done``, ``failed``), ``step``, a lease (``owner``, ``leased_until``), the report entry and window, the
  ``continuation`` of a job that checkpointed or polls, ``attempts``, and the ``result`` (key, rows, bytes, sha256,
  columns, source call) once done.

Steps. A job advances through numbered steps; each is one :class:`~kauto.weekly.messages.JobMessage`. The row is
updated to step ``s + 1`` (with the continuation) before the message for ``s + 1`` is sent, and ``sent_step`` records
that it was. A message for an older step is stale and dropped, except that the message just behind re-sends the next
one when ``sent_step`` shows it may not have gone out (the worker died in between). A message for the current step
takes the lease; a copy arriving while the lease is live is dropped: the owner's own message stays in the queue until
the owner succeeds, so nothing is lost if the owner dies.

Counters. Finishing a job moves its row to ``done``/``failed`` (once: final states never change) and then adds the
report to the run's ``finished`` list with its counter, conditional on the counters being unchanged since they were
read (optimistic concurrency, retried). That is idempotent: a redelivery finds the report already counted.

Completion. The write that makes ``finished`` reach ``jobs_expected`` is followed by the conditional transition
``running`` -> ``completing``, which exactly one worker wins. It writes ``manifest.json`` (the files of the jobs
that succeeded, the failed ones in its scope), sends the digest request ``{"type": "weekly_digest", "partner_id",
"week"}`` and marks the run ``complete``. If it dies before that, a redelivered message of a finished job takes the
stale ``completing`` over, so the request may be sent twice in that case: the digest
(:func:`kauto.weekly.digest.build_digest`, which the job runner calls) must be idempotent, and is, as it overwrites
the same keys and publishes through the once-only alert publisher. This module never imports the digest: the digest
reads runs from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kauto.automations.errors import RetryLaterError
from kauto.automations.telemetry import count, logger
from kauto.aws.ledger import OWNER_ATTRIBUTE, STATE_ATTRIBUTE, Item, LedgerConflictError
from kauto.aws.manifest import Manifest, ManifestFile, SourceCall, write_manifest
from kauto.aws.report_keys import report_key, weekly_prefix
from kauto.weekly.config import WeeklyReport, parse_report
from kauto.weekly.messages import DigestRequest, JobMessage

if TYPE_CHECKING:
    from kauto.weekly.deps import RunDeps, WeeklyDeps

RUN_TTL_SECONDS = 400 * 86400
"""Run and job rows outlive a year of week-over-week comparisons and any backfill of the recent past."""
LEASE_MARGIN_SECONDS = 60
"""A job lease lasts the invocation's remaining time plus this: it expires only after its owner has surely ended."""
DEFAULT_LEASE_SECONDS = 900
COMPLETION_LEASE_SECONDS = 300
MAX_COUNTER_ATTEMPTS = 25

RUN_RUNNING = "running"
RUN_COMPLETING = "completing"
RUN_COMPLETE = "complete"

JOB_QUEUED = "queued"
JOB_WAITING = "waiting"
JOB_RUNNING = "running"
JOB_DONE = "done"
JOB_FAILED = "failed"
JOB_FINAL_STATES = frozenset({JOB_DONE, JOB_FAILED})


class RunContentionError(RetryLaterError):
    """The run's counters kept changing under this worker; the message is retried later."""


# ------------------------------------------------------------------------------------------------- ISO weeks


@dataclass(frozen=True, slots=True)
class WeekWindow:
    """An ISO week in a time zone: ``days`` are the 8 local midnights from Monday to the next Monday (unix seconds),
    so the window is ``[days[0], days[7])`` and day ``i`` is ``[days[i], days[i + 1])`` (23 or 25 hours long when the
    clocks change)."""

    week: str
    time_zone: str
    days: tuple[int, ...]

    @property
    def start(self) -> int:
        """Monday 00:00 local, unix seconds."""
        return self.days[0]

    @property
    def end(self) -> int:
        """The next Monday 00:00 local (excluded), unix seconds."""
        return self.days[-1]

    def local_date(self, index: int) -> dt.date:
        """The calendar date of day ``index`` (0 = Monday)."""
        year, week = int(self.week[:4]), int(self.week[6:])
        return dt.date.fromisocalendar(year, week, 1) + dt.timedelta(days=index)

    def offset_minutes(self, instant: int) -> int:
        """Kaltura's ``timeZoneOffset`` at ``instant``: minutes *west* of UTC, like JavaScript (UTC-4 -> 240)."""
        moment = dt.datetime.fromtimestamp(instant, tz=zoneinfo.ZoneInfo(self.time_zone))
        offset = moment.utcoffset() or dt.timedelta(0)
        return -int(offset.total_seconds() // 60)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept in job rows)."""
        return {"week": self.week, "time_zone": self.time_zone, "days": list(self.days)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeekWindow:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["week"]), str(data["time_zone"]), tuple(int(day) for day in data["days"]))


def week_window(week: str, time_zone: str) -> WeekWindow:
    """The window of ISO ``week`` (``YYYY-Www``) in the IANA zone ``time_zone``."""
    zone = zoneinfo.ZoneInfo(time_zone)
    monday = dt.date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    days = tuple(
        int(dt.datetime.combine(monday + dt.timedelta(days=index), dt.time(0), tzinfo=zone).timestamp())
        for index in range(8)
    )
    return WeekWindow(week, time_zone, days)


def iso_week_of(day: dt.date) -> str:
    """``YYYY-Www`` of ``day``."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def previous_week(now: float, time_zone: str) -> str:
    """The ISO week before the one ``now`` falls in, in ``time_zone`` (what a Monday-morning schedule reports on)."""
    today = dt.datetime.fromtimestamp(now, tz=zoneinfo.ZoneInfo(time_zone)).date()
    return iso_week_of(today - dt.timedelta(days=7))


# ------------------------------------------------------------------------------------------------------ keys


def run_key(partner_id: int, week: str) -> tuple[str, str]:
    """``(pk, sk)`` of a run row."""
    return f"weekly#{partner_id}", f"run#{week}"


def job_key(partner_id: int, week: str, run_id: str, report: str) -> tuple[str, str]:
    """``(pk, sk)`` of a job row."""
    return f"weekly#{partner_id}#{week}", f"job#{run_id}#{report}"


def report_object_key(partner_id: int, week: str, report: str) -> str:
    """``weekly/partner_id=<pid>/week=<YYYY-Www>/report=<report>/<report>.csv`` (see ``report_keys.report_key``)."""
    return report_key(weekly_prefix(partner_id, week), report)


# ------------------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run row as stored."""

    partner_id: int
    week: str
    run_id: str
    state: str
    reports: tuple[str, ...]
    jobs_expected: int
    jobs_done: int
    jobs_failed: int
    finished: tuple[str, ...]
    fanned_out: bool
    window_start: int
    window_end: int
    time_zone: str
    manifest_key: str | None
    item: Item

    @property
    def all_finished(self) -> bool:
        """Every job is done or failed."""
        return len(self.finished) >= self.jobs_expected

    @property
    def specs(self) -> tuple[WeeklyReport, ...]:
        """The report set the run was started with."""
        return tuple(parse_report(spec, f"run {self.week}.specs") for spec in self.item.get("specs", []))

    @classmethod
    def from_item(cls, partner_id: int, week: str, item: Item) -> RunRecord:
        """Parse a run row."""
        return cls(
            partner_id=partner_id,
            week=week,
            run_id=str(item["run_id"]),
            state=str(item.get(STATE_ATTRIBUTE, "")),
            reports=tuple(item.get("reports", [])),
            jobs_expected=int(item.get("jobs_expected", 0)),
            jobs_done=int(item.get("jobs_done", 0)),
            jobs_failed=int(item.get("jobs_failed", 0)),
            finished=tuple(item.get("finished", [])),
            fanned_out=bool(item.get("fanned_out", False)),
            window_start=int(item.get("window_start", 0)),
            window_end=int(item.get("window_end", 0)),
            time_zone=str(item.get("time_zone", "UTC")),
            manifest_key=item.get("manifest_key"),
            item=item,
        )


def get_run(partner_id: int, week: str, deps: RunDeps | WeeklyDeps) -> RunRecord | None:
    """The run of ``partner_id``'s ``week``, if one was started."""
    item = deps.ledger.get(*run_key(partner_id, week))
    return RunRecord.from_item(partner_id, week, item) if item is not None else None


class RunStartStatus(StrEnum):
    """What :func:`start_run` did."""

    STARTED = "started"
    DUPLICATE = "duplicate"
    """The run exists and its jobs were sent: nothing to do."""
    FAN_OUT_RESUMED = "fan_out_resumed"
    """The run existed but an earlier trigger stopped before sending every job: the rest were sent."""
    RESTARTED = "restarted"
    """Forced: a new run replaced the existing one (same keys are overwritten)."""
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class RunStart:
    """The result of :func:`start_run` for one partner."""

    partner_id: int
    week: str
    status: RunStartStatus
    run_id: str | None = None
    jobs_sent: int = 0


def start_run(partner_id: int, week: str, deps: RunDeps, *, trigger: str, force: bool = False) -> RunStart:
    """Start the run of (``partner_id``, ``week``) and send one job message per report, once.

    The run row is claimed first; a trigger that finds it (a duplicate, a scheduler retry) only completes a fan-out
    that an earlier trigger left unfinished. With ``force`` a new run replaces the existing one (backfill/replay):
    its jobs rewrite the same S3 keys and the old run's remaining messages are dropped as superseded.
    """
    settings = deps.settings(partner_id)
    if not settings.enabled:
        return RunStart(partner_id, week, RunStartStatus.DISABLED)
    window = week_window(week, deps.time_zone(partner_id))
    now = int(deps.clock())
    run_id = uuid.uuid4().hex
    attrs = _new_run_attrs(run_id, window, settings.reports, trigger, now) | {
        "limits": {
            "poll_seconds": settings.microservice_poll_seconds,
            "max_wait_seconds": settings.microservice_max_wait_seconds,
            "checkpoint_margin_seconds": settings.checkpoint_margin_seconds,
        }
    }
    pk, sk = run_key(partner_id, week)
    claim = deps.ledger.claim(pk, sk, attrs, ttl_seconds=RUN_TTL_SECONDS)
    if claim.claimed:
        status = RunStartStatus.STARTED
        run = RunRecord.from_item(partner_id, week, claim.item)
    else:
        existing = RunRecord.from_item(partner_id, week, claim.item)
        if force:
            item = deps.ledger.update(
                pk,
                sk,
                attrs,
                expect={"run_id": existing.run_id},
                remove=("manifest_key", "completed_at", "digest_requested_at", "completer", "completing_since"),
                ttl_seconds=RUN_TTL_SECONDS,
            )
            status, run = RunStartStatus.RESTARTED, RunRecord.from_item(partner_id, week, item)
        elif existing.fanned_out:
            logger.info("weekly run already started", extra={"partner_id": partner_id, "week": week})
            count("WeeklyRunStart", status=RunStartStatus.DUPLICATE.value)
            return RunStart(partner_id, week, RunStartStatus.DUPLICATE, existing.run_id)
        else:
            status, run = RunStartStatus.FAN_OUT_RESUMED, existing
    sent = _fan_out(run, deps)
    logger.info(
        "weekly run started",
        extra={"partner_id": partner_id, "week": week, "status": status.value, "jobs": sent, "run_id": run.run_id},
    )
    count("WeeklyRunStart", status=status.value)
    return RunStart(partner_id, week, status, run.run_id, sent)


def _new_run_attrs(
    run_id: str, window: WeekWindow, reports: Sequence[WeeklyReport], trigger: str, now: int
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        STATE_ATTRIBUTE: RUN_RUNNING,
        "week": window.week,
        "time_zone": window.time_zone,
        "window_start": window.start,
        "window_end": window.end,
        "specs": [report.to_dict() for report in reports],
        "reports": [report.name for report in reports],
        "jobs_expected": len(reports),
        "jobs_done": 0,
        "jobs_failed": 0,
        "finished": [],
        "fanned_out": False,
        "trigger": trigger,
        "created_at": now,
    }


def _fan_out(run: RunRecord, deps: RunDeps) -> int:
    """Create each job row (once) and send its first message; rows already past step 0 are left alone."""
    sent = 0
    now = int(deps.clock())
    for report in run.specs:
        zone = report.time_zone or run.time_zone
        pk, sk = job_key(run.partner_id, run.week, run.run_id, report.name)
        attrs = {
            STATE_ATTRIBUTE: JOB_QUEUED,
            "step": 0,
            "report": report.to_dict(),
            "window": week_window(run.week, zone).to_dict(),
            "limits": dict(run.item.get("limits", {})),
            "attempts": 0,
            "created_at": now,
        }
        claim = deps.ledger.claim(pk, sk, attrs, ttl_seconds=RUN_TTL_SECONDS)
        row = claim.item
        if claim.claimed or (row.get(STATE_ATTRIBUTE) == JOB_QUEUED and row.get("step") == 0):
            deps.jobs.send(JobMessage(run.partner_id, run.week, run.run_id, report.name, 0))
            sent += 1
    deps.ledger.update(*run_key(run.partner_id, run.week), {"fanned_out": True}, expect={"run_id": run.run_id})
    return sent


# ------------------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Per-run limits copied into each job row when the run starts."""

    poll_seconds: int = 60
    max_wait_seconds: int = 6 * 3600
    checkpoint_margin_seconds: int = 120

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobLimits:
        """From a row's ``limits`` (missing values keep their defaults)."""
        defaults = cls()
        return cls(
            poll_seconds=int(data.get("poll_seconds", defaults.poll_seconds)),
            max_wait_seconds=int(data.get("max_wait_seconds", defaults.max_wait_seconds)),
            checkpoint_margin_seconds=int(data.get("checkpoint_margin_seconds", defaults.checkpoint_margin_seconds)),
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job row as stored, with its report entry and window parsed."""

    partner_id: int
    week: str
    run_id: str
    report: WeeklyReport
    window: WeekWindow
    limits: JobLimits
    state: str
    step: int
    attempts: int
    continuation: Mapping[str, Any] | None
    item: Item

    @property
    def key(self) -> tuple[str, str]:
        """``(pk, sk)`` of the row."""
        return job_key(self.partner_id, self.week, self.run_id, self.report.name)

    def message(self, step: int) -> JobMessage:
        """The message for ``step`` of this job."""
        return JobMessage(self.partner_id, self.week, self.run_id, self.report.name, step)

    @classmethod
    def from_item(cls, message: JobMessage, item: Item) -> JobRecord:
        """Parse the row ``message`` points at."""
        continuation = item.get("continuation")
        return cls(
            partner_id=message.partner_id,
            week=message.week,
            run_id=message.run_id,
            report=parse_report(item["report"], f"job {message.report}.report"),
            window=WeekWindow.from_dict(item["window"]),
            limits=JobLimits.from_dict(item.get("limits") or {}),
            state=str(item.get(STATE_ATTRIBUTE, "")),
            step=int(item.get("step", 0)),
            attempts=int(item.get("attempts", 0)),
            continuation=continuation if isinstance(continuation, Mapping) else None,
            item=item,
        )


class LeaseStatus(StrEnum):
    """Whether a message may run its job step."""

    LEASED = "leased"
    STALE = "stale"
    """An older step (or a step of a replaced run): dropped."""
    BUSY = "busy"
    """Another worker holds the lease of this step: this copy is dropped."""
    ALREADY_FINISHED = "already_finished"
    UNKNOWN = "unknown"
    """No such job row (expired, or never created): dropped."""


@dataclass(frozen=True, slots=True)
class JobLease:
    """The outcome of :func:`lease_job`: ``job`` and ``token`` are set when ``status`` is LEASED."""

    status: LeaseStatus
    job: JobRecord | None = None
    token: str = ""


def lease_job(message: JobMessage, deps: WeeklyDeps) -> JobLease:
    """Take the lease of the job step ``message`` names, or say why not (see the module docstring)."""
    run = get_run(message.partner_id, message.week, deps)
    if run is None or run.run_id != message.run_id:
        return JobLease(LeaseStatus.STALE)  # the week's run was replaced by a forced one
    item = deps.ledger.get(*job_key(message.partner_id, message.week, message.run_id, message.report))
    if item is None:
        return JobLease(LeaseStatus.UNKNOWN)
    job = JobRecord.from_item(message, item)
    now = int(deps.clock())
    if job.state in JOB_FINAL_STATES:
        # The worker that finished it may have died before counting it: counting again is a no-op.
        record_job_finished(job, job.state == JOB_DONE, deps)
        return JobLease(LeaseStatus.ALREADY_FINISHED, job)
    owner = item.get(OWNER_ATTRIBUTE)
    lease_live = owner is not None and int(item.get("leased_until", 0)) > now
    if message.step != job.step:
        if message.step == job.step - 1 and not lease_live and int(item.get("sent_step", -1)) < job.step:
            # The worker of the previous step updated the row and may have died before sending this step's message.
            _send_step(job, job.step, 0, deps)
        return JobLease(LeaseStatus.STALE, job)
    if lease_live:
        return JobLease(LeaseStatus.BUSY, job)
    token = uuid.uuid4().hex
    left = deps.time_left()
    lease_seconds = int(left) if left is not None else DEFAULT_LEASE_SECONDS
    try:
        item = deps.ledger.update(
            *job.key,
            {
                STATE_ATTRIBUTE: JOB_RUNNING,
                OWNER_ATTRIBUTE: token,
                "leased_until": now + lease_seconds + LEASE_MARGIN_SECONDS,
            },
            expect={"step": job.step, OWNER_ATTRIBUTE: owner},
        )
    except LedgerConflictError:
        return JobLease(LeaseStatus.BUSY, job)
    return JobLease(LeaseStatus.LEASED, JobRecord.from_item(message, item), token)


def continue_job(
    job: JobRecord,
    token: str,
    deps: WeeklyDeps,
    *,
    continuation: Mapping[str, Any] | None,
    delay_seconds: int,
    waiting: bool = False,
    attempts: int = 0,
) -> None:
    """End this step: store ``continuation`` (None: start over) in the row at the next step, then send its message.

    ``waiting`` marks a job that waits on Kaltura (a microservice report being generated); ``attempts`` counts failed
    attempts in a row (0 after progress).
    """
    next_step = job.step + 1
    attrs: dict[str, Any] = {
        STATE_ATTRIBUTE: JOB_WAITING if waiting else JOB_QUEUED,
        "step": next_step,
        "attempts": attempts,
        "continuation": dict(continuation) if continuation is not None else None,
        "sent_step": job.step,
    }
    deps.ledger.update(*job.key, attrs, expect={OWNER_ATTRIBUTE: token}, remove=(OWNER_ATTRIBUTE, "leased_until"))
    _send_step(job, next_step, delay_seconds, deps)


def _send_step(job: JobRecord, step: int, delay_seconds: int, deps: RunDeps | WeeklyDeps) -> None:
    deps.jobs.send(job.message(step), delay_seconds=delay_seconds)
    # A conflict means the job moved on already (its next step ran): nothing left to record.
    with contextlib.suppress(LedgerConflictError):
        deps.ledger.update(*job.key, {"sent_step": step}, expect={"step": step})


def release_job(job: JobRecord, token: str, deps: WeeklyDeps) -> None:
    """Give the lease back without progress (the message will be retried by SQS)."""
    try:
        deps.ledger.update(
            *job.key,
            {STATE_ATTRIBUTE: JOB_QUEUED},
            expect={OWNER_ATTRIBUTE: token},
            remove=(OWNER_ATTRIBUTE, "leased_until"),
        )
    except LedgerConflictError:
        logger.warning("job lease was taken over before it was released", extra=_job_log(job))


def finish_job(
    job: JobRecord, token: str, deps: WeeklyDeps, *, result: Mapping[str, Any] | None, error: str | None = None
) -> RunRecord | None:
    """Record the job as done (with its ``result``) or failed (``error``), count it in the run, and complete the run
    when it was the last one. Returns the run as it stands afterwards."""
    ok = result is not None
    attrs: dict[str, Any] = {STATE_ATTRIBUTE: JOB_DONE if ok else JOB_FAILED, "finished_at": int(deps.clock())}
    if ok:
        attrs["result"] = dict(result or {})
    else:
        attrs["error"] = error or "unknown"
    try:
        deps.ledger.update(*job.key, attrs, expect={OWNER_ATTRIBUTE: token}, remove=(OWNER_ATTRIBUTE, "leased_until"))
    except LedgerConflictError as conflict:
        if conflict.current_state not in JOB_FINAL_STATES:
            raise
        ok = conflict.current_state == JOB_DONE  # another copy finished it: count what it recorded
    return record_job_finished(job, ok, deps)


def record_job_finished(job: JobRecord, ok: bool, deps: WeeklyDeps) -> RunRecord | None:
    """Add the job to its run's ``finished`` list and counters (idempotent), then complete the run if it was the
    last one. Returns None when the run was replaced."""
    pk, sk = run_key(job.partner_id, job.week)
    for _ in range(MAX_COUNTER_ATTEMPTS):
        run = get_run(job.partner_id, job.week, deps)
        if run is None or run.run_id != job.run_id:
            return None
        if job.report.name in run.finished:
            break
        attrs = {
            "finished": [*run.finished, job.report.name],
            "jobs_done": run.jobs_done + (1 if ok else 0),
            "jobs_failed": run.jobs_failed + (0 if ok else 1),
        }
        expect = {"run_id": run.run_id, "jobs_done": run.jobs_done, "jobs_failed": run.jobs_failed}
        try:
            item = deps.ledger.update(pk, sk, attrs, expect=expect)
        except LedgerConflictError:
            continue  # another job finished meanwhile: read the counters again
        run = RunRecord.from_item(job.partner_id, job.week, item)
        break
    else:
        raise RunContentionError(f"run {job.week} of partner {job.partner_id}: counters kept changing")
    if run.all_finished and run.state != RUN_COMPLETE:
        return complete_run(run, deps)
    return run


def complete_run(run: RunRecord, deps: WeeklyDeps) -> RunRecord:
    """Claim the completion (``running`` -> ``completing``, or a stale ``completing``), write the manifest, send the
    digest request and mark the run complete. A run someone else is completing is returned as it is."""
    pk, sk = run_key(run.partner_id, run.week)
    now = int(deps.clock())
    token = uuid.uuid4().hex
    if run.state == RUN_RUNNING:
        expect: dict[str, Any] = {"run_id": run.run_id, STATE_ATTRIBUTE: RUN_RUNNING}
    elif run.state == RUN_COMPLETING and int(run.item.get("completing_since", 0)) + COMPLETION_LEASE_SECONDS < now:
        expect = {"run_id": run.run_id, STATE_ATTRIBUTE: RUN_COMPLETING, "completer": run.item.get("completer")}
    else:
        return run
    try:
        deps.ledger.update(
            pk, sk, {STATE_ATTRIBUTE: RUN_COMPLETING, "completer": token, "completing_since": now}, expect=expect
        )
    except LedgerConflictError:
        return run
    manifest_key = write_run_manifest(run, deps)
    deps.jobs.send(DigestRequest(run.partner_id, run.week))
    item = deps.ledger.update(
        pk,
        sk,
        {
            STATE_ATTRIBUTE: RUN_COMPLETE,
            "completed_at": int(deps.clock()),
            "manifest_key": manifest_key,
            "digest_requested_at": int(deps.clock()),
        },
        expect={"completer": token},
    )
    logger.info(
        "weekly run complete",
        extra={
            "partner_id": run.partner_id,
            "week": run.week,
            "run_id": run.run_id,
            "jobs_done": run.jobs_done,
            "jobs_failed": run.jobs_failed,
        },
    )
    count("WeeklyRunComplete", value=1)
    if run.jobs_failed:
        count("WeeklyReportsFailed", value=run.jobs_failed)
    return RunRecord.from_item(run.partner_id, run.week, item)


def job_rows(run: RunRecord, deps: RunDeps | WeeklyDeps) -> dict[str, Item]:
    """The job rows of ``run`` by report name."""
    pk, _ = job_key(run.partner_id, run.week, run.run_id, "x")
    prefix = f"job#{run.run_id}#"
    return {str(item["sk"])[len(prefix) :]: item for item in deps.ledger.query(pk, prefix)}


def write_run_manifest(run: RunRecord, deps: WeeklyDeps) -> str:
    """Write ``manifest.json`` of the run: every report that succeeded, in the configured order; returns its key."""
    rows = job_rows(run, deps)
    files: list[ManifestFile] = []
    failed: list[str] = []
    for name in run.reports:
        row = rows.get(name, {})
        result = row.get("result")
        if row.get(STATE_ATTRIBUTE) != JOB_DONE or not isinstance(result, Mapping):
            failed.append(name)
            continue
        source = result.get("source") or {}
        files.append(
            ManifestFile(
                report=name,
                key=str(result["key"]),
                rows=int(result["rows"]),
                columns=tuple(result.get("columns", [])),
                bytes=int(result["bytes"]),
                sha256=str(result["sha256"]),
                source=SourceCall(
                    str(source.get("service", "")), str(source.get("action", "")), source.get("params") or {}
                ),
            )
        )
    scope = {"week": run.week, "run_id": run.run_id, "time_zone": run.time_zone}
    if failed:
        scope["failed_reports"] = ",".join(failed)
    manifest = Manifest(
        partner_id=run.partner_id,
        kind="weekly",
        window_start=dt.datetime.fromtimestamp(run.window_start, tz=dt.UTC),
        window_end=dt.datetime.fromtimestamp(run.window_end, tz=dt.UTC),
        files=tuple(files),
        generated_at=dt.datetime.fromtimestamp(int(deps.clock()), tz=dt.UTC),
        scope=scope,
    )
    return write_manifest(deps.store, weekly_prefix(run.partner_id, run.week), manifest).key


def _job_log(job: JobRecord) -> dict[str, Any]:
    return {"partner_id": job.partner_id, "week": job.week, "report": job.report.name, "step": job.step}
