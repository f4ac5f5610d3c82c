"""Webhook benchmarks: cold-start import cost and warm handler latency, each against a floor. Prints figures only.

(a) Cold start: fresh interpreters, median of N runs each, floor and webhook interleaved. No interpreter can write
    bytecode (``-B``) and each reads bytecode only from a cache folder of the benchmark's own (``PYTHONPYCACHEPREFIX``),
    so nothing left by earlier runs counts. Lambda mounts a layer read-only: without shipped ``.pyc`` every cold start
    compiles every layer module it imports. Three conditions:
    - no bytecode anywhere (like for like): every module of both sides compiles from source;
    - layer without bytecode: bytecode only for what the floor imports (boto3 and the standard library, which the
      runtime provides compiled), so the webhook side compiles the rest: a layer shipped without ``.pyc``;
    - shipped bytecode (like for like): everything compiled ahead, our own modules in unchecked-hash mode as
      ``make build`` ships them (valid whatever mtimes the zip gives the sources).
    floor   = ``import boto3`` + creating the clients the webhook needs (sqs, dynamodb, secretsmanager)
    webhook = loading ``functions/webhook/app.py`` + creating the same clients through ``kauto.aws.clients``
    Target: webhook / floor <= 1.15 like for like (the first and last conditions).
(b) Warm: signed deliveries (each a new Kaltura job) through ``lambda_handler`` against moto in server mode (a
    separate process on 127.0.0.1), interleaved with the floor: the same conditional PutItem and SendMessage issued
    directly with boto3 (the handler's two writes). Target: handler p99 <= floor p99 + 5 ms.

Run: ``.venv/bin/python benchmarks/webhook_bench.py [--cold-runs 15] [--deliveries 2000]``
Loopback only; every loop is bounded. The interpreter is this one (the host's Python), not Lambda's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import kauto
from kauto.aws.clients import dynamodb_client, sqs_client

REPO_ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_APP = REPO_ROOT / "functions" / "webhook" / "app.py"
SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the fake secret of docs/kaltura.md#signature
PARTNER_ID = 1234567
CLIENTS = ("sqs", "dynamodb", "secretsmanager")

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "POWERTOOLS_SERVICE_NAME": "kaltura-webhook",
    "POWERTOOLS_METRICS_NAMESPACE": "KalturaAutomations",
    "LOG_LEVEL": "INFO",
}

FLOOR_COLD = f"""
import time
start = time.perf_counter()
import boto3
session = boto3.session.Session()
clients = [session.client(name) for name in {CLIENTS!r}]
print(time.perf_counter() - start)
"""

WEBHOOK_COLD = f"""
import time
start = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("webhook_app", {str(WEBHOOK_APP)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from kauto.aws.clients import aws_client
clients = [aws_client(name) for name in {CLIENTS!r}]
print(time.perf_counter() - start)
"""


def run_cold(code: str, pycache: Path, *, write_bytecode: bool = False) -> tuple[float, float]:
    """(in-process seconds for imports + clients, whole process wall seconds) of one fresh interpreter."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}, **BASE_ENV}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    flags = [] if write_bytecode else ["-B"]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    wall = time.perf_counter() - started
    return float(result.stdout.strip().splitlines()[-1]), wall


def runtime_bytecode(pycache: Path) -> None:
    """Fill ``pycache`` with the bytecode of what the floor imports: the runtime's own (boto3, standard library)."""
    run_cold(FLOOR_COLD, pycache, write_bytecode=True)


def ship_bytecode(pycache: Path) -> None:
    """Fill ``pycache`` as a built layer would be: what the imports touch, then our own modules as make build does."""
    runtime_bytecode(pycache)
    run_cold(WEBHOOK_COLD, pycache, write_bytecode=True)
    own = [str(Path(kauto.__file__).parent), str(WEBHOOK_APP.parent)]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-f", "--invalidation-mode", "unchecked-hash", *own],
        env={**os.environ, "PYTHONPYCACHEPREFIX": str(pycache)},
        check=True,
        timeout=300,
    )


def measure_pair(runs: int, pycache: Path) -> dict[str, tuple[float, float]]:
    """Median (imports + clients, whole process) per side; the sides alternate which goes first."""
    samples: dict[str, list[tuple[float, float]]] = {"floor": [], "webhook": []}
    codes = {"floor": FLOOR_COLD, "webhook": WEBHOOK_COLD}
    for index in range(runs):
        for side in ("floor", "webhook") if index % 2 else ("webhook", "floor"):
            samples[side].append(run_cold(codes[side], pycache))
    return {
        side: (statistics.median(t for t, _ in values), statistics.median(w for _, w in values))
        for side, values in samples.items()
    }


def cold_start(runs: int) -> None:
    print(f"(a) cold start, median of {runs} fresh interpreters per side and condition (interleaved; -B)")
    print(f"    {'':<44} floor ms  webhook ms   ratio")
    with (
        tempfile.TemporaryDirectory() as empty,
        tempfile.TemporaryDirectory() as runtime_only,
        tempfile.TemporaryDirectory() as shipped,
    ):
        runtime_bytecode(Path(runtime_only))
        ship_bytecode(Path(shipped))
        conditions = [
            ("no bytecode anywhere", Path(empty), "(target <= 1.15)"),
            ("layer without bytecode", Path(runtime_only), "(not like for like)"),
            ("shipped bytecode", Path(shipped), "(target <= 1.15)"),
        ]
        for label, pycache, target in conditions:
            medians = measure_pair(runs, pycache)
            (floor_import, floor_wall), (webhook_import, webhook_wall) = medians["floor"], medians["webhook"]
            for what, floor, webhook, note in (
                ("imports + 3 clients", floor_import, webhook_import, target),
                ("whole process", floor_wall, webhook_wall, ""),
            ):
                print(
                    f"    {label + ': ' + what:<44} {floor * 1000:8.1f}  {webhook * 1000:10.1f}"
                    f"  {webhook / floor:6.2f}   {note}".rstrip()
                )
        leftovers = list(Path(empty).rglob("*.pyc"))
        if leftovers:
            raise RuntimeError(f"an interpreter wrote bytecode despite -B: {leftovers[:3]}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode in its own process on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # The benchmark empties its queues every few dozen deliveries (see warm()).
        env={**os.environ, "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - loopback URL
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("moto server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def create_resources() -> dict[str, str]:
    sqs = boto3.client("sqs")
    dynamodb = boto3.client("dynamodb")
    queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
    floor_queue_url = sqs.create_queue(QueueName="floor-events")["QueueUrl"]
    for table in ("dedupe", "floor-dedupe"):
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    document = {
        "partners": {
            str(PARTNER_ID): {
                "admin_secret": SECRET,
                "webhook_hash_algorithms": ["sha256"],
                "service_url": "https://www.kaltura.com",
            }
        }
    }
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="kaltura/partners", SecretString=json.dumps(document)
    )["ARN"]
    return {"queue_url": queue_url, "floor_queue_url": floor_queue_url, "secret_arn": secret_arn}


def delivery(job_id: int) -> dict[str, Any]:
    """A signed API Gateway event: ObjectData JSON, entry ready, a new job id each time."""
    entry = {
        "mediaType": 1,
        "sourceType": "1",
        "duration": 125,
        "msDuration": 125400,
        "id": "1_x4b9c2kq",
        "name": "Quarterly all-hands recording",
        "partnerId": PARTNER_ID,
        "userId": "jane.doe@example.com",
        "tags": "",
        "categories": "",
        "categoriesIds": "",
        "status": 2,
        "type": 1,
        "createdAt": 1767254400,
        "updatedAt": 1767254712,
        "replacementStatus": 0,
        "rootEntryId": "1_x4b9c2kq",
        "objectType": "KalturaMediaEntry",
    }
    body = json.dumps(
        {
            "object": entry,
            "eventObjectType": 1,
            "eventNotificationJobId": job_id,
            "templateId": 26970222,
            "templateName": "Entry Status Equals",
            "templateSystemName": "HTTP_ENTRY_STATUS_EQUALS",
            "eventType": 3,
            "objectType": "KalturaHttpNotification",
        },
        separators=(",", ":"),
    ).replace("/", "\\/")
    signature = hashlib.sha256(SECRET.encode() + body.encode()).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "POST /kaltura/notifications/{partnerId}",
        "rawPath": f"/kaltura/notifications/{PARTNER_ID}",
        "headers": {
            "content-type": "application/json",
            "x-kaltura-signature": signature,
            "x-kaltura-hash-algo": "sha256",
        },
        "requestContext": {"http": {"method": "POST"}, "timeEpoch": 1767254714000},
        "pathParameters": {"partnerId": str(PARTNER_ID)},
        "body": body,
        "isBase64Encoded": False,
    }


class Context:
    function_name = "webhook-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:webhook-bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class CallTimer:
    """Sums the time a boto3 client spends between its before-call and after-call events (signing, HTTP, parsing).

    What remains of a handler call is our code plus botocore's request building (validation, serialization).
    """

    def __init__(self, *clients: Any) -> None:
        self.total = 0.0
        self._started = 0.0
        for client in clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    def _before(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.total += time.perf_counter() - self._started


def load_webhook_app() -> Any:
    spec = importlib.util.spec_from_file_location("webhook_app", WEBHOOK_APP)
    if spec is None or spec.loader is None:
        raise ImportError(WEBHOOK_APP)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    app.logger.registered_handler.setStream(io.StringIO())  # log lines are still formatted, just not printed
    return app


def warm(deliveries: int) -> None:
    with moto_server() as url:
        os.environ.update(BASE_ENV)
        os.environ["AWS_ENDPOINT_URL"] = url
        resources = create_resources()
        os.environ.update(
            {
                "EVENTS_QUEUE_URL": resources["queue_url"],
                "DEDUPE_TABLE": "dedupe",
                "PARTNER_SECRETS_ARN": resources["secret_arn"],
            }
        )
        app = load_webhook_app()
        handler_calls = CallTimer(sqs_client(), dynamodb_client())
        session = boto3.session.Session()
        floor_sqs = session.client("sqs")
        floor_dynamodb = session.client("dynamodb")
        context = Context()

        def floor(job_id: int, body: str) -> None:
            """The same two writes issued directly: the conditional claim PutItem, then SendMessage."""
            now = time.time()
            floor_dynamodb.put_item(
                TableName="floor-dedupe",
                Item={
                    "pk": {"S": f"{PARTNER_ID}:job:{job_id}"},
                    "claim_token": {"S": uuid.uuid4().hex},
                    "claimed_at": {"N": f"{now:.3f}"},
                    "expires_at": {"N": str(int(now) + 8 * 86400)},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            floor_sqs.send_message(QueueUrl=resources["floor_queue_url"], MessageBody=body)

        warmup = 100
        events = [delivery(10_000_000 + i) for i in range(warmup + deliveries)]
        timings: dict[str, list[float]] = {"handler": [], "own": [], "floor": []}
        statuses: set[int] = set()
        real_stdout = sys.stdout
        try:
            for index, event in enumerate(events):
                sys.stdout = io.StringIO()  # Powertools prints EMF metrics: keep the cost, drop the text
                job_id = 10_000_000 + index
                measured: dict[str, float] = {}
                sides = ["handler", "floor"] if index % 2 else ["floor", "handler"]  # neither side always goes first
                for side in sides:
                    calls_before = handler_calls.total
                    started = time.perf_counter()
                    if side == "handler":
                        statuses.add(app.lambda_handler(event, context)["statusCode"])
                    else:
                        floor(job_id, event["body"])
                    measured[side] = time.perf_counter() - started
                    if side == "handler":
                        measured["own"] = measured[side] - (handler_calls.total - calls_before)
                if index >= warmup:
                    for side, seconds in measured.items():
                        timings[side].append(seconds * 1000)
                if index % 50 == 49:
                    # moto's SendMessage slows down as a queue grows (a real queue does not): empty the queues
                    # between timed calls so that no side measures moto's backlog.
                    for queue_url in (resources["queue_url"], resources["floor_queue_url"]):
                        floor_sqs.purge_queue(QueueUrl=queue_url)
        finally:
            sys.stdout = real_stdout
        if statuses != {200}:
            raise RuntimeError(f"unexpected statuses {statuses}")
        p50 = {side: percentile(values, 0.50) for side, values in timings.items()}
        p99 = {side: percentile(values, 0.99) for side, values in timings.items()}
        print(f"(b) warm: {deliveries} signed deliveries (a new job each, after {warmup} warm-up), interleaved with")
        print("    the floors; moto in server mode in its own process on 127.0.0.1")
        print("                                                     p50 ms    p99 ms")
        rows = [
            ("floor: PutItem + SendMessage", "floor"),
            ("webhook handler (claim, send)", "handler"),
            ("  of which outside botocore's send/receive", "own"),
        ]
        for label, side in rows:
            print(f"    {label:<46} {p50[side]:8.2f}  {p99[side]:8.2f}")
        print(
            f"    handler - floor:      p99 {p99['handler'] - p99['floor']:+.2f} ms (target <= +5 ms), "
            f"p50 {p50['handler'] - p50['floor']:+.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-runs", type=int, default=15, help="fresh interpreters per side (>= 10)")
    parser.add_argument("--deliveries", type=int, default=2000, help="measured warm deliveries (>= 2000)")
    parser.add_argument("--cold-only", action="store_true", help="measure the cold start only")
    args = parser.parse_args()
    cold_start(max(10, args.cold_runs))
    if not args.cold_only:
        print()
        warm(max(2000, args.deliveries))


if __name__ == "__main__":
    main()
