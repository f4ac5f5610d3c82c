"""Kaltura Room session reports: pull the configured reports of one ended session into S3, once.

Triggers (all end in :func:`pull_session`):

- :func:`pull_session_reports`: a ``session_ended`` event, from the session cue point webhook or from the sweep.
- :func:`kauto.automations.recordings.handle_meeting_recording_ready`: a meeting recording became ready and the
  session it recorded was found in report 6000.

Per session (partner, room entry, session cue point id):

- The ledger row ``pk=session#<pid>#<room>``, ``sk=<session id>`` is claimed (state ``pulling``) before any pull and
  set to ``done`` after the manifest is written. A done session is not pulled again unless forced (or, for its
  failed reports only, retried by the sweep); a re-run writes the same keys: the S3 prefix chosen by the first
  attempt is kept in the row.
- Room reports 6000/6001/6002 (:mod:`kauto.automations.room_reports`) are written first, in one delivery. The
  chat-and-collaboration reports (:mod:`kauto.automations.collab_reports`) are Reports Microservice jobs: generated
  in that delivery, then polled once per delivery of the same event, sent again with a
  :data:`COLLAB_POLL_SECONDS` delay (state ``collecting_reports``; what was written so far stays in the row), never
  by a sleeping worker. A report that fails, or stays pending past ``session_reports.pending_limit_seconds``, is
  alerted once (``session_report_failed``), listed under ``missing_reports`` in the manifest and retried by the
  sweep (up to :data:`MAX_REPORT_RETRIES` times); the other reports of the session are written regardless.
- Keys (docs/architecture.md#contracts): ``sessions/partner_id=<pid>/date=<session start, UTC>/…`` with one
  ``report=<name>/`` folder per report, the summary page ``summary.html`` (:mod:`kauto.automations.session_summary`)
  and ``manifest.json`` (written last: it marks a complete run).
- Threshold metrics are accumulated from the room report rows while they stream, participation counts from the
  files written (:mod:`kauto.automations.thresholds`); alerts are published once per (rule, session) and link the
  summary page.

Timing: a pull waits until the padded window has closed (the event is sent again with a delay), and when report 6000
does not list the session yet (analytics lag behind the session end) it is retried a few times, 15 minutes apart,
before the reports are written as they are.

Names, e-mail addresses and message text go to the bucket only: logs, ledger rows and alerts carry ids and counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kauto.automations.collab_reports import (
    COLLAB_REPORTS,
    JOB_FAILED,
    JOB_PENDING,
    JOB_WRITTEN,
    CollabJob,
    advance_collab_report,
    collab_parameters,
    manifest_file_from_state,
    manifest_file_state,
    partner_time_zone,
    room_virtual_event_id,
)
from kauto.automations.errors import RetryLaterError
from kauto.automations.room_reports import ROOM_DATA_REPORT, ROOM_REPORTS, write_room_report
from kauto.automations.session_events import (
    MAX_FUTURE_END_SECONDS,
    RETRY_REPORTS_FIELD,
    RoomSession,
    SessionEventError,
    log_ids,
    session_from_event,
)
from kauto.automations.session_summary import (
    HTML_CONTENT_TYPE,
    read_summary,
    render_summary_page,
    summary_page_key,
)
from kauto.automations.telemetry import count, logger
from kauto.automations.thresholds import SessionMetrics, publish_session_alerts
from kauto.aws.alerts import Alert, Severity
from kauto.aws.ledger import OWNER_ATTRIBUTE, STATE_ATTRIBUTE, LedgerConflictError
from kauto.aws.manifest import Manifest, ManifestFile, write_manifest
from kauto.aws.queue import MAX_DELAY_SECONDS
from kauto.aws.report_keys import session_prefix
from kauto.errors import KautoError
from kauto.models import EventKind, KalturaEvent

if TYPE_CHECKING:
    from kauto.automation_config import SessionReportRules, ThresholdRules
    from kauto.automations.deps import AutomationDeps
    from kauto.kaltura import KalturaClient

STATE_PULLING = "pulling"
STATE_WAITING = "waiting_for_data"
STATE_COLLECTING = "collecting_reports"
STATE_FAILED = "failed"
STATE_DONE = "done"

SESSION_LEDGER_TTL_SECONDS = 400 * 86400
"""Session rows outlive any sweep window by far; they only stop a session from being pulled twice."""
NO_DATA_RETRY_SECONDS = 900
NO_DATA_MAX_ATTEMPTS = 4
"""A session report 6000 does not list yet is retried until this attempt (15 minutes apart), then pulled anyway."""
COLLAB_POLL_SECONDS = 60
"""Delay between two polls of the session's Reports Microservice jobs (an SQS message delay)."""
MAX_REPORT_RETRIES = 3
"""How often the sweep retries a session's failed chat-and-collaboration reports."""
REPORT_FAILED_RULE = "session_report_failed"


class SessionPullInProgressError(RetryLaterError):
    """Another worker is pulling this session right now; retry the message later (it will then find it done)."""

    def __init__(self, partner_id: int, room_entry_id: str, session_id: str) -> None:
        super().__init__(
            f"session {room_entry_id}/{session_id} of partner {partner_id} is being pulled by another worker"
        )
        self.partner_id = partner_id
        self.room_entry_id = room_entry_id
        self.session_id = session_id


class SessionPullStatus(StrEnum):
    """What a trigger did."""

    PULLED = "pulled"
    ALREADY_DONE = "already_done"
    DEFERRED = "deferred"
    """The padded window has not closed yet: the event was sent again with a delay."""
    WAITING_FOR_DATA = "waiting_for_data"
    """Report 6000 does not list the session yet: the event was sent again with a delay."""
    WAITING_FOR_REPORTS = "waiting_for_reports"
    """Reports Microservice jobs are still pending: the event was sent again with a delay to poll them."""
    IN_PROGRESS = "in_progress"
    """Another delivery is polling this session's reports: nothing to do for this one."""
    DISABLED = "disabled"
    NOT_MATCHED = "not_matched"
    """A meeting recording whose session could not be identified (the sweep still finds the session)."""


@dataclass(frozen=True, slots=True)
class SessionPullOutcome:
    """The result of a trigger: ``manifest_key`` and ``files`` (S3 keys) when reports were written."""

    status: SessionPullStatus
    session: RoomSession | None = None
    manifest_key: str | None = None
    files: tuple[str, ...] = ()
    alerts_published: int = 0
    detail: str = ""
    missing: tuple[str, ...] = ()
    page_key: str | None = None


# ------------------------------------------------------------------------------------------------------ triggers


def pull_session_reports(event: KalturaEvent, deps: AutomationDeps, *, force: bool = False) -> SessionPullOutcome:
    """Pull the reports of the session a ``session_ended`` event names (a done session only when ``force``).

    Raises :class:`SessionEventError` for an event without room, session id or end time,
    :class:`SessionPullInProgressError` while another worker pulls the same session, and the Kaltura/AWS errors of
    the pull itself (the ledger row is then marked failed so that the retry takes over at once).
    """
    if event.kind is not EventKind.SESSION_ENDED:
        raise SessionEventError("kind", f"expected a session_ended event, got {event.kind.value}")
    rules = deps.config.partner(event.partner_id).session_reports
    if not rules.enabled:
        outcome = SessionPullOutcome(SessionPullStatus.DISABLED, detail="session reports are disabled for the partner")
        return counted(outcome, "session_ended")
    session = session_from_event(event)
    now = int(deps.clock())
    window_end = session.end + rules.window_padding_seconds
    if session.end > now + MAX_FUTURE_END_SECONDS:
        raise SessionEventError("endTime", f"session {session.session_id} ends more than a day in the future")
    if now < window_end:
        # Kaltura cannot report on time that has not passed: pull once the padded window has closed.
        delay = min(MAX_DELAY_SECONDS, window_end - now)
        deps.events.send(event, delay_seconds=delay)
        logger.info("session window still open, pull deferred", extra=log_ids(session) | {"delay_s": delay})
        outcome = SessionPullOutcome(SessionPullStatus.DEFERRED, session, detail=f"sent again with {delay} s delay")
        return counted(outcome, "session_ended")
    return counted(pull_session(session, deps, trigger=event, force=force), "session_ended")


# ------------------------------------------------------------------------------------------------ the session pull


def pull_session(
    session: RoomSession, deps: AutomationDeps, *, trigger: KalturaEvent, force: bool = False
) -> SessionPullOutcome:
    """Claim the session in the ledger, pull its reports into S3 (or take the next step of its microservice
    reports), evaluate thresholds, mark it done.

    ``trigger`` is the event that asked for it: its ``dedupe_key`` is recorded (a redelivery of the same event may
    take over its own stale claim) and it is sent again, delayed, while report 6000 does not list the session yet or
    its microservice reports are pending.
    """
    rules = deps.config.partner(session.partner_id).session_reports
    now = int(deps.clock())
    retry_reports = trigger.fields.get(RETRY_REPORTS_FIELD) in (1, "1")
    claim = _claim(deps, session, trigger.dedupe_key, now, force=force, retry_reports=retry_reports)
    if isinstance(claim, SessionPullStatus):
        return SessionPullOutcome(claim, session)
    try:
        outcome = _pull(session, deps, claim, rules, trigger)
    except BaseException as error:
        _release(deps, session, claim, STATE_FAILED, {"error": type(error).__name__})
        raise
    return outcome


@dataclass(slots=True)
class _Claim:
    pk: str
    sk: str
    token: str
    prefix: str
    no_data_attempts: int
    row: Mapping[str, Any] = field(default_factory=dict)
    """The row before this claim when the run continues (room reports already written); empty for a fresh run."""
    retry_reports: bool = False


def session_ledger_key(partner_id: int, room_entry_id: str, session_id: str) -> tuple[str, str]:
    """``(pk, sk)`` of a session's ledger row."""
    return f"session#{partner_id}#{room_entry_id}", session_id


def retryable_reports(row: Mapping[str, Any]) -> bool:
    """Whether a done session row has failed reports the sweep should retry."""
    retries = row.get("report_retries")
    return bool(row.get("failed_reports")) and int(str(retries or 0)) < MAX_REPORT_RETRIES


def _claim(
    deps: AutomationDeps, session: RoomSession, trigger: str, now: int, *, force: bool, retry_reports: bool
) -> _Claim | SessionPullStatus:
    pk, sk = session_ledger_key(session.partner_id, session.room_entry_id, session.session_id)
    token = uuid.uuid4().hex
    prefix = session_prefix(
        session.partner_id,
        datetime.fromtimestamp(session.start, tz=UTC),
        session.room_entry_id,
        session.session_id,
    )
    attrs: dict[str, Any] = {
        STATE_ATTRIBUTE: STATE_PULLING,
        OWNER_ATTRIBUTE: token,
        "trigger": trigger,
        "started_at": now,
        "prefix": prefix,
        "session_start": session.start,
        "session_end": session.end,
        "no_data_attempts": 0,
    }
    result = deps.ledger.claim(pk, sk, attrs, ttl_seconds=SESSION_LEDGER_TTL_SECONDS)
    if result.claimed:
        return _Claim(pk, sk, token, prefix, 0)
    current = result.item
    state = current.get(STATE_ATTRIBUTE)
    retrying = state == STATE_DONE and not force and retry_reports and retryable_reports(current)
    if state == STATE_DONE and not force and not retrying:
        logger.info("session already pulled", extra=log_ids(session))
        return SessionPullStatus.ALREADY_DONE
    started_at = current.get("started_at")
    # A claim older than a worker can run belongs to a worker that died.
    stale = not isinstance(started_at, int) or now - started_at >= deps.worker_timeout_seconds
    if state == STATE_PULLING and not stale and current.get("trigger") != trigger:
        raise SessionPullInProgressError(session.partner_id, session.room_entry_id, session.session_id)
    collecting_until = current.get("collecting_until")
    if (
        state == STATE_COLLECTING
        and not force
        and current.get("trigger") != trigger
        and isinstance(collecting_until, int)
        and now < collecting_until
    ):
        # The delivery that polls the reports is on its way back; a lost one is taken over once this passes.
        logger.info("session reports are being collected by another delivery", extra=log_ids(session))
        return SessionPullStatus.IN_PROGRESS
    # Take over a failed, waiting, collecting, stale or forced run, or this very event's own earlier attempt. The
    # first attempt's prefix is kept so that every run of the session writes the same keys.
    kept_prefix = current.get("prefix")
    prefix = kept_prefix if isinstance(kept_prefix, str) else prefix
    attempts = current.get("no_data_attempts")
    attempts = attempts if isinstance(attempts, int) else 0
    update: dict[str, Any] = {
        STATE_ATTRIBUTE: STATE_PULLING,
        OWNER_ATTRIBUTE: token,
        "trigger": trigger,
        "started_at": now,
        "prefix": prefix,
    }
    if retrying:
        update["report_retries"] = int(str(current.get("report_retries") or 0)) + 1
    try:
        deps.ledger.update(
            pk, sk, update, expect={STATE_ATTRIBUTE: state, OWNER_ATTRIBUTE: current.get(OWNER_ATTRIBUTE)}
        )
    except LedgerConflictError as conflict:
        # Someone else took it over between the read and this write.
        if conflict.current_state == STATE_DONE and not force:
            return SessionPullStatus.ALREADY_DONE
        raise SessionPullInProgressError(session.partner_id, session.room_entry_id, session.session_id) from conflict
    logger.info("session claim taken over", extra=log_ids(session) | {"previous_state": str(state)})
    # Continue from the room reports already written, unless forced to start over.
    row = current if not force and isinstance(current.get("room_files"), list) else {}
    return _Claim(pk, sk, token, prefix, attempts, row, retrying)


def _release(deps: AutomationDeps, session: RoomSession, claim: _Claim, state: str, attrs: Mapping[str, Any]) -> None:
    """Leave ``pulling`` for ``state`` if the claim is still ours (a failure path: never raises over the cause)."""
    try:
        deps.ledger.update(claim.pk, claim.sk, {STATE_ATTRIBUTE: state, **attrs}, expect={OWNER_ATTRIBUTE: claim.token})
    except KautoError:
        # The row keeps ``pulling`` until its lease runs out; the original error is what the caller must see.
        logger.warning("could not release the session claim", extra=log_ids(session) | {"state": state})


@dataclass(slots=True)
class _Progress:
    """What a run carries between deliveries (stored in the ledger row while the reports are collected)."""

    session: RoomSession
    files: list[ManifestFile]
    metrics: SessionMetrics
    jobs: dict[str, CollabJob]
    virtual_event_id: str | None

    def state(self, pending_limit_seconds: int, now: int) -> dict[str, Any]:
        return {
            "session_start": self.session.start,
            "session_end": self.session.end,
            "room_files": [manifest_file_state(entry) for entry in self.files],
            "metrics_state": self.metrics.to_state(),
            "collab": {name: job.to_state() for name, job in self.jobs.items()},
            "virtual_event_id": self.virtual_event_id or "",
            "collecting_until": now + pending_limit_seconds + 4 * COLLAB_POLL_SECONDS,
        }


def _pull(
    session: RoomSession,
    deps: AutomationDeps,
    claim: _Claim,
    rules: SessionReportRules,
    trigger: KalturaEvent,
) -> SessionPullOutcome:
    thresholds = deps.config.partner(session.partner_id).thresholds
    client = deps.kaltura(session.partner_id)
    collab_names: list[str] = [name for name in rules.reports if isinstance(name, str)]
    if claim.row:
        progress = _resumed(claim, session, thresholds, collab_names)
    else:
        pulled = _pull_room_reports(session, deps, claim, rules, trigger, client, thresholds)
        if isinstance(pulled, SessionPullOutcome):
            return pulled
        progress = pulled
        if collab_names:
            progress.virtual_event_id = room_virtual_event_id(client, session.room_entry_id)
    if any(not job.finished for job in progress.jobs.values()):
        _advance_collab_reports(deps, client, claim, progress, rules)
        if any(job.state == JOB_PENDING for job in progress.jobs.values()):
            return _wait_for_reports(deps, claim, progress, rules, trigger)
    return _finish(deps, claim, progress, rules, thresholds, padding=rules.window_padding_seconds)


def _pull_room_reports(
    session: RoomSession,
    deps: AutomationDeps,
    claim: _Claim,
    rules: SessionReportRules,
    trigger: KalturaEvent,
    client: KalturaClient,
    thresholds: ThresholdRules,
) -> _Progress | SessionPullOutcome:
    padding = rules.window_padding_seconds
    window = (session.start - padding, session.end + padding)
    metrics = SessionMetrics(attendee_engagement_below=thresholds.attendee_engagement_below)
    files: list[ManifestFile] = []
    room_ids = sorted(report for report in rules.reports if isinstance(report, int))
    for report in (ROOM_REPORTS[report_id] for report_id in room_ids):
        files.append(write_room_report(client, deps.store, session, claim.prefix, report, window, metrics))
        if report.report_id != ROOM_DATA_REPORT:
            continue
        if not metrics.session_row_found and claim.no_data_attempts + 1 < NO_DATA_MAX_ATTEMPTS:
            return _wait_for_data(deps, session, claim, trigger)
        if metrics.session_start is not None and metrics.session_end is not None:
            # Report 6000's times are the session's own; the event's were derived from the cue point.
            session = RoomSession(
                session.partner_id,
                session.room_entry_id,
                session.session_id,
                metrics.session_start,
                metrics.session_end,
            )
    jobs: dict[str, CollabJob] = {name: CollabJob() for name in rules.reports if isinstance(name, str)}
    return _Progress(session, files, metrics, jobs, None)


def _resumed(claim: _Claim, session: RoomSession, thresholds: ThresholdRules, collab_names: list[str]) -> _Progress:
    row = claim.row
    start, end = row.get("session_start"), row.get("session_end")
    if start is not None and end is not None:
        session = RoomSession(session.partner_id, session.room_entry_id, session.session_id, int(start), int(end))
    collab = row.get("collab")
    stored: Mapping[str, Any] = collab if isinstance(collab, Mapping) else {}
    jobs = {name: CollabJob.from_state(stored.get(name)) for name in collab_names}
    if claim.retry_reports:
        jobs = {name: CollabJob() if job.state == JOB_FAILED else job for name, job in jobs.items()}
    metrics_state = row.get("metrics_state")
    return _Progress(
        session=session,
        files=[manifest_file_from_state(entry) for entry in row.get("room_files") or ()],
        metrics=SessionMetrics.from_state(
            metrics_state if isinstance(metrics_state, Mapping) else {},
            attendee_engagement_below=thresholds.attendee_engagement_below,
        ),
        jobs=jobs,
        virtual_event_id=str(row.get("virtual_event_id") or "") or None,
    )


def _advance_collab_reports(
    deps: AutomationDeps, client: KalturaClient, claim: _Claim, progress: _Progress, rules: SessionReportRules
) -> None:
    session = progress.session
    event_id = progress.virtual_event_id
    collab_client = client.with_privileges(f"virtualeventid:{event_id}") if event_id else client
    parameters = collab_parameters(session, partner_time_zone(deps.config, session.partner_id), event_id)
    for name, job in progress.jobs.items():
        if job.finished:
            continue
        advanced = advance_collab_report(
            collab_client,
            deps.store,
            claim.prefix,
            session,
            COLLAB_REPORTS[name],
            job,
            parameters,
            now=deps.clock(),
            pending_limit_seconds=rules.pending_limit_seconds,
        )
        progress.jobs[name] = advanced
        if advanced.state == JOB_FAILED:
            _alert_report_failed(deps, session, name, advanced)


def _alert_report_failed(deps: AutomationDeps, session: RoomSession, name: str, job: CollabJob) -> None:
    why = "stayed pending too long" if job.overdue else "failed"
    logger.warning("session report failed", extra=log_ids(session) | {"report": name, "overdue": job.overdue})
    count("SessionReportFailed", report=name, overdue=str(job.overdue).lower())
    deps.alerts.publish(
        Alert(
            rule=REPORT_FAILED_RULE,
            severity=Severity.WARNING,
            partner_id=session.partner_id,
            subject=f"Room session {session.key.subject_key}: report {name} {why}",
            summary=(
                f"Room {session.room_entry_id}, session {session.session_id}: the Reports Microservice report {name} "
                f"{why} ({job.detail}). The session's other reports are written; the sweep retries this one."
            ),
            details={
                "entry_id": session.room_entry_id,
                "session_id": session.session_id,
                "report": name,
                "detail": job.detail,
            },
        ),
        dedupe_key=f"{session.key.subject_key}/{name}",
    )


def _wait_for_reports(
    deps: AutomationDeps, claim: _Claim, progress: _Progress, rules: SessionReportRules, trigger: KalturaEvent
) -> SessionPullOutcome:
    now = int(deps.clock())
    state = progress.state(rules.pending_limit_seconds, now) | {STATE_ATTRIBUTE: STATE_COLLECTING}
    try:
        deps.ledger.update(claim.pk, claim.sk, state, expect={OWNER_ATTRIBUTE: claim.token})
    except LedgerConflictError:
        # A copy of this delivery took the session over meanwhile: it polls on, this one must not start a second
        # chain of re-deliveries.
        logger.warning("session claim was taken over while its reports were polled", extra=log_ids(progress.session))
        return SessionPullOutcome(SessionPullStatus.IN_PROGRESS, progress.session)
    deps.events.send(trigger, delay_seconds=COLLAB_POLL_SECONDS)
    pending = sorted(name for name, job in progress.jobs.items() if job.state == JOB_PENDING)
    logger.info("session reports pending", extra=log_ids(progress.session) | {"pending": pending})
    return SessionPullOutcome(
        SessionPullStatus.WAITING_FOR_REPORTS,
        progress.session,
        detail=f"{len(pending)} reports pending, polled again in {COLLAB_POLL_SECONDS} s",
    )


def _finish(
    deps: AutomationDeps,
    claim: _Claim,
    progress: _Progress,
    rules: SessionReportRules,
    thresholds: ThresholdRules,
    *,
    padding: int,
) -> SessionPullOutcome:
    session = progress.session
    now = int(deps.clock())
    generated_at = datetime.fromtimestamp(now, tz=UTC)
    files = list(progress.files) + [
        manifest_file_from_state(job.file) for job in progress.jobs.values() if job.state == JOB_WRITTEN and job.file
    ]
    failed = sorted(name for name, job in progress.jobs.items() if job.state == JOB_FAILED)
    missing = {COLLAB_REPORTS[name].file_name: progress.jobs[name].detail or "failed" for name in failed}
    participation_rules = (
        thresholds.poll_participation_below,
        thresholds.chat_participation_below,
        thresholds.unresolved_moderation_above,
    )
    wants_counts = thresholds.alert_on_zero_attendees or any(rule is not None for rule in participation_rules)
    summary = read_summary(deps.store, session, files) if rules.summary_page or wants_counts else None
    bucket = deps.store.bucket
    links = {entry.report: f"s3://{bucket}/{entry.key}" for entry in files}
    page_key = None
    if rules.summary_page and summary is not None:
        page_key = summary_page_key(claim.prefix)
        html = render_summary_page(
            summary,
            files,
            page_key=page_key,
            time_zone=partner_time_zone(deps.config, session.partner_id),
            generated_at=generated_at,
            missing=missing,
        )
        deps.store.put_bytes(page_key, html.encode("utf-8"), content_type=HTML_CONTENT_TYPE)
        links["summary_page"] = f"s3://{bucket}/{page_key}"
    manifest = Manifest(
        partner_id=session.partner_id,
        kind="session",
        window_start=datetime.fromtimestamp(session.start - padding, tz=UTC),
        window_end=datetime.fromtimestamp(session.end + padding, tz=UTC),
        files=tuple(files),
        generated_at=generated_at,
        scope={"entry_id": session.room_entry_id, "session_id": session.session_id},
        missing=missing,
        pages={"summary": page_key} if page_key else {},
    )
    manifest_result = write_manifest(deps.store, claim.prefix, manifest)
    links["manifest"] = f"s3://{bucket}/{manifest_result.key}"
    outcomes = publish_session_alerts(
        deps.alerts,
        session.key,
        progress.metrics,
        thresholds,
        links=links,
        participation=summary.participation() if summary is not None and wants_counts else None,
    )
    done = progress.state(rules.pending_limit_seconds, now) | {
        STATE_ATTRIBUTE: STATE_DONE,
        "done_at": now,
        "manifest_key": manifest_result.key,
        "rows": {entry.report: entry.rows for entry in files},
        "metrics": progress.metrics.summary(),
        "failed_reports": failed,
    }
    try:
        deps.ledger.update(claim.pk, claim.sk, done, expect={OWNER_ATTRIBUTE: claim.token})
    except LedgerConflictError:
        # Our lease ran out and another trigger took over: it writes the same keys and marks the row itself.
        logger.warning("session claim was taken over before it was marked done", extra=log_ids(session))
    logger.info(
        "session reports pulled",
        extra=log_ids(session)
        | {"files": len(files), "rows": sum(entry.rows for entry in files), "failed_reports": failed},
    )
    return SessionPullOutcome(
        SessionPullStatus.PULLED,
        session,
        manifest_key=manifest_result.key,
        files=tuple(entry.key for entry in files),
        alerts_published=sum(1 for outcome in outcomes if outcome.published),
        missing=tuple(failed),
        page_key=page_key,
    )


def _wait_for_data(
    deps: AutomationDeps, session: RoomSession, claim: _Claim, trigger: KalturaEvent
) -> SessionPullOutcome:
    attempts = claim.no_data_attempts + 1
    deps.ledger.update(
        claim.pk,
        claim.sk,
        {STATE_ATTRIBUTE: STATE_WAITING, "no_data_attempts": attempts},
        expect={OWNER_ATTRIBUTE: claim.token},
    )
    deps.events.send(trigger, delay_seconds=NO_DATA_RETRY_SECONDS)
    logger.info("report 6000 does not list the session yet", extra=log_ids(session) | {"attempt": attempts})
    return SessionPullOutcome(
        SessionPullStatus.WAITING_FOR_DATA, session, detail=f"attempt {attempts} of {NO_DATA_MAX_ATTEMPTS}"
    )


def counted(outcome: SessionPullOutcome, trigger: str) -> SessionPullOutcome:
    """Count the outcome of a trigger (metric ``SessionPull``) and return it."""
    count("SessionPull", status=outcome.status.value, trigger=trigger)
    return outcome
