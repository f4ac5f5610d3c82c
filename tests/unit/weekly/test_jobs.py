"""The weekly job runner on fakes: what lands in the store, what Kaltura is asked, how steps continue and fail."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from kauto.aws.object_store import ReportStoreError
from kauto.csvclean import CsvCleaner, CsvSpec
from kauto.errors import ConfigError
from kauto.kaltura import KalturaPermissionError, KalturaServerError
from kauto.weekly.jobs import MAX_JOB_ATTEMPTS, JobOutcome, handle_message, table_section, week_pieces
from kauto.weekly.messages import JobMessage, MalformedMessageError
from kauto.weekly.runs import JOB_QUEUED, get_run, job_key, report_object_key, start_run
from kauto_local.fakes import InMemoryObjectStore
from weekly_fakes import PARTNER_ID, TABLE_HEADER, WEEK, WEEK_END, WEEK_START, Harness, harness, instants, table_row

MANIFEST_KEY = f"weekly/partner_id={PARTNER_ID}/week={WEEK}/manifest.json"


def one_report(entry: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"reports": [entry], **settings}


def run_week(h: Harness) -> list[str]:
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="test")
    return h.deliver()


def csv_of(h: Harness, report: str) -> bytes:
    return h.store.objects[report_object_key(PARTNER_ID, WEEK, report)]


def parsed(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def expected_table_csv(report_type_rows: list[dict[str, str]]) -> bytes:
    """What one uninterrupted pass of every row through the cleaner gives."""
    cleaner = CsvCleaner(CsvSpec())
    return "".join(cleaner.clean_dicts(report_type_rows, header=TABLE_HEADER)).encode("utf-8")


def test_default_week_writes_every_report_and_a_manifest_then_requests_the_digest_once() -> None:
    h = harness()

    outcomes = run_week(h)

    assert outcomes == ["done"] * 9
    manifest = json.loads(h.store.objects[MANIFEST_KEY])
    assert [f["report"] for f in manifest["files"]] == [
        "top_content",
        "top_content_creators",
        "user_engagement",
        "content_dropoff",
        "platforms",
        "geography",
        "room_data",
        "attendees",
        "breakouts",
    ]
    for entry in manifest["files"]:
        body = h.store.objects[entry["key"]]
        assert entry["rows"] == len(parsed(body)) - 1
        assert entry["columns"] == parsed(body)[0]
    assert manifest["kind"] == "weekly"
    assert manifest["window"] == {
        "start": "2026-03-02T00:00:00Z",
        "end": "2026-03-09T00:00:00Z",
        "start_unix": WEEK_START,
        "end_unix": WEEK_END,
    }
    assert [(d.partner_id, d.week) for d in h.digests] == [(PARTNER_ID, WEEK)]
    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None and (run.state, run.jobs_done, run.jobs_failed) == ("complete", 9, 0)


def test_a_week_that_fits_one_query_reuses_the_probe_and_sanitizes_cells() -> None:
    h = harness(one_report({"name": "top_content", "surface": "getTable", "report_type": 1}))

    run_week(h)

    assert h.kaltura.table_calls == [(1, WEEK_START, WEEK_END, None)]
    body = csv_of(h, "top_content")
    assert body == expected_table_csv(h.kaltura.rows(1, WEEK_START, WEEK_END))
    text = body.decode()
    assert "'=HYPERLINK(entry 3)" in text  # formula injection neutralized
    assert '"Lecture 1, part 1"' in text  # RFC 4180 quoting
    assert text.startswith("object_id,entry_name,count_plays,sum_time_viewed,session_start\r\n")


def test_a_week_past_the_12000_row_window_is_split_by_day_and_merged_in_order() -> None:
    h = harness(one_report({"name": "sessions", "surface": "getTable", "report_type": 9001}))
    h.kaltura.rows_per_report[9001] = 30_000

    run_week(h)

    windows = [(start, end) for _, start, end, _ in h.kaltura.table_calls]
    assert windows[0] == (WEEK_START, WEEK_END)  # the probe
    assert windows[1:] == [(WEEK_START + d * 86400, WEEK_START + (d + 1) * 86400) for d in range(7)]
    assert csv_of(h, "sessions") == expected_table_csv(h.kaltura.rows(9001, WEEK_START, WEEK_END))
    manifest = json.loads(h.store.objects[MANIFEST_KEY])
    assert manifest["files"][0]["rows"] == 30_000
    assert manifest["files"][0]["source"]["params"]["pieces"] == 7


def test_row_limit_fail_refuses_a_week_past_12000_rows_and_alerts_once() -> None:
    h = harness(one_report({"name": "top", "surface": "getTable", "report_type": 1, "on_row_limit": "fail"}))
    h.kaltura.rows_per_report[1] = 12_001

    assert run_week(h) == ["failed"]

    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None and (run.jobs_done, run.jobs_failed, run.state) == (0, 1, "complete")
    manifest = json.loads(h.store.objects[MANIFEST_KEY])
    assert manifest["files"] == [] and manifest["scope"]["failed_reports"] == "top"
    assert [json.loads(p.message)["alert"] for p in h.alerts.published] == ["weekly_report_failed"]
    assert report_object_key(PARTNER_ID, WEEK, "top") not in h.store.objects


def test_csv_export_skips_title_and_totals_and_splits_past_45000_rows() -> None:
    h = harness(one_report({"name": "users", "surface": "getUrlForReportAsCsv", "report_type": 13}))
    h.kaltura.rows_per_report[13] = 70_000

    run_week(h)

    assert h.kaltura.table_calls == [(13, WEEK_START, WEEK_END, 1)]  # the one-row probe: columns and count
    assert [(s, e) for _, s, e, _ in h.kaltura.export_calls] == [
        (WEEK_START + d * 86400, WEEK_START + (d + 1) * 86400) for d in range(7)
    ]
    assert all(headers == TABLE_HEADER for *_, headers in h.kaltura.export_calls)
    rows = parsed(csv_of(h, "users"))
    assert rows[0] == list(TABLE_HEADER)
    assert len(rows) == 70_001
    assert [row[0] for row in rows[1:4]] == ["0_0000000", "0_0000001", "0_0000002"]


def test_a_csv_export_piece_that_comes_back_full_starts_over_with_finer_pieces() -> None:
    h = harness(one_report({"name": "users", "surface": "getUrlForReportAsCsv", "report_type": 13}))
    h.kaltura.rows_per_report[13] = 70_000
    h.kaltura.first_day_only.add(13)  # the week's count looks fine for 7 pieces, but it all sits on Monday

    outcomes = run_week(h)

    assert outcomes == ["continued", "done"]
    windows = [(s, e) for _, s, e, _ in h.kaltura.export_calls]
    assert windows[0] == (WEEK_START, WEEK_START + 86400)  # 60,000 rows: possibly cut off
    assert windows[1:3] == [(WEEK_START, WEEK_START + 43200), (WEEK_START + 43200, WEEK_START + 86400)]
    assert len(parsed(csv_of(h, "users"))) == 70_001


def test_string_param_reports_are_pulled_per_local_day_with_inclusive_windows() -> None:
    h = harness(one_report({"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000}))

    run_week(h)

    assert [params for _, params in h.kaltura.csv_calls] == [
        {"from_date": str(WEEK_START + d * 86400), "to_date": str(WEEK_START + (d + 1) * 86400 - 1)} for d in range(7)
    ]
    rows = parsed(csv_of(h, "room_data"))
    assert rows[0][:6] == [
        "entry_id",
        "entry_name",
        "parent_entry_id",
        "cue_point_id",
        "session_start_time",
        "session_start_time_iso",
    ]
    assert len(rows) == 1 + h.kaltura.room_rows
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["session_start_time_iso"] == "2026-03-02T00:00:00Z"
    assert first["entry_name"] == "Room 0 @host"  # not at the start of the cell: left as is


def test_filters_and_time_zone_reach_the_request() -> None:
    entry = {
        "name": "room_data",
        "surface": "getCsvFromStringParams",
        "report_id": 6000,
        "pieces": "week",
        "time_zone": "America/New_York",
        "filters": {"entries": ["1_room0", "1_room1"]},
    }
    h = harness(one_report(entry))

    run_week(h)

    (call,) = h.kaltura.csv_calls
    # 2026-03-02 00:00 EST is 05:00 UTC; DST starts on 2026-03-08, so the next Monday is 04:00 UTC.
    assert call[1] == {
        "from_date": str(WEEK_START + 5 * 3600),
        "to_date": str(WEEK_END + 4 * 3600 - 1),
        "entry_ids": "1_room0,1_room1",
    }


def test_getTable_filter_carries_ids_and_the_offset_of_the_zone() -> None:
    entry = {
        "name": "top",
        "surface": "getTable",
        "report_type": 1,
        "time_zone": "Asia/Kolkata",
        "filters": {"categories": ["12"], "playback_contexts": ["ctx1", "ctx2"]},
    }
    h = harness(one_report(entry))

    run_week(h)

    manifest = json.loads(h.store.objects[MANIFEST_KEY])
    source = manifest["files"][0]["source"]
    assert source["action"] == "getTable"
    params = source["params"]["reportInputFilter"]
    assert params["timeZoneOffset"] == -330  # minutes west of UTC, like JavaScript
    assert params["categoriesIdsIn"] == "12"
    assert params["playbackContextIdsIn"] == "ctx1|ctx2"
    assert params["fromDate"] == WEEK_START - 330 * 60


def test_column_selection_keeps_only_the_listed_columns_in_order() -> None:
    entry = {
        "name": "top",
        "surface": "getTable",
        "report_type": 1,
        "columns": ["count_plays", "object_id", "session_start"],
        "timestamp_columns": ["session_start"],
    }
    h = harness(one_report(entry))

    run_week(h)

    rows = parsed(csv_of(h, "top"))
    assert rows[0] == ["count_plays", "object_id", "session_start", "session_start_iso"]
    assert rows[1] == ["1000", "0_0000000", str(WEEK_START), "2026-03-02T00:00:00Z"]


MICROSERVICE = {
    "name": "polls",
    "surface": "reportsMicroservice",
    "report_name": "pollsActivity",
    "filters": {"virtual_events": ["ve1"]},
    "timestamp_columns": ["answered_at"],
}


def test_microservice_reports_poll_by_re_enqueueing_with_a_delay_then_download() -> None:
    h = harness(one_report(MICROSERVICE, microservice_poll_seconds=45))
    h.kaltura.ms_pending_polls = 2

    outcomes = run_week(h)

    assert outcomes == ["waiting", "waiting", "waiting", "done"]
    assert h.delays == [0, 45, 45, 45, 0]  # the last one is the digest request
    assert h.kaltura.ms_calls == ["generate", "poll", "poll", "poll", "download"]
    (job,) = h.kaltura.ms_jobs.values()
    assert job.parameters == {"from_date_id": "2026-03-02", "to_date_id": "2026-03-08", "virtual_event_ids": ["ve1"]}
    rows = parsed(csv_of(h, "polls"))
    assert rows[0] == ["poll_id", "question", "user_id", "answer", "answered_at", "answered_at_iso"]
    assert rows[1][1] == "'@question 0"
    assert rows[2][5] == "2026-03-02T00:10:00Z"


def test_a_microservice_report_that_fails_or_stays_pending_too_long_fails_the_job() -> None:
    failing = harness(one_report(MICROSERVICE))
    failing.kaltura.ms_failure = "no data"
    slow = harness(one_report(MICROSERVICE, microservice_poll_seconds=60, microservice_max_wait_seconds=300))
    slow.kaltura.ms_pending_polls = 10**6

    assert run_week(failing) == ["waiting", "waiting", "waiting", "failed"]
    slow_outcomes = run_week(slow)

    assert slow_outcomes[-1] == "failed" and slow_outcomes[:-1] == ["waiting"] * (len(slow_outcomes) - 1)
    assert 5 <= len(slow_outcomes) <= 7
    for h in (failing, slow):
        run = get_run(PARTNER_ID, WEEK, h.deps)
        assert run is not None and run.jobs_failed == 1 and len(h.digests) == 1


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "sessions", "surface": "getTable", "report_type": 9001},
        {"name": "users", "surface": "getUrlForReportAsCsv", "report_type": 13},
        {"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000},
    ],
    ids=["getTable", "getUrlForReportAsCsv", "getCsvFromStringParams"],
)
def test_a_job_interrupted_at_every_piece_produces_the_same_bytes(entry: dict[str, Any]) -> None:
    whole, interrupted = harness(one_report(entry)), harness(one_report(entry))
    for h in (whole, interrupted):
        h.kaltura.rows_per_report.update({9001: 20_000, 13: 50_000})
        h.kaltura.room_rows = 40
    interrupted.time_left[0] = 1.0  # below the checkpoint margin: checkpoint before every piece but the first

    assert run_week(whole) == ["done"]
    outcomes = run_week(interrupted)

    assert outcomes == ["continued"] * 6 + ["done"]
    assert csv_of(interrupted, entry["name"]) == csv_of(whole, entry["name"])
    assert ("checkpoint", report_object_key(PARTNER_ID, WEEK, entry["name"])) in interrupted.store.calls
    whole_entry = json.loads(whole.store.objects[MANIFEST_KEY])["files"][0]
    interrupted_entry = json.loads(interrupted.store.objects[MANIFEST_KEY])["files"][0]
    assert interrupted_entry == whole_entry


def test_transient_kaltura_errors_retry_the_step_with_backoff() -> None:
    h = harness(one_report({"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000}))
    h.kaltura.fail_next("csv", KalturaServerError("INTERNAL_SERVERL_ERROR", "boom"), KalturaServerError("X", "y"))

    outcomes = run_week(h)

    assert outcomes == ["retrying", "retrying", "done"]
    assert h.delays[:3] == [0, 30, 60]
    assert len(parsed(csv_of(h, "room_data"))) == 1 + h.kaltura.room_rows
    assert ("abort", report_object_key(PARTNER_ID, WEEK, "room_data")) in h.store.calls


def test_a_step_failing_every_attempt_fails_the_job() -> None:
    h = harness(one_report({"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000}))
    h.kaltura.fail_next("csv", *[KalturaServerError("INTERNAL_SERVERL_ERROR", "down") for _ in range(MAX_JOB_ATTEMPTS)])

    outcomes = run_week(h)

    assert outcomes == ["retrying"] * (MAX_JOB_ATTEMPTS - 1) + ["failed"]
    row = h.ledger.get(*_job_row_key(h, "room_data"))
    assert row is not None and row["error"] == "INTERNAL_SERVERL_ERROR"


def test_a_permanent_kaltura_error_fails_only_that_report() -> None:
    h = harness(
        {
            "reports": [
                {"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000},
                {"name": "top", "surface": "getTable", "report_type": 1},
            ]
        }
    )
    h.kaltura.fail_next("csv", KalturaPermissionError("SERVICE_FORBIDDEN", "no analytics"))

    assert sorted(run_week(h)) == ["done", "failed"]
    manifest = json.loads(h.store.objects[MANIFEST_KEY])
    assert [f["report"] for f in manifest["files"]] == ["top"]
    assert manifest["scope"]["failed_reports"] == "room_data"
    (alert,) = h.alerts.published
    assert json.loads(alert.message)["details"] == {
        "report": "room_data",
        "week": WEEK,
        "error": "SERVICE_FORBIDDEN",
        "run_id": manifest["scope"]["run_id"],
    }


def test_a_configuration_error_fails_the_record_and_gives_the_lease_back() -> None:
    h = harness(one_report({"name": "top", "surface": "getTable", "report_type": 1}))

    def no_partner(_pid: int) -> Any:
        raise ConfigError("partners.1234567", "partner is not in the partner secret")

    h.deps = type(h.deps)(h.deps.run, h.store, h.alerts, kaltura=no_partner, time_left=h.deps.time_left)
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="test")
    (queued,) = h.jobs.take()

    with pytest.raises(ConfigError):
        h.send(queued.message)  # type: ignore[arg-type]

    row = h.ledger.get(*_job_row_key(h, "top"))
    assert row is not None and row["state"] == JOB_QUEUED and "owner" not in row


def test_redelivered_and_duplicate_messages_change_nothing() -> None:
    h = harness(one_report({"name": "top", "surface": "getTable", "report_type": 1}))
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="test")
    (queued,) = h.jobs.take()
    message = queued.message
    assert isinstance(message, JobMessage)

    assert h.send(message) is JobOutcome.DONE
    assert h.send(message) is JobOutcome.ALREADY_FINISHED
    assert h.send(JobMessage(PARTNER_ID, WEEK, "0" * 32, "top", 0)) is JobOutcome.STALE

    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None and (run.jobs_done, run.finished) == (1, ("top",))
    assert [type(q.message).__name__ for q in h.jobs.take()] == ["DigestRequest"]


def test_week_pieces_follow_local_days_and_cut_each_into_equal_parts() -> None:
    days = (0, 100, 200, 290, 400, 500, 600, 700)  # a short day, as on a DST change

    assert week_pieces(days, 0) == [(0, 700)]
    assert week_pieces(days, 2)[:6] == [(0, 50), (50, 100), (100, 150), (150, 200), (200, 245), (245, 290)]
    assert len(week_pieces(days, 3)) == 21


def test_table_section_skips_title_text_and_totals_whatever_the_chunking() -> None:
    body = b"Title\nText\n\ncount_plays\n12\n\na,b\n1,2\n3,4\n"
    for size in (1, 2, 5, 64):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]

        assert b"".join(table_section(chunks)) == b"a,b\n1,2\n3,4\n"


def test_fake_rows_are_spread_over_the_week() -> None:
    # The property the split tests rely on: any cut of the week returns the same rows in the same order.
    whole = [table_row(i, t) for i, t in enumerate(instants(100))]
    h = harness()
    halves = h.kaltura.rows(20, WEEK_START, WEEK_START + 3 * 86400) + h.kaltura.rows(
        20, WEEK_START + 3 * 86400, WEEK_END
    )
    h.kaltura.rows_per_report[20] = 100
    assert h.kaltura.rows(20, WEEK_START, WEEK_END) == whole
    assert len(halves) == 20


def _job_row_key(h: Harness, report: str) -> tuple[str, str]:
    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None
    return job_key(PARTNER_ID, WEEK, run.run_id, report)


def test_a_digest_request_is_handed_to_the_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness()
    built: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "kauto.weekly.digest.build_digest", lambda partner_id, week, deps: built.append((partner_id, week))
    )

    outcome = handle_message(json.dumps({"type": "weekly_digest", "partner_id": PARTNER_ID, "week": WEEK}), h.deps)

    assert outcome is JobOutcome.DIGEST and built == [(PARTNER_ID, WEEK)]


@pytest.mark.parametrize(
    "body",
    ['{"type": "weekly_job", "partner_id": 1, "week": "2026-W10", "report": "x", "run_id": "nothex"}', "[]", "nope"],
)
def test_malformed_messages_fail_the_record(body: str) -> None:
    with pytest.raises(MalformedMessageError):
        handle_message(body, harness().deps)


class FailingWriterStore(InMemoryObjectStore):
    """Writers that fail like S3 once ``fail_after`` bytes were written (the writer aborts itself, as S3's does)."""

    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.fail_after = fail_after

    def open_writer(self, key: str, *, content_type: str = "text/csv; charset=utf-8") -> Any:
        writer = super().open_writer(key, content_type=content_type)
        store, original = self, writer.write

        def write(data: bytes | str, *, rows: int = 0) -> None:
            if store.fail_after >= 0 and writer.bytes_written + len(data) > store.fail_after:
                store.fail_after = -1
                writer.abort()
                raise ReportStoreError("UploadPart", store.bucket, key, "SlowDown")
            original(data, rows=rows)

        writer.write = write  # type: ignore[method-assign]
        return writer


def test_an_s3_failure_while_uploading_retries_the_step_and_leaves_no_upload() -> None:
    h = harness(one_report({"name": "sessions", "surface": "getTable", "report_type": 9001}))
    h.kaltura.rows_per_report[9001] = 20_000
    store = FailingWriterStore(fail_after=300_000)
    h.deps = type(h.deps)(h.deps.run, store, h.alerts, kaltura=h.deps.kaltura, time_left=h.deps.time_left)

    outcomes = run_week(h)

    assert outcomes == ["retrying", "done"]
    key = report_object_key(PARTNER_ID, WEEK, "sessions")
    assert ("abort", key) in store.calls
    assert store.objects[key] == expected_table_csv(h.kaltura.rows(9001, WEEK_START, WEEK_END))


def test_a_resumed_step_failing_transiently_keeps_the_upload_of_its_checkpoint() -> None:
    h = harness(one_report({"name": "sessions", "surface": "getTable", "report_type": 9001}))
    h.kaltura.rows_per_report[9001] = 20_000
    h.time_left[0] = 1.0  # checkpoint before every piece but the first
    step_starts: dict[int, int] = {}

    def before_each_step(queued: Any) -> None:
        if isinstance(queued.message, JobMessage):
            step_starts.setdefault(queued.message.step, len(h.store.calls))
            if queued.message.step == 1:
                h.kaltura.fail_next("table", KalturaServerError("INTERNAL_SERVERL_ERROR", "blip"))

    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="test")
    outcomes = h.deliver(on_message=before_each_step)

    assert outcomes[:2] == ["continued", "retrying"]
    assert outcomes[-1] == "done"
    key = report_object_key(PARTNER_ID, WEEK, "sessions")
    failed_step = h.store.calls[step_starts[1] : step_starts[2]]
    assert ("resume_writer", key) in failed_step
    assert ("abort", key) not in failed_step  # the checkpoint's upload stays for the retry
    assert h.store.objects[key] == expected_table_csv(h.kaltura.rows(9001, WEEK_START, WEEK_END))
