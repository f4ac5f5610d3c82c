"""The weekly digest on the template's resources (moto server mode): CSVs and manifest in the reports bucket, caption
and task rows in the ledger table (read with a Scan), the page and digest.json back in the bucket, alerts through the
topic once per run."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from kauto.automation_config import build_automation_config
from kauto.aws.alerts import SnsAlertPublisher
from kauto.aws.clients import dynamodb_client, s3_client, sns_client
from kauto.aws.ledger import DynamoLedger
from kauto.aws.manifest import Manifest, ManifestFile, SourceCall, write_manifest
from kauto.aws.report_keys import report_key, weekly_prefix
from kauto.aws.s3_writer import S3ObjectStore
from kauto.csvclean import ROOM_DATA_SPEC, CsvCleaner, CsvSpec
from kauto.kaltura import ReportGraph
from kauto.weekly.config import parse_weekly_config
from kauto.weekly.deps import RunDeps, WeeklyDeps
from kauto.weekly.digest import build_digest
from kauto_local.fakes import InMemoryJobQueue
from kauto_local.stack import LocalAwsStack

pytestmark = pytest.mark.integration

PARTNER_ID = 1234567
WEEK, PREVIOUS_WEEK = "2025-W02", "2025-W01"
ZONE = "UTC"
NOW = datetime(2025, 1, 13, 7, 0, tzinfo=UTC).timestamp()
MONDAY = int(datetime(2025, 1, 6, tzinfo=UTC).timestamp())
DAY = 86400
CONTENT_HEADER = ("object_id", "entry_name", "count_plays", "sum_time_viewed")
ROOM_HEADER = ROOM_DATA_SPEC.preferred_columns


class NoGraphs:
    """Kaltura's daily graph, empty: the totals under test come from the CSVs."""

    def graphs(self, *_: Any, **__: Any) -> list[ReportGraph]:
        return []


class GraphlessKaltura:
    reports = NoGraphs()


@pytest.fixture
def aws(moto_aws: str) -> Iterator[LocalAwsStack]:
    saved = dict(os.environ)
    try:
        with LocalAwsStack(partner_secrets={"partners": {}}) as stack:
            yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)


def weekly_deps(aws: LocalAwsStack, monkeypatch: pytest.MonkeyPatch) -> WeeklyDeps:
    table = aws.outputs["LedgerTableName"]
    monkeypatch.setenv("LEDGER_TABLE", table)  # the digest's default sources scan this table
    ledger = DynamoLedger(dynamodb_client(), table, clock=lambda: NOW)
    config = build_automation_config({"weekly": {"week_over_week": [{"metric": "plays", "change_below_percent": -30}]}})
    run = RunDeps(config, parse_weekly_config(None), ledger, InMemoryJobQueue(), lambda: NOW, ZONE)
    return WeeklyDeps(
        run=run,
        store=S3ObjectStore(s3_client(), aws.outputs["ReportsBucketName"]),
        alerts=SnsAlertPublisher(sns_client(), aws.outputs["AlertsTopicArn"], ledger, clock=lambda: NOW),
        kaltura=lambda _partner_id: GraphlessKaltura(),
    )


def write_run(deps: WeeklyDeps, week: str, scale: int) -> dict[str, str]:
    prefix = weekly_prefix(PARTNER_ID, week)
    start = MONDAY if week == WEEK else MONDAY - 7 * DAY
    rows: dict[str, tuple[tuple[str, ...], CsvSpec, list[tuple[object, ...]], SourceCall]] = {
        "top_content": (
            CONTENT_HEADER,
            CsvSpec(),
            [(f"1_e{i:04d}", f'Entry {i}, "quoted"', (i % 17) * scale, (i % 13) * 1.25 * scale) for i in range(2500)],
            SourceCall("report", "getTable", {"reportType": 1}),
        ),
        "room_data": (
            ROOM_HEADER,
            ROOM_DATA_SPEC,
            [
                (f"0_room{i}", "Room", "", f"cp_{i}", start + i * 3600, start + i * 3600 + 1800, "h", 5, f"0.{i % 10}")
                for i in range(40)
            ],
            SourceCall("report", "getCsvFromStringParams", {"id": 6000}),
        ),
    }
    files, keys = [], {}
    for name, (header, spec, data, source) in rows.items():
        cleaner = CsvCleaner(spec)
        with deps.store.open_writer(report_key(prefix, name)) as writer:
            writer.write_records(cleaner.clean_rows(header, data), with_header=True)
            result = writer.complete()
        files.append(ManifestFile.from_result(name, result, cleaner.columns, source))
        keys[name] = result.key
    window_start = datetime.fromtimestamp(start, tz=UTC)
    window_end = datetime.fromtimestamp(start + 7 * DAY, tz=UTC)
    manifest = Manifest(PARTNER_ID, "weekly", window_start, window_end, tuple(files), datetime.fromtimestamp(NOW, UTC))
    write_manifest(deps.store, prefix, manifest)
    return keys


def read_object(aws: LocalAwsStack, key: str) -> tuple[bytes, str]:
    response = aws.client("s3").get_object(Bucket=aws.outputs["ReportsBucketName"], Key=key)
    return response["Body"].read(), response["ContentType"]


def received(aws: LocalAwsStack, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages.extend(json.loads(m["Body"]) for m in batch)
    return messages


def test_digest_on_the_stack_equals_the_csv_sums_and_alerts_once(
    aws: LocalAwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = weekly_deps(aws, monkeypatch)
    alerts_queue = aws.observe_alerts("digest-alerts")
    write_run(deps, PREVIOUS_WEEK, scale=2)
    keys = write_run(deps, WEEK, scale=1)
    for index in range(3):  # caption orders of the week, one of the week before
        deps.ledger.put(
            f"caption#{PARTNER_ID}#1_e{index}", "item#7", {"state": "ordered", "ordered_at": MONDAY + index}
        )
    deps.ledger.put(f"caption#{PARTNER_ID}#1_old", "item#7", {"state": "done", "ordered_at": MONDAY - 10})
    deps.ledger.put(f"task#{PARTNER_ID}#99", "task", {"state": "error", "updated_at": MONDAY + DAY})

    first = build_digest(PARTNER_ID, WEEK, deps)
    again = build_digest(PARTNER_ID, WEEK, deps)

    body, _ = read_object(aws, keys["top_content"])
    content = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    document = json.loads(read_object(aws, first.json_key)[0])
    assert document["totals"]["plays"] == float(sum(Decimal(row["count_plays"]) for row in content))
    assert document["totals"]["minutes_viewed"] == float(sum(Decimal(row["sum_time_viewed"]) for row in content))
    assert document["totals"]["room_sessions"] == 40
    assert (document["totals"]["caption_orders"], document["totals"]["caption_errors"]) == (3, 1)

    page, content_type = read_object(aws, first.html_key)
    assert content_type == "text/html; charset=utf-8"
    # Nothing loaded from anywhere; the only URLs are links to the report objects in the S3 console.
    links = re.findall(rb'<a href="([^"]*)"', page)
    assert links and page.lower().count(b"http") == len(links)
    assert all(link.startswith(b"https://s3.console.aws.amazon.com/s3/object/") for link in links)
    assert b"<svg" in page

    alerts = received(aws, alerts_queue)
    assert sorted(alert["alert"] for alert in alerts) == ["weekly_change", "weekly_digest"]
    assert (first.alerts_published, again.alerts_published, again.summary_published) == (1, 0, False)
