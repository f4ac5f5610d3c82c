"""Kaltura Room session reports: pull reports 6000/6001/6002 of one ended session into S3, once.

Triggers (all end in :func:`pull_session`):

- :func:`pull_session_reports`: a ``session_ended`` event, from the session cue point webhook or from the sweep.
- :func:`handle_meeting_recording_ready`: a meeting recording (adminTag ``kalturameeting``,
  docs/kaltura.md#room-session-end) became ready; the session it recorded is looked up in report 6000 (see
  :func:`match_recording_session`).

Per session (partner, room entry, session cue point id):

- The ledger row ``pk=session#<pid>#<room>``, ``sk=<session id>`` is claimed (state ``pulling``) before any pull and
  set to ``done`` after the manifest is written. A done session is not pulled again unless forced; a re-run (forced,
  or after a failure) writes the same keys: the S3 prefix chosen by the first attempt is kept in the row.
- Each configured report is pulled with ``report.getCsvFromStringParams`` (docs/kaltura.md#report-csv-strings) over the
  session window padded by ``session_reports.window_padding_seconds``, narrowed server-side where the report has a
  filter for it (6000 ``entry_ids``, 6001 ``entry_ids`` + ``cue_point_ids``, 6002 ``parentEntryIds``) and filtered here
  to the session's rows (:func:`room_rows` plus the session id / time). The body streams from Kaltura through
  :class:`~kauto.csvclean.CsvCleaner` into the S3 multipart writer: memory stays bounded whatever the size.
- Keys: ``sessions/partner_id=<pid>/date=<session start, UTC>/entry_id=<room>/session_id=<id>/``
  + ``room_data.csv``, ``attendees.csv``, ``breakouts.csv`` and ``manifest.json`` (written last: it marks a complete
  run; docs/architecture.md#contracts).
- Threshold metrics are accumulated from the same rows while they stream (:mod:`kauto.automations.thresholds`) and
  alerts published once per (rule, session).

Timing: a pull waits until the padded window has closed (the event is sent again with a delay), and when report 6000
does not list the session yet (analytics lag behind the session end) it is retried a few times, 15 minutes apart,
before the reports are written as they are.

Names and e-mail addresses of attendees go to the bucket only: logs, ledger rows and alerts carry ids and counts.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from kauto.automations.errors import MalformedEventError, RetryLaterError
from kauto.automations.telemetry import count, logger
from kauto.automations.thresholds import SessionKey, SessionMetrics, publish_session_alerts
from kauto.aws.ledger import OWNER_ATTRIBUTE, STATE_ATTRIBUTE, LedgerConflictError
from kauto.aws.queue import MAX_DELAY_SECONDS
from kauto.aws.s3_writer import (
    Manifest,
    ManifestFile,
    SourceCall,
    report_key,
    session_prefix,
    write_manifest,
)
from kauto.csvclean import (
    ROOM_ATTENDEES_SPEC,
    ROOM_BREAKOUTS_SPEC,
    ROOM_DATA_SPEC,
    CsvCleaner,
    CsvSpec,
    RowFilter,
    room_rows,
)
from kauto.errors import KautoError
from kauto.models import BodyFormat, EventKind, FieldValue, KalturaEvent

if TYPE_CHECKING:
    from kauto.automation_config import SessionReportRules
    from kauto.automations.deps import AutomationDeps
    from kauto.kaltura import KalturaClient, StreamResult
    from kauto.kaltura.types import Entry

T = TypeVar("T")

SESSION_OBJECT_TYPE = "KalturaSessionCuePoint"
ROOM_DATA_REPORT = 6000
ATTENDEES_REPORT = 6001
BREAKOUTS_REPORT = 6002

STATE_PULLING = "pulling"
STATE_WAITING = "waiting_for_data"
STATE_FAILED = "failed"
STATE_DONE = "done"

SESSION_LEDGER_TTL_SECONDS = 400 * 86400
"""Session rows outlive any sweep window by far; they only stop a session from being pulled twice."""
NO_DATA_RETRY_SECONDS = 900
NO_DATA_MAX_ATTEMPTS = 4
"""A session report 6000 does not list yet is retried until this attempt (15 minutes apart), then pulled anyway."""
MAX_SESSION_SECONDS = 12 * 3600
"""Longest session the lookups expect: report 6000 selects sessions by start time, so queries reach back this far."""
MAX_FUTURE_END_SECONDS = 86400
"""A session ending further in the future than this is a malformed event, not one to wait for."""
RECORDING_MIN_COVERAGE = 0.5
"""Share of a recording's time a session must cover to be the session it recorded."""
MAX_ROOMS_TO_CHECK = 10
"""Candidate rooms read with ``baseEntry.get`` to find the one whose ``recordedEntryId`` is the recording."""
RECORDING_LEDGER_TTL_SECONDS = 35 * 86400
_PIPE_DEPTH = 8  # chunks buffered between the Kaltura stream and the cleaner (x 64 KiB by default)
_PIPE_POLL_SECONDS = 0.05


class SessionEventError(MalformedEventError):
    """A ``session_ended`` event lacks what identifies the session or its time window; retrying cannot help."""


class SessionPullInProgressError(RetryLaterError):
    """Another worker is pulling this session right now; retry the message later (it will then find it done)."""

    def __init__(self, partner_id: int, room_entry_id: str, session_id: str) -> None:
        super().__init__(
            f"session {room_entry_id}/{session_id} of partner {partner_id} is being pulled by another worker"
        )
        self.partner_id = partner_id
        self.room_entry_id = room_entry_id
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class RoomSession:
    """One ended Kaltura Room session: the room entry, the session cue point id and its window (unix seconds)."""

    partner_id: int
    room_entry_id: str
    session_id: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.room_entry_id or not self.session_id:
            raise SessionEventError("entryId", "a session needs a room entry id and a session id")
        if self.end < self.start:
            raise SessionEventError("endTime", f"session {self.session_id} ends before it starts")

    @property
    def key(self) -> SessionKey:
        """The (partner, room, session) identity."""
        return SessionKey(self.partner_id, self.room_entry_id, self.session_id)


@dataclass(frozen=True, slots=True)
class RoomReport:
    """How one room report is requested and written (parameter names from Kaltura's room data guide)."""

    report_id: int
    name: str
    spec: CsvSpec
    from_param: str
    to_param: str
    room_param: str
    session_param: str | None = None


ROOM_REPORTS: Mapping[int, RoomReport] = {
    ROOM_DATA_REPORT: RoomReport(ROOM_DATA_REPORT, "room_data", ROOM_DATA_SPEC, "from_date", "to_date", "entry_ids"),
    ATTENDEES_REPORT: RoomReport(
        ATTENDEES_REPORT, "attendees", ROOM_ATTENDEES_SPEC, "from_date", "to_date", "entry_ids", "cue_point_ids"
    ),
    BREAKOUTS_REPORT: RoomReport(
        BREAKOUTS_REPORT, "breakouts", ROOM_BREAKOUTS_SPEC, "fromDate", "toDate", "parentEntryIds"
    ),
}


class SessionPullStatus(StrEnum):
    """What a trigger did."""

    PULLED = "pulled"
    ALREADY_DONE = "already_done"
    DEFERRED = "deferred"
    """The padded window has not closed yet: the event was sent again with a delay."""
    WAITING_FOR_DATA = "waiting_for_data"
    """Report 6000 does not list the session yet: the event was sent again with a delay."""
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


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as report 6000 lists it (``parent_entry_id`` is set for breakout rooms)."""

    room_entry_id: str
    session_id: str
    parent_entry_id: str | None
    start: int | None
    end: int | None


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
        return _counted(outcome, "session_ended")
    session = session_from_event(event)
    now = int(deps.clock())
    window_end = session.end + rules.window_padding_seconds
    if session.end > now + MAX_FUTURE_END_SECONDS:
        raise SessionEventError("endTime", f"session {session.session_id} ends more than a day in the future")
    if now < window_end:
        # Kaltura cannot report on time that has not passed: pull once the padded window has closed.
        delay = min(MAX_DELAY_SECONDS, window_end - now)
        deps.events.send(event, delay_seconds=delay)
        logger.info("session window still open, pull deferred", extra=_log_ids(session) | {"delay_s": delay})
        outcome = SessionPullOutcome(SessionPullStatus.DEFERRED, session, detail=f"sent again with {delay} s delay")
        return _counted(outcome, "session_ended")
    return _counted(pull_session(session, deps, trigger=event, force=force), "session_ended")


def handle_meeting_recording_ready(event: KalturaEvent, entry: Entry, deps: AutomationDeps) -> SessionPullOutcome:
    """Pull the reports of the session a meeting recording ``entry`` (already re-read through the API) recorded.

    The session is found with :func:`match_recording_session`; the decision is recorded in the ledger
    (``pk=recording#<pid>#<entry id>``, ``sk=session``). A recording whose session cannot be identified is left to
    the sweep, which finds every ended session in report 6000.
    """
    rules = deps.config.partner(event.partner_id).session_reports
    if not (rules.enabled and rules.trigger_on_meeting_recordings):
        outcome = SessionPullOutcome(SessionPullStatus.DISABLED, detail="meeting recording trigger is disabled")
        return _counted(outcome, "recording")
    if not has_admin_tag(entry.admin_tags, rules.meeting_admin_tag):
        outcome = SessionPullOutcome(SessionPullStatus.NOT_MATCHED, detail="entry is not a meeting recording")
        return _counted(outcome, "recording")
    client = deps.kaltura(event.partner_id)
    decided_at = int(deps.clock())
    match = match_recording_session(
        client, entry, partner_id=event.partner_id, padding_seconds=rules.window_padding_seconds, now=decided_at
    )
    pk, sk = f"recording#{event.partner_id}#{entry.id}", "session"
    decision: dict[str, Any] = {"outcome": match.reason, "candidates": match.candidates, "decided_at": decided_at}
    session = match.session
    if session is not None:
        decision |= {
            "room_entry_id": session.room_entry_id,
            "session_id": session.session_id,
            "coverage": round(match.coverage, 4),
        }
    deps.ledger.put(pk, sk, decision, ttl_seconds=RECORDING_LEDGER_TTL_SECONDS)
    if session is None:
        logger.info("meeting recording not matched to a session", extra={"entry_id": entry.id, "reason": match.reason})
        return _counted(SessionPullOutcome(SessionPullStatus.NOT_MATCHED, detail=match.reason), "recording")
    # From here on it is the session's own event: deferred or re-sent as such, never as the recording's entry_ready.
    key = f"recording:{event.partner_id}:{entry.id}:{session.room_entry_id}:{session.session_id}"
    return pull_session_reports(session_ended_event(session, dedupe_key=key, received_at=decided_at), deps)


def session_ended_event(session: RoomSession, *, dedupe_key: str, received_at: int) -> KalturaEvent:
    """A ``session_ended`` event for ``session`` built by the automations (the sweep, a matched recording), with
    the fields :func:`session_from_event` reads (times in unix seconds)."""
    fields: dict[str, FieldValue] = {
        "id": session.session_id,
        "cuePointId": session.session_id,
        "entryId": session.room_entry_id,
        "startTime": session.start,
        "endTime": session.end,
    }
    return KalturaEvent(
        kind=EventKind.SESSION_ENDED,
        partner_id=session.partner_id,
        dedupe_key=dedupe_key,
        job_id=None,
        template_id=None,
        template_system_name=None,
        event_type=None,
        event_object_type=None,
        object_type=SESSION_OBJECT_TYPE,
        object_id=session.session_id,
        entry_id=session.room_entry_id,
        status=None,
        fields=fields,
        body_format=BodyFormat.SWEEP,
        received_at=received_at,
    )


# ------------------------------------------------------------------------------------------------ the session pull


def pull_session(
    session: RoomSession, deps: AutomationDeps, *, trigger: KalturaEvent, force: bool = False
) -> SessionPullOutcome:
    """Claim the session in the ledger, pull its reports into S3, evaluate thresholds, mark it done.

    ``trigger`` is the event that asked for it: its ``dedupe_key`` is recorded (a redelivery of the same event may
    take over its own stale claim) and it is sent again, delayed, while report 6000 does not list the session yet.
    """
    settings = deps.config.partner(session.partner_id)
    rules = settings.session_reports
    now = int(deps.clock())
    claim = _claim(deps, session, trigger.dedupe_key, now, force=force)
    if claim is None:
        return SessionPullOutcome(SessionPullStatus.ALREADY_DONE, session)
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


def session_ledger_key(partner_id: int, room_entry_id: str, session_id: str) -> tuple[str, str]:
    """``(pk, sk)`` of a session's ledger row."""
    return f"session#{partner_id}#{room_entry_id}", session_id


def _claim(deps: AutomationDeps, session: RoomSession, trigger: str, now: int, *, force: bool) -> _Claim | None:
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
    if state == STATE_DONE and not force:
        logger.info("session already pulled", extra=_log_ids(session))
        return None
    started_at = current.get("started_at")
    # A claim older than a worker can run belongs to a worker that died.
    stale = not isinstance(started_at, int) or now - started_at >= deps.worker_timeout_seconds
    if state == STATE_PULLING and not stale and current.get("trigger") != trigger:
        raise SessionPullInProgressError(session.partner_id, session.room_entry_id, session.session_id)
    # Take over a failed, waiting, stale or forced run, or this very event's own earlier attempt. The first attempt's
    # prefix is kept so that every run of the session writes the same keys.
    kept_prefix = current.get("prefix")
    prefix = kept_prefix if isinstance(kept_prefix, str) else prefix
    attempts = current.get("no_data_attempts")
    attempts = attempts if isinstance(attempts, int) else 0
    try:
        deps.ledger.update(
            pk,
            sk,
            {
                STATE_ATTRIBUTE: STATE_PULLING,
                OWNER_ATTRIBUTE: token,
                "trigger": trigger,
                "started_at": now,
                "prefix": prefix,
            },
            expect={STATE_ATTRIBUTE: state, OWNER_ATTRIBUTE: current.get(OWNER_ATTRIBUTE)},
        )
    except LedgerConflictError as conflict:
        # Someone else took it over between the read and this write.
        if conflict.current_state == STATE_DONE and not force:
            return None
        raise SessionPullInProgressError(session.partner_id, session.room_entry_id, session.session_id) from conflict
    logger.info("session claim taken over", extra=_log_ids(session) | {"previous_state": str(state)})
    return _Claim(pk, sk, token, prefix, attempts)


def _release(deps: AutomationDeps, session: RoomSession, claim: _Claim, state: str, attrs: Mapping[str, Any]) -> None:
    """Leave ``pulling`` for ``state`` if the claim is still ours (a failure path: never raises over the cause)."""
    try:
        deps.ledger.update(claim.pk, claim.sk, {STATE_ATTRIBUTE: state, **attrs}, expect={OWNER_ATTRIBUTE: claim.token})
    except KautoError:
        # The row keeps ``pulling`` until its lease runs out; the original error is what the caller must see.
        logger.warning("could not release the session claim", extra=_log_ids(session) | {"state": state})


def _pull(
    session: RoomSession,
    deps: AutomationDeps,
    claim: _Claim,
    rules: SessionReportRules,
    trigger: KalturaEvent,
) -> SessionPullOutcome:
    thresholds = deps.config.partner(session.partner_id).thresholds
    client = deps.kaltura(session.partner_id)
    padding = rules.window_padding_seconds
    window = (session.start - padding, session.end + padding)
    metrics = SessionMetrics(attendee_engagement_below=thresholds.attendee_engagement_below)
    files: list[ManifestFile] = []
    for report in (ROOM_REPORTS[report_id] for report_id in sorted(r for r in rules.reports if isinstance(r, int))):
        files.append(_pull_report(client, deps, session, claim.prefix, report, window, metrics))
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
    now = int(deps.clock())
    manifest = Manifest(
        partner_id=session.partner_id,
        kind="session",
        window_start=datetime.fromtimestamp(window[0], tz=UTC),
        window_end=datetime.fromtimestamp(window[1], tz=UTC),
        files=tuple(files),
        generated_at=datetime.fromtimestamp(now, tz=UTC),
        scope={"entry_id": session.room_entry_id, "session_id": session.session_id},
    )
    manifest_result = write_manifest(deps.store, claim.prefix, manifest)
    bucket = deps.store.bucket
    links = {entry.report: f"s3://{bucket}/{entry.key}" for entry in files}
    links["manifest"] = f"s3://{bucket}/{manifest_result.key}"
    outcomes = publish_session_alerts(deps.alerts, session.key, metrics, thresholds, links=links)
    done = {
        STATE_ATTRIBUTE: STATE_DONE,
        "done_at": now,
        "manifest_key": manifest_result.key,
        "rows": {entry.report: entry.rows for entry in files},
        "metrics": metrics.summary(),
    }
    try:
        deps.ledger.update(claim.pk, claim.sk, done, expect={OWNER_ATTRIBUTE: claim.token})
    except LedgerConflictError:
        # Our lease ran out and another trigger took over: it writes the same keys and marks the row itself.
        logger.warning("session claim was taken over before it was marked done", extra=_log_ids(session))
    logger.info(
        "session reports pulled",
        extra=_log_ids(session) | {"files": len(files), "rows": sum(entry.rows for entry in files)},
    )
    return SessionPullOutcome(
        SessionPullStatus.PULLED,
        session,
        manifest_key=manifest_result.key,
        files=tuple(entry.key for entry in files),
        alerts_published=sum(1 for outcome in outcomes if outcome.published),
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
    logger.info("report 6000 does not list the session yet", extra=_log_ids(session) | {"attempt": attempts})
    return SessionPullOutcome(
        SessionPullStatus.WAITING_FOR_DATA, session, detail=f"attempt {attempts} of {NO_DATA_MAX_ATTEMPTS}"
    )


def _pull_report(
    client: KalturaClient,
    deps: AutomationDeps,
    session: RoomSession,
    prefix: str,
    report: RoomReport,
    window: tuple[int, int],
    metrics: SessionMetrics,
) -> ManifestFile:
    params = report_params(report, session, window)
    cleaner = CsvCleaner(report.spec, row_filter=_session_filter(report, session, window, metrics))
    key = report_key(prefix, report.name)

    def write(chunks: Iterator[bytes]) -> None:
        writer.write_records(cleaner.clean_bytes(chunks), with_header=True)
        if not cleaner.columns:
            # Kaltura sent no header at all (an empty body): write the spec's header so the layout stays stable.
            writer.write_records(cleaner.clean_rows(report.spec.preferred_columns, []), with_header=True)

    with deps.store.open_writer(key) as writer:
        stream_report_csv(client, report.report_id, params, write)
        result = writer.complete()
    source = SourceCall("report", "getCsvFromStringParams", {"id": report.report_id, "params": _joined(params)})
    stats = cleaner.stats
    logger.info(
        "room report written",
        extra=_log_ids(session)
        | {"report": report.report_id, "rows": result.rows, "rows_in": stats.rows_in, "ragged": stats.rows_ragged},
    )
    return ManifestFile.from_result(report.name, result, cleaner.columns, source)


def report_params(report: RoomReport, session: RoomSession, window: tuple[int, int]) -> dict[str, str | int]:
    """The ``k=v`` parameters of ``getCsvFromStringParams`` for ``report`` over ``window``."""
    params: dict[str, str | int] = {
        report.from_param: window[0],
        report.to_param: window[1],
        report.room_param: session.room_entry_id,
    }
    if report.session_param is not None:
        params[report.session_param] = session.session_id
    return params


def _session_filter(
    report: RoomReport, session: RoomSession, window: tuple[int, int], metrics: SessionMetrics
) -> RowFilter:
    """Keep the session's rows (observing them for the thresholds): its own row and attendees by session id, its
    breakouts by parent room and a start inside the session (the authoritative one from report 6000 once known)."""
    in_room = room_rows(session.room_entry_id)
    room = session.room_entry_id

    def breakout_of_session(row: Mapping[str, str]) -> bool:
        if row.get("parent_entry_id") != room:
            return False
        if row.get("cue_point_id") == session.session_id:
            return True
        start = _as_int(row.get("session_start_time"))
        if start is None:
            return False
        if metrics.session_start is not None and metrics.session_end is not None:
            return metrics.session_start <= start <= metrics.session_end
        return window[0] <= start <= window[1]

    if report.report_id == ROOM_DATA_REPORT:

        def keep_room_data(row: Mapping[str, str]) -> bool:
            if not in_room(row):
                return False
            if row.get("entry_id") == room and not row.get("parent_entry_id"):
                if row.get("cue_point_id") != session.session_id:
                    return False  # another session of the same room inside the padded window
                metrics.observe_session_row(row)
                return True
            return breakout_of_session(row)

        return keep_room_data
    if report.report_id == ATTENDEES_REPORT:

        def keep_attendee(row: Mapping[str, str]) -> bool:
            if row.get("entry_id") != room or row.get("cue_point_id") != session.session_id:
                return False
            metrics.observe_attendee(row)
            return True

        return keep_attendee

    def keep_breakout(row: Mapping[str, str]) -> bool:
        if not breakout_of_session(row):
            return False
        metrics.observe_breakout(row)
        return True

    return keep_breakout


# -------------------------------------------------------------------------------------------- reading report 6000


def read_session_rows(
    client: KalturaClient, from_date: int, to_date: int, *, entry_ids: Sequence[str] = ()
) -> list[SessionRow]:
    """Every session report 6000 lists between ``from_date`` and ``to_date`` (ids and times only)."""
    params: dict[str, str | int] = {"from_date": from_date, "to_date": to_date}
    if entry_ids:
        params["entry_ids"] = ",".join(entry_ids)
    found: list[SessionRow] = []

    def collect(row: Mapping[str, str]) -> bool:
        room, session_id = row.get("entry_id") or "", row.get("cue_point_id") or ""
        if room and session_id:
            found.append(
                SessionRow(
                    room_entry_id=room,
                    session_id=session_id,
                    parent_entry_id=row.get("parent_entry_id") or None,
                    start=_as_int(row.get("session_start_time")),
                    end=_as_int(row.get("session_end_time")),
                )
            )
        return False  # nothing to output: the cleaner's row hook is only used to see the parsed rows

    cleaner = CsvCleaner(ROOM_DATA_SPEC, row_filter=collect)
    stream_report_csv(client, ROOM_DATA_REPORT, params, lambda chunks: _drain(cleaner.clean_bytes(chunks)))
    return found


@dataclass(frozen=True, slots=True)
class RecordingMatch:
    """The session a recording belongs to (``session`` None when not identified). ``reason`` says how it was chosen
    (``only_room``, ``root_entry_id``, ``recorded_entry_id``) or why not (``no_session_in_report``,
    ``ambiguous_rooms``, ``recording_without_created_at``)."""

    session: RoomSession | None
    reason: str
    coverage: float = 0.0
    candidates: int = 0


def match_recording_session(
    client: KalturaClient, recording: Entry, *, partner_id: int, padding_seconds: int, now: int
) -> RecordingMatch:
    """Find the room session a meeting recording recorded. Heuristic, since Kaltura links neither way reliably:

    1. The recording spans ``duration`` seconds either before or after its ``createdAt`` (KME may create the entry
       when recording starts or when it uploads it); a span ending after ``now`` is impossible for a ready
       recording. Report 6000 is read around the spans, reaching :data:`MAX_SESSION_SECONDS` further back because
       it selects sessions by start time.
    2. Candidates are main-room sessions with an end time covering at least half of one of the spans (the session
       padded by ``padding_seconds``); without a known duration, sessions whose padded time contains ``createdAt``.
    3. The room is narrowed by the recording's ``rootEntryId`` when it names another entry, else, when candidates
       are in several rooms, by reading those rooms (at most :data:`MAX_ROOMS_TO_CHECK`) and keeping the one whose
       ``recordedEntryId`` is the recording.
    4. The best-covering session of the one remaining room wins; candidates still in several rooms are ambiguous.

    Limits: concurrent sessions in several rooms cannot be told apart without one of the room links; a recording
    made over less than half of its session's span, or sessions report 6000 does not list yet, are not matched.
    The sweep still finds those sessions in report 6000 once they are listed.
    """
    created = recording.created_at
    if created is None:
        return RecordingMatch(None, "recording_without_created_at")
    duration = recording.duration or ((recording.ms_duration or 0) // 1000)
    spans = [(created - duration, created)]
    if created + duration <= now:
        spans.append((created, created + duration))
    from_date = created - duration - padding_seconds - MAX_SESSION_SECONDS
    to_date = created + duration + padding_seconds
    scored: list[tuple[float, RoomSession]] = []
    for row in read_session_rows(client, from_date, to_date):
        if row.parent_entry_id or row.start is None or row.end is None or row.end < row.start:
            continue
        low, high = row.start - padding_seconds, row.end + padding_seconds
        if duration > 0:
            coverage = max(_overlap((low, high), span) / duration for span in spans)
        else:
            coverage = 1.0 if low <= created <= high else 0.0
        if coverage >= RECORDING_MIN_COVERAGE:
            scored.append((coverage, RoomSession(partner_id, row.room_entry_id, row.session_id, row.start, row.end)))
    if not scored:
        return RecordingMatch(None, "no_session_in_report")
    rooms = {session.room_entry_id for _, session in scored}
    reason = "only_room"
    hint = recording.root_entry_id if recording.root_entry_id and recording.root_entry_id != recording.id else None
    if hint is not None and hint in rooms:
        rooms, reason = {hint}, "root_entry_id"
    elif 1 < len(rooms) <= MAX_ROOMS_TO_CHECK:
        recorded_in = {
            room for room in sorted(rooms) if client.entries.get(room).raw.get("recordedEntryId") == recording.id
        }
        if len(recorded_in) == 1:
            rooms, reason = recorded_in, "recorded_entry_id"
    if len(rooms) != 1:
        return RecordingMatch(None, "ambiguous_rooms", candidates=len(scored))
    (room,) = rooms
    coverage, best = max(
        ((coverage, session) for coverage, session in scored if session.room_entry_id == room),
        key=lambda item: (item[0], item[1].end),
    )
    return RecordingMatch(best, reason, coverage, len(scored))


# ------------------------------------------------------------------------------------------------------ events


def session_from_event(event: KalturaEvent) -> RoomSession:
    """The session a ``session_ended`` event names, its times normalized to unix seconds.

    Fields: ``entryId`` (room), ``cuePointId`` or ``id`` (session), ``startTime``/``endTime``. The sweep sends unix
    seconds. A session cue point sends ``startTime``/``endTime``/``duration`` in milliseconds
    (docs/kaltura.md#room-session-end), as offsets on the room's timeline: those are anchored at the cue point's
    ``triggeredAt`` or ``createdAt`` (when the session cue point was created, i.e. when the session started). Values of
    10^11 and more are unix milliseconds, values from 10^9 unix seconds, smaller ones millisecond offsets.
    """
    fields = event.fields
    room = _text(fields.get("entryId")) or event.entry_id
    session_id = _text(fields.get("cuePointId")) or _text(fields.get("id")) or event.object_id
    if not room or not session_id:
        raise SessionEventError("entryId", "session_ended event without entryId or session id")
    anchor = _number(fields.get("triggeredAt")) or _number(fields.get("createdAt"))
    start_raw, end_raw = _number(fields.get("startTime")), _number(fields.get("endTime"))
    duration_ms = _number(fields.get("duration"))
    start = _absolute(start_raw, anchor) if start_raw is not None else anchor
    if start is None:
        raise SessionEventError(
            "startTime", f"session {session_id}: no start time (startTime, triggeredAt or createdAt)"
        )
    if end_raw is not None:
        end = _absolute(end_raw, anchor)
    elif duration_ms is not None:
        end = start + duration_ms // 1000
    else:
        end = None
    if end is None:
        raise SessionEventError("endTime", f"session {session_id}: no end time")
    return RoomSession(event.partner_id, room, session_id, start, end)


def has_admin_tag(admin_tags: str | None, tag: str) -> bool:
    """Whether the comma-separated ``admin_tags`` contain ``tag`` (case-insensitive)."""
    wanted = tag.strip().lower()
    return any(part.strip().lower() == wanted for part in (admin_tags or "").split(","))


_UNIX_MILLISECONDS_FROM = 10**11
_UNIX_SECONDS_FROM = 10**9


def _absolute(value: int, anchor: int | None) -> int | None:
    if value >= _UNIX_MILLISECONDS_FROM:
        return value // 1000
    if value >= _UNIX_SECONDS_FROM:
        return value
    return None if anchor is None else anchor + value // 1000


def _number(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return _as_int(str(value))


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


# --------------------------------------------------------------------------------- streaming Kaltura into S3


class _PipeClosedError(Exception):
    """The reading side stopped: the Kaltura stream is abandoned."""


class _ChunkPipe:
    """Bridges the client's push-style stream (``sink.write``) to the cleaner's pull-style iterator.

    The Kaltura stream runs in a worker thread and blocks once ``depth`` chunks wait, so memory stays bounded.
    """

    def __init__(self, depth: int = _PIPE_DEPTH) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()

    def write(self, data: bytes, /) -> None:
        self._put(data)

    def finish(self, error: BaseException | None) -> None:
        self._put(_Failure(error) if error is not None else _END)

    def close(self) -> None:
        self._closed.set()

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            if isinstance(item, bytes):
                yield item

    def _put(self, item: object) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_PIPE_POLL_SECONDS)
            except queue.Full:
                continue
            return
        raise _PipeClosedError


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


_END = object()


def stream_report_csv(
    client: KalturaClient,
    report_id: int,
    params: Mapping[str, str | int],
    consume: Callable[[Iterator[bytes]], T],
) -> tuple[StreamResult, T]:
    """Stream ``report.getCsvFromStringParams`` (BOM stripped) into ``consume(chunks)``; both results.

    The download runs in a helper thread feeding a small bounded pipe; an error on either side stops both and is
    raised here (a Kaltura error as its own typed error).
    """
    pipe = _ChunkPipe()

    def produce() -> StreamResult:
        try:
            result = client.reports.csv(report_id, params, pipe)
        except _PipeClosedError:
            raise
        except BaseException as error:
            pipe.finish(error)
            raise
        pipe.finish(None)
        return result

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaltura-room-report") as pool:
        future = pool.submit(produce)
        try:
            value = consume(pipe.chunks())
        finally:
            pipe.close()  # unblocks the download if the reader stopped early or failed
        return future.result(), value


def _drain(records: Iterator[str]) -> None:
    for _ in records:
        pass


# ------------------------------------------------------------------------------------------------------ helpers


def _overlap(first: tuple[int, int], second: tuple[int, int]) -> int:
    return max(0, min(first[1], second[1]) - max(first[0], second[0]))


def _as_int(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    try:
        return int(float(text)) if text else None
    except (ValueError, OverflowError):  # not a number, NaN or infinity
        return None


def _joined(params: Mapping[str, str | int]) -> str:
    return ";".join(f"{key}={value}" for key, value in params.items())


def _counted(outcome: SessionPullOutcome, trigger: str) -> SessionPullOutcome:
    count("SessionPull", status=outcome.status.value, trigger=trigger)
    return outcome


def _log_ids(session: RoomSession) -> dict[str, Any]:
    return {
        "partner_id": session.partner_id,
        "entry_id": session.room_entry_id,
        "session_id": session.session_id,
    }
