"""S3 output: streaming multipart writer (moto enforces S3's 5 MiB minimum part size, so tests use real 5 MiB parts),
checkpoint/resume, the part-size schedule, keys and the manifest."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aws_support import BUCKET, ClientSpy
from kauto.aws.manifest import Manifest, ManifestFile, SourceCall, write_manifest
from kauto.aws.object_store import (
    CHECKPOINT_PREFIX,
    CSV_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    CheckpointError,
    ReportStoreError,
    S3KeyError,
    WriterClosedError,
)
from kauto.aws.report_keys import hive_value, iso_week, manifest_key, report_key, session_prefix, weekly_prefix
from kauto.aws.s3_writer import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    S3ObjectStore,
    max_object_size,
    part_size_for,
)

TIB = 1024**4
KEY = "sessions/partner_id=1234567/date=2025-01-03/report=room_data/entry_id=1_room/session_id=cp1/room_data.csv"


def csv_rows(total_bytes: int) -> list[bytes]:
    """Deterministic CSV rows (with multibyte characters) adding up to at least ``total_bytes``."""
    rows: list[bytes] = []
    size = 0
    index = 0
    while size < total_bytes:
        row = f"1_{index:08d},Salle de réunion {index % 97} — café,{index * 7},{index / 3:.4f}\r\n".encode()
        rows.append(row)
        size += len(row)
        index += 1
    return rows


def stored(s3: Any, key: str = KEY) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def open_uploads(s3: Any) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def checkpoint_objects(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=CHECKPOINT_PREFIX).get("Contents", [])]


def store_for(client: Any) -> S3ObjectStore:
    return S3ObjectStore(client, BUCKET, base_part_size=MIN_PART_SIZE)


# ------------------------------------------------------------------------------------------------ part schedule


def test_default_schedule_fits_five_tebibytes_in_ten_thousand_parts() -> None:
    assert max_object_size() >= 5 * TIB
    written = 0
    for number in range(1, MAX_PARTS + 1):
        written += part_size_for(number)
        if written >= 5 * TIB:
            break
    else:
        pytest.fail("5 TiB does not fit in 10,000 parts")
    assert number <= MAX_PARTS


@pytest.mark.parametrize("base", [MIN_PART_SIZE, DEFAULT_PART_SIZE, 64 * MIB])
def test_every_part_size_is_within_s3_limits_and_never_shrinks(base: int) -> None:
    sizes = [part_size_for(number, base) for number in range(1, MAX_PARTS + 1)]
    assert all(MIN_PART_SIZE <= size <= MAX_PART_SIZE for size in sizes)
    assert sizes == sorted(sizes)
    assert max_object_size(base) >= 5 * 10**12  # 5 TB even with the smallest allowed first part


def test_schedule_starts_at_base_and_doubles_every_thousand_parts() -> None:
    assert part_size_for(1) == 8 * MIB
    assert part_size_for(1000) == 8 * MIB
    assert part_size_for(1001) == 16 * MIB
    assert part_size_for(MAX_PARTS) == 4096 * MIB
    with pytest.raises(ValueError, match="part_number"):
        part_size_for(MAX_PARTS + 1)


def test_part_size_below_s3_minimum_is_refused(s3: Any) -> None:
    with pytest.raises(ValueError, match="base_part_size"):
        S3ObjectStore(s3, BUCKET, base_part_size=MIN_PART_SIZE - 1).open_writer(KEY)


# ---------------------------------------------------------------------------------------------- single / multi


def test_small_output_is_one_put_with_csv_content_type_and_counts(s3: Any) -> None:
    spy = ClientSpy(s3)
    rows = csv_rows(10_000)
    with store_for(spy).open_writer(KEY) as writer:
        writer.write_records(["entry_id,name,plays,ratio\r\n", *rows], with_header=True)
        result = writer.complete()

    body = stored(s3)
    assert body == b"entry_id,name,plays,ratio\r\n" + b"".join(rows)
    assert (result.key, result.bytes, result.rows, result.parts) == (KEY, len(body), len(rows), 0)
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert result.uri == f"s3://{BUCKET}/{KEY}"
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ContentType"] == CSV_CONTENT_TYPE
    assert "create_multipart_upload" not in spy.calls
    assert spy.calls == ["put_object"]


def test_large_output_streams_in_parts_and_is_byte_identical(s3: Any) -> None:
    rows = csv_rows(12 * MIB)
    with store_for(s3).open_writer(KEY) as writer:
        for row in rows:
            writer.write(row.decode(), rows=1)  # str input is encoded as UTF-8
        result = writer.complete()

    body = stored(s3)
    assert body == b"".join(rows)
    assert result.parts == 3  # 5 MiB + 5 MiB + the rest
    assert result.etag.strip('"').endswith("-3")
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert (result.bytes, result.rows) == (len(body), len(rows))
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ContentType"] == CSV_CONTENT_TYPE
    assert open_uploads(s3) == []


def test_rerun_of_the_same_job_overwrites_the_same_key(s3: Any) -> None:
    store = store_for(s3)
    for content in (b"first run\r\n", b"second run\r\n"):
        with store.open_writer(KEY) as writer:
            writer.write(content, rows=1)
            writer.complete()
    assert stored(s3) == b"second run\r\n"
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [KEY]


class _DiscardingS3:
    """Accepts uploads and keeps only their sizes: lets a test push far more data than it could store."""

    def __init__(self) -> None:
        self.part_sizes: list[int] = []

    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "upload-1"}

    def upload_part(self, *, Body: bytearray, PartNumber: int, **_: Any) -> dict[str, str]:
        self.part_sizes.append(len(Body))
        return {"ETag": f'"etag-{PartNumber}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"ETag": '"final-etag"'}


def test_memory_stays_within_one_part_buffer_whatever_the_total() -> None:
    client = _DiscardingS3()
    chunk = bytes(range(256)) * 256  # 64 KiB
    total_chunks = 48 * MIB // len(chunk)
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        writer = S3ObjectStore(client, BUCKET, base_part_size=MIN_PART_SIZE).open_writer(KEY)
        for _ in range(total_chunks):
            writer.write(chunk)
            expected.update(chunk)
        result = writer.complete()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 2 * MIN_PART_SIZE  # one 5 MiB buffer, not the 48 MiB written
    assert client.part_sizes == [MIN_PART_SIZE] * 9 + [48 * MIB - 9 * MIN_PART_SIZE]
    assert result.sha256 == expected.hexdigest()


# ------------------------------------------------------------------------------------------------------ failures


def test_failed_part_upload_aborts_the_multipart_upload(s3: Any) -> None:
    spy = ClientSpy(s3, fail=("upload_part", 2))
    writer = store_for(spy).open_writer(KEY)
    with pytest.raises(ReportStoreError) as raised:
        writer.write_records(csv_rows(11 * MIB), with_header=False)

    assert raised.value.operation == "UploadPart"
    assert raised.value.code == "InternalError"
    assert "abort_multipart_upload" in spy.calls
    assert open_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    with pytest.raises(WriterClosedError):
        writer.write(b"more")


def test_failed_completion_aborts_the_multipart_upload(s3: Any) -> None:
    spy = ClientSpy(s3, fail=("complete_multipart_upload", 1))
    with pytest.raises(ReportStoreError), store_for(spy).open_writer(KEY) as writer:
        writer.write_records(csv_rows(6 * MIB), with_header=False)
        writer.complete()
    assert open_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_error_in_the_source_stream_aborts_via_the_context_manager(s3: Any) -> None:
    def source() -> Iterator[bytes]:
        yield from csv_rows(6 * MIB)
        raise ConnectionError("Kaltura closed the connection")

    with pytest.raises(ConnectionError), store_for(s3).open_writer(KEY) as writer:
        writer.write_records(source(), with_header=False)
        writer.complete()
    assert open_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_leaving_the_block_without_completing_aborts_and_raises(s3: Any) -> None:
    with pytest.raises(WriterClosedError), store_for(s3).open_writer(KEY) as writer:
        writer.write_records(csv_rows(6 * MIB), with_header=False)
    assert open_uploads(s3) == []


# ---------------------------------------------------------------------------------------------- checkpoint/resume


def test_checkpoint_and_resume_twice_gives_the_uninterrupted_object_and_sha256(s3: Any) -> None:
    rows = csv_rows(12 * MIB)
    reference_key = "weekly/partner_id=1234567/week=2025-W01/reference.csv"
    with store_for(s3).open_writer(reference_key) as writer:
        writer.write_records(rows, with_header=False)
        reference = writer.complete()

    first, second, third = rows[: len(rows) // 4], rows[len(rows) // 4 : 2 * len(rows) // 3], rows[2 * len(rows) // 3 :]
    writer = store_for(s3).open_writer(KEY)
    writer.write_records(first, with_header=False)  # 3 MiB: still below one part
    state = json.loads(json.dumps(writer.checkpoint()))  # travels in an SQS message
    assert state["upload_id"] is None and state["part_count"] == 0
    assert len(json.dumps(state)) < 2048
    with pytest.raises(WriterClosedError):
        writer.write(b"late")

    writer = store_for(s3).resume_writer(state)
    writer.write_records(second, with_header=False)  # passes 5 MiB: part 1 is uploaded
    state = json.loads(json.dumps(writer.checkpoint()))
    assert state["part_count"] == 1 and state["tail_bytes"] > 0
    assert len(json.dumps(state)) < 2048
    assert len(checkpoint_objects(s3)) == 2

    spy = ClientSpy(s3)
    writer = store_for(spy).resume_writer(state)
    writer.write_records(third, with_header=False)
    result = writer.complete()

    assert stored(s3) == stored(s3, reference_key)
    assert result.sha256 == reference.sha256 == hashlib.sha256(b"".join(rows)).hexdigest()
    assert (result.bytes, result.rows) == (reference.bytes, reference.rows) == (sum(map(len, rows)), len(rows))
    assert "get_object" in spy.calls  # the hash of parts uploaded before the checkpoint is recomputed from S3
    assert checkpoint_objects(s3) == []
    assert open_uploads(s3) == []


def test_resume_before_any_part_keeps_the_running_hash_without_reading_back(s3: Any) -> None:
    rows = csv_rows(300_000)
    writer = store_for(s3).open_writer(KEY)
    writer.write_records(rows[:1000], with_header=False)
    state = writer.checkpoint()

    spy = ClientSpy(s3)
    writer = store_for(spy).resume_writer(state)
    writer.write_records(rows[1000:], with_header=False)
    result = writer.complete()

    assert stored(s3) == b"".join(rows)
    assert result.sha256 == hashlib.sha256(b"".join(rows)).hexdigest()
    assert result.parts == 0
    assert spy.calls.count("get_object") == 1  # only the tail, never the finished object
    assert checkpoint_objects(s3) == []


def test_checkpoint_at_a_part_boundary_stores_no_tail(s3: Any) -> None:
    writer = store_for(s3).open_writer(KEY)
    writer.write(b"x" * MIN_PART_SIZE)
    state = writer.checkpoint()
    assert (state["part_count"], state["tail_key"], state["tail_bytes"]) == (1, None, 0)
    assert checkpoint_objects(s3) == []

    writer = store_for(s3).resume_writer(state)
    writer.write(b"y")
    result = writer.complete()
    assert stored(s3) == b"x" * MIN_PART_SIZE + b"y"
    assert result.sha256 == hashlib.sha256(b"x" * MIN_PART_SIZE + b"y").hexdigest()


def _checkpointed_state(s3: Any) -> dict[str, Any]:
    writer = store_for(s3).open_writer(KEY)
    writer.write_records(csv_rows(6 * MIB), with_header=False)
    return writer.checkpoint()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda state: state.update(parts_digest="0" * 64),
        lambda state: state.update(tail_sha256="0" * 64),
        lambda state: state.update(bytes=state["bytes"] + 1),
        lambda state: state.update(version=99),
        lambda state: state.pop("upload_id"),
        lambda state: state.update(tail_key="sessions/elsewhere.csv"),
    ],
    ids=["parts", "tail", "size", "version", "missing-field", "tail-outside-prefix"],
)
def test_resume_refuses_a_state_that_does_not_match_s3(s3: Any, tamper: Any) -> None:
    state = _checkpointed_state(s3)
    tamper(state)
    with pytest.raises(CheckpointError):
        store_for(s3).resume_writer(state)


def test_resume_after_the_upload_was_aborted_is_a_checkpoint_error(s3: Any) -> None:
    state = _checkpointed_state(s3)
    s3.abort_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=state["upload_id"])
    with pytest.raises(CheckpointError, match="gone"):
        store_for(s3).resume_writer(state)


def test_resumed_writer_that_fails_aborts_and_removes_its_checkpoint_objects(s3: Any) -> None:
    state = _checkpointed_state(s3)
    spy = ClientSpy(s3, fail=("upload_part", 1))
    writer = store_for(spy).resume_writer(state)
    with pytest.raises(ReportStoreError):
        writer.write_records(csv_rows(6 * MIB), with_header=False)
    assert open_uploads(s3) == []
    assert checkpoint_objects(s3) == []


def test_resume_refuses_a_state_for_another_bucket(s3: Any) -> None:
    state = _checkpointed_state(s3)
    with pytest.raises(CheckpointError, match="bucket"):
        S3ObjectStore(s3, "another-bucket").resume_writer(state)


# ------------------------------------------------------------------------------------------------------------ keys


def test_session_and_weekly_keys_follow_the_hive_layout() -> None:
    prefix = session_prefix(1234567, datetime(2025, 1, 3, 23, 30, tzinfo=UTC), "1_abc", "cp_9")
    assert prefix == "sessions/partner_id=1234567/date=2025-01-03/entry_id=1_abc/session_id=cp_9/"
    assert report_key(prefix, "room_data") == (
        "sessions/partner_id=1234567/date=2025-01-03/report=room_data/entry_id=1_abc/session_id=cp_9/room_data.csv"
    )
    assert manifest_key(prefix) == prefix + "manifest.json"
    assert weekly_prefix(1234567, "2025-W01") == "weekly/partner_id=1234567/week=2025-W01/"
    assert report_key(weekly_prefix(1234567, "2025-W01"), "top_content") == (
        "weekly/partner_id=1234567/week=2025-W01/report=top_content/top_content.csv"
    )
    assert weekly_prefix(1234567, date(2024, 12, 30)) == "weekly/partner_id=1234567/week=2025-W01/"


def test_session_date_is_the_utc_day() -> None:
    from datetime import timedelta, timezone

    late_evening_in_new_york = datetime(2025, 1, 3, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert "/date=2025-01-04/" in session_prefix(1, late_evening_in_new_york, "1_a", "c")
    with pytest.raises(S3KeyError, match="timezone"):
        session_prefix(1, datetime(2025, 1, 3), "1_a", "c")


def test_iso_week_uses_the_iso_year() -> None:
    assert iso_week(date(2021, 1, 3)) == "2020-W53"
    assert iso_week(date(2025, 12, 29)) == "2026-W01"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "a..b", ".", "x\ny", "a\\b"])
def test_unsafe_ids_are_refused(bad: str) -> None:
    with pytest.raises(S3KeyError):
        session_prefix(1, date(2025, 1, 3), bad, "cp")


def test_equals_and_other_specials_are_percent_encoded() -> None:
    assert hive_value("a=b c%d:é") == "a%3Db%20c%25d%3A%C3%A9"
    prefix = session_prefix(1, date(2025, 1, 3), "room=1", "cp")
    assert prefix.count("=") == 4  # only the four partition separators


@pytest.mark.parametrize("bad", ["Room Data", "../x", "", "a/b"])
def test_report_names_are_validated(bad: str) -> None:
    with pytest.raises(S3KeyError):
        report_key("weekly/partner_id=1/week=2025-W01/", bad)


def test_report_keys_need_a_time_partition_to_sit_under() -> None:
    with pytest.raises(S3KeyError):
        report_key("exports/partner_id=1/", "room_data")


def test_bad_partner_ids_and_weeks_are_refused() -> None:
    with pytest.raises(S3KeyError):
        weekly_prefix(0, "2025-W01")
    with pytest.raises(S3KeyError):
        weekly_prefix(1, "2025-W60")
    with pytest.raises(S3KeyError):
        weekly_prefix(1, "2025-01")


def test_writer_refuses_keys_under_the_checkpoint_prefix(s3: Any) -> None:
    with pytest.raises(S3KeyError):
        store_for(s3).open_writer(CHECKPOINT_PREFIX + "x.csv")


# -------------------------------------------------------------------------------------------------------- manifest


def test_manifest_lists_each_file_with_counts_hash_window_and_redacted_source(s3: Any) -> None:
    store = store_for(s3)
    prefix = session_prefix(1234567, date(2024, 8, 1), "1_room", "cp_1")
    entries = []
    for report, body in (("room_data", b"entry_id\r\n1_room\r\n"), ("attendees", b"user_id\r\nu1\r\nu2\r\n")):
        with store.open_writer(report_key(prefix, report)) as writer:
            records = body.decode().splitlines(keepends=True)
            writer.write_records(records, with_header=True)
            result = writer.complete()
        source = SourceCall(
            "report",
            "getCsvFromStringParams",
            {
                "id": 6000,
                "ks": "djJ8MTIzfHNlY3JldA==",
                "params": "from_date=1722470400;to_date=1722474000",
                "adminSecret": "s3cr3t",
                "nested": {"appTokenHash": "abc", "entry_ids": "1_room"},
            },
        )
        entries.append(ManifestFile.from_result(report, result, [records[0].strip()], source))
    manifest = Manifest(
        partner_id=1234567,
        kind="session",
        window_start=datetime(2024, 8, 1, 0, 0, tzinfo=UTC),
        window_end=datetime(2024, 8, 1, 1, 0, tzinfo=UTC),
        files=tuple(entries),
        generated_at=datetime(2024, 8, 1, 1, 5, 30, tzinfo=UTC),
        scope={"entry_id": "1_room", "session_id": "cp_1"},
    )

    written = write_manifest(store, prefix, manifest)

    assert written.key == prefix + "manifest.json"
    assert s3.head_object(Bucket=BUCKET, Key=written.key)["ContentType"] == JSON_CONTENT_TYPE
    document = json.loads(stored(s3, written.key))
    assert document["partner_id"] == 1234567
    assert document["kind"] == "session"
    assert document["scope"] == {"entry_id": "1_room", "session_id": "cp_1"}
    assert document["window"] == {
        "start": "2024-08-01T00:00:00Z",
        "end": "2024-08-01T01:00:00Z",
        "start_unix": 1722470400,
        "end_unix": 1722474000,
    }
    assert document["generated_at"] == "2024-08-01T01:05:30Z"
    assert (document["rows"], document["bytes"]) == (3, sum(entry.bytes for entry in entries))
    files = {entry["report"]: entry for entry in document["files"]}
    attendees = files["attendees"]
    assert attendees["key"] == report_key(prefix, "attendees")
    assert (attendees["rows"], attendees["columns"]) == (2, ["user_id"])
    assert attendees["sha256"] == hashlib.sha256(stored(s3, attendees["key"])).hexdigest()
    assert attendees["bytes"] == len(stored(s3, attendees["key"]))
    params = attendees["source"]["params"]
    assert params["ks"] == params["adminSecret"] == params["nested"]["appTokenHash"] == "[redacted]"
    assert params["params"] == "from_date=1722470400;to_date=1722474000"
    assert params["nested"]["entry_ids"] == "1_room"
    assert "djJ8" not in json.dumps(document) and "s3cr3t" not in json.dumps(document)


def test_manifest_refuses_naive_datetimes_and_inverted_windows() -> None:
    aware = datetime(2024, 8, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone"):
        Manifest(1, "weekly", aware, aware, (), datetime(2024, 8, 1))
    with pytest.raises(ValueError, match="before"):
        Manifest(1, "weekly", aware, datetime(2024, 7, 1, tzinfo=UTC), (), aware)
