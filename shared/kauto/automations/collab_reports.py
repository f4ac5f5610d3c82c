"""The Reports Microservice's chat-and-collaboration reports of one room session (``pollsActivity`` & co).

Kaltura's guides describe the reports and their parameters (docs/kaltura.md#chat-and-collaboration-reports,
docs/kaltura.md#reports-microservice): ``entries_ids``, ``virtual_event_ids``, ISO
``from_date_id``/``to_date_id``
(days, inclusive), and a KS carrying ``virtualeventid:<id>`` when the room belongs to a virtual event. A session's
reports are asked for its room and the days it spans in the partner's time zone, then cut here to the session's own
window where a row carries a time (``sentAt``, ``answeredAt``, ...; rows without one are kept), cleaned by the same
CSV cleaner as every report (the service's CSV is RFC 4180, so it is parsed as such) and written to the session's
layout as ``report=<file name>/``.

Each report is a job of its own (:func:`kauto.kaltura.microservice.advance_job`: generate, then one poll per
delivery of the session's event, re-sent with a delay). Its state travels in the session's ledger row as a plain
dict (:class:`CollabJob`); it never holds message text, names or a KS.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kauto.automations.session_events import RoomSession, log_ids
from kauto.automations.telemetry import logger
from kauto.aws.manifest import ManifestFile, SourceCall
from kauto.aws.object_store import ObjectStore
from kauto.aws.report_keys import report_key
from kauto.csvclean import CsvCleaner, CsvSpec, RowFilter
from kauto.errors import ConfigError
from kauto.kaltura import KalturaError, KalturaNotFoundError, ReportJobHandle, ReportJobState
from kauto.kaltura.microservice import advance_job
from kauto.kaltura.streams import stream_into

if TYPE_CHECKING:
    from kauto.automation_config import AutomationConfig
    from kauto.kaltura import KalturaClient

PERSONAL_DATA = "personal_data"
MESSAGE_CONTENT = "message_content"

JOB_NEW = "new"
JOB_PENDING = "pending"
JOB_WRITTEN = "written"
JOB_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CollabReport:
    """How one chat-and-collaboration report is asked for, cut and written."""

    name: str
    """Kaltura's ``reportName``."""
    file_name: str
    """The layout's report name (``report=<file_name>/<file_name>.csv``)."""
    spec: CsvSpec
    time_columns: tuple[str, ...]
    """The row's time: the first of these with a value; rows outside the session are dropped."""
    classification: tuple[str, ...] = (PERSONAL_DATA,)


def _spec(*columns: str) -> CsvSpec:
    return CsvSpec(preferred_columns=columns)


_PERSON = ("userId", "userFirstName", "userLastName", "userEmail", "userRole")
COLLAB_REPORTS: Mapping[str, CollabReport] = {
    report.name: report
    for report in (
        CollabReport(
            "pollsActivity",
            "polls_activity",
            _spec("pollId", "question", "pollType", *_PERSON[:4], "answer", "answeredAt", "contextId"),
            ("answeredAt",),
        ),
        CollabReport(
            "chatUserActivity",
            "chat_user_activity",
            _spec(
                *_PERSON, "contextId", "messagesSent", "repliesSent", "likesReceived", "firstMessageAt", "lastMessageAt"
            ),
            ("lastMessageAt", "firstMessageAt"),
        ),
        CollabReport(
            "chatModeration",
            "chat_moderation",
            _spec(
                "contextId",
                "contextName",
                "lastActivityAt",
                "pendingThreads",
                "ownedThreads",
                "resolvedThreads",
                "doneThreads",
                "userMessages",
                "moderatorMessages",
                "moderatorsOwningResolvedThreads",
                "moderatorsOwningUnresolvedThreads",
            ),
            ("lastActivityAt",),
        ),
        CollabReport(
            "groupChatTranscripts",
            "group_chat_transcripts",
            _spec(
                *_PERSON,
                "messageId",
                "sentAt",
                "message",
                "repliedToMessageId",
                "likes",
                "isDeleted",
                "subContext",
                "contextId",
            ),
            ("sentAt",),
            (PERSONAL_DATA, MESSAGE_CONTENT),
        ),
        CollabReport(
            "moderatorTranscripts",
            "moderator_transcripts",
            _spec("threadId", *_PERSON, "messageId", "sentAt", "message", "isModerator", "threadStatus", "contextId"),
            ("sentAt",),
            (PERSONAL_DATA, MESSAGE_CONTENT),
        ),
    )
}


@dataclass(slots=True)
class CollabJob:
    """One report's progress, stored in the session's ledger row between deliveries."""

    state: str = JOB_NEW
    handle: dict[str, Any] | None = None
    detail: str = ""
    overdue: bool = False
    file: dict[str, Any] | None = field(default=None)

    def to_state(self) -> dict[str, Any]:
        """The ledger form."""
        state: dict[str, Any] = {"state": self.state, "detail": self.detail, "overdue": self.overdue}
        if self.handle is not None:
            state["handle"] = self.handle
        if self.file is not None:
            state["file"] = self.file
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> CollabJob:
        """Back from :meth:`to_state` (a missing or malformed entry starts over)."""
        if not isinstance(state, Mapping) or state.get("state") not in (JOB_NEW, JOB_PENDING, JOB_WRITTEN, JOB_FAILED):
            return cls()
        handle, file = state.get("handle"), state.get("file")
        return cls(
            state=str(state["state"]),
            handle=dict(handle) if isinstance(handle, Mapping) else None,
            detail=str(state.get("detail") or ""),
            overdue=bool(state.get("overdue")),
            file=dict(file) if isinstance(file, Mapping) else None,
        )

    @property
    def finished(self) -> bool:
        """Written or failed: nothing more to do in this run."""
        return self.state in (JOB_WRITTEN, JOB_FAILED)


def collab_parameters(session: RoomSession, time_zone: str, virtual_event_id: str | None) -> dict[str, str | list[str]]:
    """``reportParameters`` for ``session``: its room, its virtual event and the days it spans in ``time_zone``."""
    zone = zoneinfo.ZoneInfo(time_zone)
    first = datetime.fromtimestamp(session.start, tz=zone).date()
    last = datetime.fromtimestamp(session.end, tz=zone).date()
    params: dict[str, str | list[str]] = {
        "entries_ids": [session.room_entry_id],
        "from_date_id": first.isoformat(),
        "to_date_id": last.isoformat(),
    }
    if virtual_event_id:
        params["virtual_event_ids"] = [virtual_event_id]
    return params


def partner_time_zone(config: AutomationConfig, partner_id: int) -> str:
    """The partner's time zone: ``weekly.partners.<id>.time_zone``, else ``weekly.time_zone``, else UTC."""
    weekly = config.weekly or {}
    partners = weekly.get("partners")
    own = partners.get(str(partner_id)) if isinstance(partners, Mapping) else None
    for section in (own, weekly):
        zone = section.get("time_zone") if isinstance(section, Mapping) else None
        if isinstance(zone, str) and zone:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ConfigError("weekly.time_zone", "not a known IANA time zone") from exc
            return zone
    return "UTC"


def room_virtual_event_id(client: KalturaClient, room_entry_id: str) -> str | None:
    """The virtual event the room belongs to (``virtualEventId`` on the room entry; unconfirmed on Kaltura's wire,
    docs/kaltura.md#unconfirmed), or None."""
    try:
        room = client.entries.get(room_entry_id)
    except KalturaNotFoundError:
        return None  # a deleted room: its reports are asked for without a virtual event
    value = room.raw.get("virtualEventId")
    return str(value) if value not in (None, "", 0) else None


def advance_collab_report(
    client: KalturaClient,
    store: ObjectStore,
    prefix: str,
    session: RoomSession,
    report: CollabReport,
    job: CollabJob,
    parameters: Mapping[str, Any],
    *,
    now: float,
    pending_limit_seconds: int,
) -> CollabJob:
    """One step of ``report``: generate, poll, or download and write it. Kaltura refusing the report (a failed
    job, one pending past the limit, a permanent API error) comes back as a ``failed`` job; retryable errors raise.
    """
    handle = ReportJobHandle.from_dict(job.handle) if job.handle else None
    try:
        progress = advance_job(
            client.report_jobs, handle, report.name, parameters, now=now, max_wait_seconds=pending_limit_seconds
        )
        if progress.state is ReportJobState.PENDING:
            return CollabJob(JOB_PENDING, progress.handle.to_dict(), progress.detail)
        if progress.state is ReportJobState.FAILED:
            return CollabJob(JOB_FAILED, progress.handle.to_dict(), progress.detail, progress.overdue)
        written = write_collab_report(client, store, prefix, session, report, progress.handle, parameters)
    except KalturaError as error:
        if error.retryable:
            raise
        return CollabJob(JOB_FAILED, job.handle, type(error).__name__)
    return CollabJob(JOB_WRITTEN, progress.handle.to_dict(), "", False, manifest_file_state(written))


def write_collab_report(
    client: KalturaClient,
    store: ObjectStore,
    prefix: str,
    session: RoomSession,
    report: CollabReport,
    handle: ReportJobHandle,
    parameters: Mapping[str, Any],
) -> ManifestFile:
    """Download the finished report into ``report=<file name>/`` cut to the session window; its manifest entry."""
    cleaner = CsvCleaner(report.spec, row_filter=window_filter(report, session.start, session.end))
    key = report_key(prefix, report.file_name)

    def write(chunks: Iterator[bytes]) -> None:
        writer.write_records(cleaner.clean_quoted_bytes(chunks), with_header=True)
        writer.write_records(cleaner.header_when_no_source(), with_header=True)

    with store.open_writer(key) as writer:
        stream_into(lambda sink: client.report_jobs.download(handle, sink), write, thread_name="collab-report")
        result = writer.complete()
    stats = cleaner.stats
    # Counts only: these reports hold names and message text.
    logger.info(
        "chat and collaboration report written",
        extra=log_ids(session) | {"report": report.name, "rows": result.rows, "rows_outside": stats.rows_filtered},
    )
    source = SourceCall("reportsMicroservice", "generate", {"reportName": report.name, "reportParameters": parameters})
    return ManifestFile.from_result(report.file_name, result, cleaner.columns, source, report.classification)


def window_filter(report: CollabReport, start: int, end: int) -> RowFilter:
    """Keep rows whose time lies in ``[start, end]`` (rows without a readable time are kept)."""
    columns = report.time_columns

    def keep(row: Mapping[str, str]) -> bool:
        for column in columns:
            moment = row_time(row.get(column))
            if moment is not None:
                return start <= moment <= end
        return True

    return keep


def row_time(raw: str | None) -> int | None:
    """A row time as unix seconds: ISO 8601 (``2025-09-15T10:03:12.000Z``, with or without zone: UTC) or unix
    seconds / milliseconds; None when empty or unreadable."""
    text = (raw or "").strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        number = int(text)
        return number // 1000 if abs(number) >= 10**11 else number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def manifest_file_state(entry: ManifestFile) -> dict[str, Any]:
    """A manifest entry as stored in the ledger between deliveries (no secrets: the source is redacted)."""
    return entry.to_json()


def manifest_file_from_state(state: Mapping[str, Any]) -> ManifestFile:
    """Back from :func:`manifest_file_state`."""
    source = state.get("source") or {}
    return ManifestFile(
        report=str(state["report"]),
        key=str(state["key"]),
        rows=int(state["rows"]),
        columns=tuple(str(column) for column in state.get("columns") or ()),
        bytes=int(state["bytes"]),
        sha256=str(state["sha256"]),
        source=SourceCall(str(source.get("service", "")), str(source.get("action", "")), source.get("params") or {}),
        content_type=str(state.get("content_type") or "text/csv"),
        classification=tuple(str(item) for item in state.get("classification") or ()),
    )
