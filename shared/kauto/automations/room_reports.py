"""Kaltura Room reports 6000/6001/6002 of one session: requested with ``report.getCsvFromStringParams``
(docs/kaltura.md#report-csv-strings) over the padded session window, narrowed server-side where the report has a
filter for it (6000 ``entry_ids``, 6001 ``entry_ids`` + ``cue_point_ids``, 6002 ``parentEntryIds``) and filtered
here to the session's rows. The body streams from Kaltura through :class:`~kauto.csvclean.CsvCleaner` into the S3
multipart writer: memory stays bounded whatever the size. Also: reading the sessions report 6000 lists (the sweep,
recordings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from kauto.automations.session_events import RoomSession, as_int, log_ids
from kauto.automations.telemetry import logger
from kauto.aws.manifest import ManifestFile, SourceCall
from kauto.aws.object_store import ObjectStore
from kauto.aws.report_keys import report_key
from kauto.csvclean import (
    ROOM_ATTENDEES_SPEC,
    ROOM_BREAKOUTS_SPEC,
    ROOM_DATA_SPEC,
    CsvCleaner,
    CsvSpec,
    RowFilter,
    room_rows,
)
from kauto.kaltura.streams import stream_into

if TYPE_CHECKING:
    from kauto.automations.thresholds import SessionMetrics
    from kauto.kaltura import KalturaClient, StreamResult

T = TypeVar("T")

ROOM_DATA_REPORT = 6000

ATTENDEES_REPORT = 6001

BREAKOUTS_REPORT = 6002

MAX_SESSION_SECONDS = 12 * 3600
"""Longest session the lookups expect: report 6000 selects sessions by start time, so queries reach back this far."""


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
    classification: tuple[str, ...] = ("personal_data",)
    """Every room report names people (hosts, attendees, breakout initiators)."""


ROOM_REPORTS: Mapping[int, RoomReport] = {
    ROOM_DATA_REPORT: RoomReport(ROOM_DATA_REPORT, "room_data", ROOM_DATA_SPEC, "from_date", "to_date", "entry_ids"),
    ATTENDEES_REPORT: RoomReport(
        ATTENDEES_REPORT, "attendees", ROOM_ATTENDEES_SPEC, "from_date", "to_date", "entry_ids", "cue_point_ids"
    ),
    BREAKOUTS_REPORT: RoomReport(
        BREAKOUTS_REPORT, "breakouts", ROOM_BREAKOUTS_SPEC, "fromDate", "toDate", "parentEntryIds"
    ),
}


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as report 6000 lists it (``parent_entry_id`` is set for breakout rooms)."""

    room_entry_id: str
    session_id: str
    parent_entry_id: str | None
    start: int | None
    end: int | None


def write_room_report(
    client: KalturaClient,
    store: ObjectStore,
    session: RoomSession,
    prefix: str,
    report: RoomReport,
    window: tuple[int, int],
    metrics: SessionMetrics,
) -> ManifestFile:
    """Stream ``report`` of ``session`` over ``window`` from Kaltura through the cleaner into S3 (only the
    session's rows, observed into ``metrics``); the manifest entry of the file written."""
    params = report_params(report, session, window)
    cleaner = CsvCleaner(report.spec, row_filter=session_filter(report, session, window, metrics))
    key = report_key(prefix, report.name)

    def write(chunks: Iterator[bytes]) -> None:
        writer.write_records(cleaner.clean_bytes(chunks), with_header=True)
        writer.write_records(cleaner.header_when_no_source(), with_header=True)  # an empty body from Kaltura

    with store.open_writer(key) as writer:
        stream_report_csv(client, report.report_id, params, write)
        result = writer.complete()
    source = SourceCall("report", "getCsvFromStringParams", {"id": report.report_id, "params": _joined(params)})
    stats = cleaner.stats
    logger.info(
        "room report written",
        extra=log_ids(session)
        | {"report": report.report_id, "rows": result.rows, "rows_in": stats.rows_in, "ragged": stats.rows_ragged},
    )
    return ManifestFile.from_result(report.name, result, cleaner.columns, source, report.classification)


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


def session_filter(
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
        start = as_int(row.get("session_start_time"))
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
                    start=as_int(row.get("session_start_time")),
                    end=as_int(row.get("session_end_time")),
                )
            )
        return False  # nothing to output: the cleaner's row hook is only used to see the parsed rows

    cleaner = CsvCleaner(ROOM_DATA_SPEC, row_filter=collect)
    stream_report_csv(client, ROOM_DATA_REPORT, params, lambda chunks: _drain(cleaner.clean_bytes(chunks)))
    return found


def stream_report_csv(
    client: KalturaClient,
    report_id: int,
    params: Mapping[str, str | int],
    consume: Callable[[Iterator[bytes]], T],
) -> tuple[StreamResult | None, T]:
    """Stream ``report.getCsvFromStringParams`` (BOM stripped) into ``consume(chunks)``; both results.

    An error on either side stops both and is raised here (a Kaltura error as its own typed error).
    """
    return stream_into(
        lambda sink: client.reports.csv(report_id, params, sink),
        consume,
        thread_name="kaltura-room-report",
    )


def _drain(records: Iterator[str]) -> None:
    for _ in records:
        pass


def _joined(params: Mapping[str, str | int]) -> str:
    return ";".join(f"{key}={value}" for key, value in params.items())
