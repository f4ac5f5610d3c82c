"""Weekly job benchmark: a large room report from the Kaltura simulator to S3 through the real job. Prints figures.

Setup (loopback only, each in its own process): the Kaltura simulator serving ``report.getCsvFromStringParams``
(report 6000 padded with synthetic rows to ``--bytes``, 2 GB by default) and moto in server mode.

(a) Floor: a raw ``boto3`` ``upload_fileobj`` of the same HTTP stream (no parsing, boto3's default multipart
    transfer with its upload threads) into the same S3.
(b) Job: a weekly run with one report (getCsvFromStringParams 6000, one request for the week) started in the ledger
    and its job message handled by ``kauto.weekly.jobs.handle_message``: the stream goes through the CSV cleaner
    (quoting, formula neutralizing, ISO timestamp twins) into the streaming multipart writer.

Each runs in a fresh child process that reports its own peak RSS. Targets: job peak RSS <= 256 MiB and job
throughput / floor throughput >= 0.7 (throughput = report bytes read from Kaltura per second).

Run: ``.venv/bin/python benchmarks/weekly_bench.py [--bytes 2000000000] [--rounds 1]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PARTNER_ID = 1234567
SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the fake secret of docs/kaltura.md#signature
BUCKET = "weekly-bench"
TABLE = "weekly-bench-ledger"
QUEUE = "weekly-bench-jobs"
WEEK = "2026-W10"
WEEK_START = 1_772_409_600  # Monday 2026-03-02 00:00 UTC
WEEK_END = WEEK_START + 7 * 86400
MIB = 1024 * 1024
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "POWERTOOLS_SERVICE_NAME": "kaltura-report-worker",
    "POWERTOOLS_METRICS_NAMESPACE": "KalturaAutomations",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str) -> None:
    for _ in range(400):
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode in its own process on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Each job round empties the job queue first (see child_job).
        env={**os.environ, "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/moto-api/")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def simulator(body_bytes: int) -> Iterator[dict[str, str]]:
    """The Kaltura simulator in its own process: ``{"url": ..., "ks": ...}``."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-simulator", str(body_bytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info: dict[str, str] = json.loads(process.stdout.readline())
        yield info
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the simulator stops when its stdin closes
        process.wait(timeout=30)


def serve_simulator(body_bytes: int) -> None:
    from kauto_local.simulator import KalturaSimulator

    with KalturaSimulator(seed=7, start_time=WEEK_END + 3600, tls=False) as sim:
        sim.add_partner(PARTNER_ID, SECRET)
        sim.configure_room_report(6000, body_bytes=body_bytes)
        print(json.dumps({"url": sim.url, "ks": sim.ks(PARTNER_ID)}), flush=True)
        sys.stdin.read()


def create_resources() -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("sqs").create_queue(QueueName=QUEUE)
    boto3.client("sns").create_topic(Name="weekly-bench-alerts")
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------------------------------ children


def child_floor(url: str, ks: str) -> dict[str, Any]:
    """boto3 ``upload_fileobj`` straight from the HTTP response: the fastest the bytes can go from Kaltura to S3."""
    import boto3
    import requests

    s3 = boto3.client("s3")
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    with requests.post(
        f"{url}/api_v3/service/report/action/getCsvFromStringParams",
        data={"format": "1", "ks": ks, "id": "6000", "params": f"from_date={WEEK_START};to_date={WEEK_END - 1}"},
        stream=True,
        timeout=(5, 120),
    ) as response:
        response.raise_for_status()
        counted = CountingReader(response.raw)
        s3.upload_fileobj(counted, BUCKET, "floor/room_data.csv")
    seconds = time.perf_counter() - start
    size = s3.head_object(Bucket=BUCKET, Key="floor/room_data.csv")["ContentLength"]
    return {"seconds": seconds, "read": counted.read_bytes, "object": size, "rss": peak_rss_mib(), "rss0": rss_before}


class CountingReader:
    """A file-like wrapper counting what ``upload_fileobj`` read."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._raw.read(size)
        self.read_bytes += len(data)
        return data


def child_job(url: str, body_bytes: int) -> dict[str, Any]:
    """One weekly run with one getCsvFromStringParams report, its job message handled by the real runner."""
    import boto3
    from botocore.config import Config
    from kauto.automation_config import build_automation_config
    from kauto.automations.deps import KALTURA_CLIENT_SETTINGS
    from kauto.aws.alerts import SnsAlertPublisher
    from kauto.aws.clients import dynamodb_client, sns_client
    from kauto.aws.ledger import DynamoLedger
    from kauto.aws.s3_writer import S3ObjectStore
    from kauto.kaltura import PartnerCredentials, get_client
    from kauto.weekly.config import parse_weekly_config
    from kauto.weekly.deps import RunDeps, WeeklyDeps
    from kauto.weekly.jobs import handle_message
    from kauto.weekly.queue import SqsJobQueue
    from kauto.weekly.runs import report_object_key, start_run

    report = {"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000, "pieces": "week"}
    config = build_automation_config({"weekly": {"partners": {str(PARTNER_ID): {"reports": [report]}}}})
    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    topic_arn = boto3.client("sns").create_topic(Name="weekly-bench-alerts")["TopicArn"]
    ledger = DynamoLedger(dynamodb_client(), TABLE)
    run = RunDeps(config, parse_weekly_config(config.weekly), ledger, SqsJobQueue(queue_url))
    client = get_client(PartnerCredentials(PARTNER_ID, url, admin_secret=SECRET), KALTURA_CLIENT_SETTINGS)
    # moto assembles a completed multipart upload inside the CompleteMultipartUpload request (gigabytes copied in
    # Python) where S3 keeps the connection alive while it works: give that call moto's time, not the shared S3
    # client's 30 s read timeout.
    s3 = boto3.client("s3", config=Config(connect_timeout=2, read_timeout=600, retries={"mode": "standard"}))
    alerts = SnsAlertPublisher(sns_client(), topic_arn, ledger)
    deps = WeeklyDeps(run, S3ObjectStore(s3, BUCKET), alerts, lambda _: client)
    sqs.purge_queue(QueueUrl=queue_url)  # an earlier round's digest request is not part of this measurement
    start_run(PARTNER_ID, WEEK, run, trigger="bench", force=True)
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    outcome = handle_message(message["Body"], deps)
    seconds = time.perf_counter() - start
    if outcome.value != "done":
        raise RuntimeError(f"the job ended {outcome.value}, not done (see its log lines above)")
    key = report_object_key(PARTNER_ID, WEEK, "room_data")
    size = boto3.client("s3").head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    return {
        "seconds": seconds,
        "read": body_bytes,
        "object": size,
        "rss": peak_rss_mib(),
        "rss0": rss_before,
        "outcome": outcome.value,
    }


def run_child(kind: str, moto_url: str, sim: dict[str, str], body_bytes: int) -> dict[str, Any]:
    env = {**os.environ, **BASE_ENV, "AWS_ENDPOINT_URL": moto_url}
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, sim["url"], sim["ks"], str(body_bytes)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if output.returncode != 0:
        raise RuntimeError(f"the {kind} run failed:\n{output.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bytes", type=int, default=2_000_000_000, help="room report body size (default 2 GB)")
    parser.add_argument("--rounds", type=int, default=1, help="floor/job pairs to run, interleaved (default 1)")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "URL", "KS", "BYTES"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-simulator", type=int, metavar="BYTES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_simulator is not None:
        serve_simulator(args.serve_simulator)
        return 0
    if args.child:
        kind, url, ks, body_bytes = args.child
        result = child_floor(url, ks) if kind == "floor" else child_job(url, int(body_bytes))
        print(json.dumps(result))
        return 0
    os.environ.update(BASE_ENV)
    with simulator(args.bytes) as sim, moto_server() as moto_url:
        os.environ["AWS_ENDPOINT_URL"] = moto_url
        create_resources()
        print(f"report: {args.bytes / 1e9:.2f} GB (getCsvFromStringParams 6000), {args.rounds} round(s)", flush=True)
        ratios: list[float] = []
        job_rss: list[float] = []
        for round_number in range(1, args.rounds + 1):
            floor = run_child("floor", moto_url, sim, args.bytes)
            job = run_child("job", moto_url, sim, args.bytes)
            floor_rate = floor["read"] / floor["seconds"] / 1e6
            job_rate = job["read"] / job["seconds"] / 1e6
            ratios.append(job_rate / floor_rate)
            job_rss.append(job["rss"])
            print(
                f"round {round_number}: floor upload_fileobj {floor['seconds']:.1f} s = {floor_rate:.1f} MB/s "
                f"(peak RSS {floor['rss']:.0f} MiB) | job {job['seconds']:.1f} s = {job_rate:.1f} MB/s "
                f"(outcome {job['outcome']}, object {job['object'] / 1e9:.2f} GB, peak RSS {job['rss']:.0f} MiB, "
                f"{job['rss0']:.0f} MiB before the job) | ratio {job_rate / floor_rate:.2f}",
                flush=True,
            )
            if floor["read"] != args.bytes:
                print(f"  note: the floor read {floor['read']} bytes")
        print(
            f"job peak RSS {max(job_rss):.0f} MiB (target <= 256) | throughput ratio job/floor "
            f"{min(ratios):.2f} worst, {max(ratios):.2f} best (target >= 0.7)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
