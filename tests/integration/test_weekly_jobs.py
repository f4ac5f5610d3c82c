"""A weekly run on the local product: template.yaml in moto server mode, the real scheduler and report worker
invoked in-process (``LocalLambdaRuntime``), ReportJobsQueue delivered by the local SQS poller, and the Kaltura
simulator over loopback HTTP for every report surface (getTable, getUrlForReportAsCsv, getCsvFromStringParams and
the Reports Microservice).

Time: the simulator's clock starts at the wall clock. A microservice report stays pending until the simulator's
clock moves; its job re-enqueues itself with SQS ``DelaySeconds`` instead of sleeping, and those delayed messages are
made visible by :func:`release_delayed` (standing in for the delay passing on the AWS side) so no test waits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import clear_all_kauto_caches
from kauto.aws.ledger import item_from_dynamo
from kauto.csvclean import CsvCleaner, CsvSpec
from kauto.weekly.runs import previous_week, report_object_key, week_window
from kauto_local.poller import DrainReport, SqsPoller, queue_depth
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import VIEWER_SESSIONS, KalturaSimulator
from kauto_local.stack import REGION, LocalAwsStack

pytestmark = pytest.mark.integration

PARTNER_ID = 1234567
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"
POLL_SECONDS = 60
SESSIONS_PER_DAY = 2_000  # 14,000 rows in the week: past getTable's 12,000-row window
WEEK = previous_week(time.time(), "UTC")
WINDOW = week_window(WEEK, "UTC")
DEFAULT_SET = [
    {"name": "top_content", "surface": "getTable", "report_type": 1, "order": "-count_plays"},
    {"name": "top_content_creators", "surface": "getTable", "report_type": 38},
    {"name": "user_engagement", "surface": "getUrlForReportAsCsv", "report_type": 13},
    {"name": "content_dropoff", "surface": "getTable", "report_type": 2},
    {"name": "platforms", "surface": "getTable", "report_type": 21},
    {"name": "geography", "surface": "getTable", "report_type": 36},
    {"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000},
    {"name": "attendees", "surface": "getCsvFromStringParams", "report_id": 6001},
    {"name": "breakouts", "surface": "getCsvFromStringParams", "report_id": 6002},
]
VIEWER_SESSIONS_REPORT = {"name": "viewer_sessions", "surface": "getTable", "report_type": VIEWER_SESSIONS}
POLLS_REPORT = {"name": "polls", "surface": "reportsMicroservice", "report_name": "pollsActivity"}


@dataclass
class WeeklyStack:
    sim: KalturaSimulator
    aws: LocalAwsStack
    runtime: LocalLambdaRuntime
    poller: SqsPoller

    @property
    def outputs(self) -> Mapping[str, str]:
        return self.aws.outputs

    def trigger(self, event: Mapping[str, Any] | None = None) -> dict[str, int]:
        """What EventBridge Scheduler does: invoke the scheduler with the schedule's input."""
        result: dict[str, int] = self.runtime.invoke("WeeklySchedulerFunction", dict(event or {}))
        return result

    def drain(self) -> DrainReport:
        report = self.poller.drain(max_batches=400)
        assert report.empty, "the report worker did not drain ReportJobsQueue"
        assert report.failed == 0, [batch.error for batch in report.batches if batch.failed]
        return report

    def release_delayed(self) -> int:
        """Make ReportJobsQueue's delayed messages visible now (the delay has passed, as far as the test goes).

        moto keeps each message's ``delayed_until`` in its in-process backend (the server runs in a thread of this
        process); there is no API to move SQS time, so the test moves it there.
        """
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        name = self.outputs["ReportJobsQueueUrl"].rsplit("/", 1)[-1]
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[name]
        delayed = [message for message in queue._messages if message.delayed]
        for message in delayed:
            message.delayed_until = 0
        return len(delayed)

    def objects(self, prefix: str) -> dict[str, bytes]:
        s3 = self.aws.client("s3")
        bucket = self.outputs["ReportsBucketName"]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}

    def report(self, name: str) -> bytes:
        key = report_object_key(PARTNER_ID, WEEK, name)
        return self.objects(key)[key]

    def manifest(self) -> dict[str, Any]:
        key = f"weekly/partner_id={PARTNER_ID}/week={WEEK}/manifest.json"
        return json.loads(self.objects(key)[key])

    def ledger(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]:
        values = {":pk": {"S": pk}} | ({":sk": {"S": sk_prefix}} if sk_prefix else {})
        response = self.aws.client("dynamodb").query(
            TableName=self.outputs["LedgerTableName"],
            KeyConditionExpression="pk = :pk" + (" AND begins_with(sk, :sk)" if sk_prefix else ""),
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        )
        return [item_from_dynamo(item) for item in response["Items"]]

    def run_row(self) -> dict[str, Any]:
        (row,) = self.ledger(f"weekly#{PARTNER_ID}", f"run#{WEEK}")
        return row

    def job_rows(self) -> dict[str, dict[str, Any]]:
        run_id = self.run_row()["run_id"]
        prefix = f"job#{run_id}#"
        return {row["sk"][len(prefix) :]: row for row in self.ledger(f"weekly#{PARTNER_ID}#{WEEK}", prefix)}

    def jobs_queue_depth(self) -> int:
        return queue_depth(self.aws.client("sqs"), self.outputs["ReportJobsQueueUrl"])


@contextlib.contextmanager
def weekly_stack(reports: list[dict[str, Any]], **weekly: Any) -> Iterator[WeeklyStack]:
    """Simulator (with a week of room sessions) + the stack with ``reports`` as PARTNER_ID's weekly set."""
    saved_environment = dict(os.environ)
    sim = KalturaSimulator(seed=5, start_time=int(time.time()), tls=False)
    with sim:
        sim.add_partner(PARTNER_ID, ADMIN_SECRET)
        sim.configure_report(VIEWER_SESSIONS, rows_per_day=SESSIONS_PER_DAY)
        sim.microservice.pending_seconds = 90
        sim.microservice.in_progress_seconds = 60
        for day in (0, 2, 4):
            sim.add_room_session(
                PARTNER_ID,
                room_entry_id=f"1_room{day}",
                start=WINDOW.days[day] + 9 * 3600,
                duration=3600,
                attendees=4,
                breakouts=1,
                announce=False,
            )
        config = {
            "weekly": {
                "partners": {
                    str(PARTNER_ID): {
                        "reports": reports,
                        "reports_service_url": sim.reports_url,
                        "microservice_poll_seconds": POLL_SECONDS,
                        **weekly,
                    }
                }
            }
        }
        secrets = {
            "partners": {
                str(PARTNER_ID): {
                    "admin_secret": ADMIN_SECRET,
                    "webhook_hash_algorithms": ["sha256"],
                    "service_url": sim.url,
                }
            }
        }
        try:
            with LocalAwsStack(partner_secrets=secrets, parameters={"AutomationConfig": json.dumps(config)}) as aws:
                runtime = LocalLambdaRuntime(aws.functions)
                poller = SqsPoller.for_function(aws, runtime, "ReportWorkerFunction", failed_visibility_seconds=0)
                yield WeeklyStack(sim, aws, runtime, poller)
        finally:
            os.environ.clear()
            os.environ.update(saved_environment)


def rows_of(body: bytes) -> list[str]:
    return body.decode("utf-8").splitlines()


def expected_viewer_sessions(sim: KalturaSimulator) -> bytes:
    """The VIEWER_SESSIONS week straight from the simulator's generator, through the same cleaning rules."""
    header, rows = sim.report_rows(
        PARTNER_ID, VIEWER_SESSIONS, from_date=WINDOW.start, to_date=WINDOW.end, delimiter="|"
    )
    return "".join(CsvCleaner(CsvSpec()).clean_rows(header, rows)).encode("utf-8")


@pytest.fixture(autouse=True)
def fresh_moto(moto_aws: str) -> str:
    # moto keeps its state per process: moto_aws resets it, so every test creates a fresh stack.
    return moto_aws


def reset_moto(moto_url: str) -> None:
    """Forget every moto resource (a second stack in the same test starts from nothing, like the first)."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")  # noqa: S310 - loopback URL
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def test_a_weekly_run_pulls_every_report_kind_into_s3_and_completes_once() -> None:
    with weekly_stack([*DEFAULT_SET, VIEWER_SESSIONS_REPORT, POLLS_REPORT]) as stack:
        totals = stack.trigger()  # the schedule's input: every configured partner, the previous ISO week
        stack.drain()

        assert (totals["started"], totals["jobs"]) == (1, 11)
        jobs = stack.job_rows()
        # Everything but the microservice report is done; that one is waiting on Kaltura, not sleeping in Lambda.
        assert {name: row["state"] for name, row in jobs.items() if row["state"] != "done"} == {"polls": "waiting"}
        assert stack.jobs_queue_depth() == 1  # its next poll, delayed
        assert stack.run_row()["state"] == "running"

        polls = 0
        while stack.job_rows()["polls"]["state"] != "done":
            assert polls < 6, "the microservice report never completed"
            stack.sim.clock.advance(POLL_SECONDS)
            assert stack.release_delayed() == 1
            stack.drain()
            polls += 1

        # pending 90 s + in progress 60 s on the simulator's clock: three polls of 60 s.
        assert polls == 3
        run = stack.run_row()
        assert (run["state"], run["jobs_done"], run["jobs_failed"]) == ("complete", 11, 0)
        manifest = stack.manifest()
        assert [entry["report"] for entry in manifest["files"]] == [r["name"] for r in stack_reports()]
        for entry in manifest["files"]:
            body = stack.report(entry["report"])
            assert entry["sha256"] == hashlib.sha256(body).hexdigest(), entry["report"]
            assert entry["rows"] == len(rows_of(body)) - 1, entry["report"]
        # Past 12,000 rows: split by day and merged in order, equal to the week straight from the generator.
        assert stack.report("viewer_sessions") == expected_viewer_sessions(stack.sim)
        assert manifest["files"][9]["source"]["params"]["pieces"] == 7
        assert len(rows_of(stack.report("room_data"))) == 1 + 3 * 2  # three sessions, one breakout each
        polls_header = (
            "pollId,question,pollType,userId,userFirstName,userLastName,userEmail,answer,answeredAt,contextId"
        )
        assert rows_of(stack.report("polls"))[0] == polls_header
        # The digest request was sent once the last job finished, and consumed.
        assert stack.jobs_queue_depth() == 0
        assert stack.objects("_checkpoints/") == {}


def stack_reports() -> list[dict[str, Any]]:
    return [*DEFAULT_SET, VIEWER_SESSIONS_REPORT, POLLS_REPORT]


def test_a_duplicate_trigger_produces_one_run() -> None:
    with weekly_stack(DEFAULT_SET[:3]) as stack:
        first = stack.trigger({"partner_id": PARTNER_ID, "week": WEEK})
        second = stack.trigger({"partner_id": PARTNER_ID, "week": WEEK})

        assert (first["started"], first["jobs"]) == (1, 3)
        assert (second["duplicate"], second["jobs"]) == (1, 0)
        assert stack.jobs_queue_depth() == 3
        stack.drain()
        run = stack.run_row()
        assert (run["state"], run["jobs_done"], run["jobs_expected"]) == ("complete", 3, 3)
        assert len(stack.ledger(f"weekly#{PARTNER_ID}")) == 1


def test_a_job_checkpointed_before_every_piece_writes_the_same_bytes_as_an_uninterrupted_one(fresh_moto: str) -> None:
    # 12,000 rows a day: 84,000 rows (about 8.6 MB, more than one 8 MiB part), 14 pieces of half a day.
    def big_week(stack: WeeklyStack) -> None:
        stack.sim.configure_report(VIEWER_SESSIONS, rows_per_day=12_000)

    with weekly_stack([VIEWER_SESSIONS_REPORT]) as whole:
        big_week(whole)
        whole.trigger({"partner_id": PARTNER_ID, "week": WEEK})
        whole.drain()
        reference = whole.report("viewer_sessions")
        reference_entry = whole.manifest()["files"][0]
    reset_moto(fresh_moto)
    clear_all_kauto_caches()  # clients, secrets and config of the first stack, as a fresh Lambda instance would

    # A checkpoint margin longer than the function's 900 s timeout: every piece after the first of an invocation
    # finds too little time left, so each step writes one piece, checkpoints the writer and continues.
    with weekly_stack([VIEWER_SESSIONS_REPORT], checkpoint_margin_seconds=3600) as interrupted:
        big_week(interrupted)
        interrupted.trigger({"partner_id": PARTNER_ID, "week": WEEK})
        report = interrupted.drain()

        job = interrupted.job_rows()["viewer_sessions"]
        assert reference_entry["source"]["params"]["pieces"] == 14
        assert (job["state"], job["step"]) == ("done", 13)  # 14 steps: 13 checkpoints
        assert report.succeeded == 14 + 1  # and the digest request
        assert interrupted.report("viewer_sessions") == reference
        assert len(reference) > 8 * 1024 * 1024
        entry = interrupted.manifest()["files"][0]
        assert (entry["sha256"], entry["rows"], entry["bytes"]) == (
            reference_entry["sha256"],
            reference_entry["rows"],
            reference_entry["bytes"],
        )
        # Checkpoint tails are cleaned up and no multipart upload is left behind.
        assert interrupted.objects("_checkpoints/") == {}
        uploads = interrupted.aws.client("s3").list_multipart_uploads(Bucket=interrupted.outputs["ReportsBucketName"])
        assert uploads.get("Uploads", []) == []
