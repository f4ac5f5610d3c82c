"""Re-run asynchronous invocations that failed every attempt, from their on-failure queue
(docs/architecture.md#async-invocations).

When a scheduled function (the sweep, the weekly scheduler) raises on every attempt, Lambda sends an invocation record
to the function's on-failure queue: the ``requestPayload`` it was invoked with, the error, how often it tried. The
replay invokes the function again, asynchronously as the schedule did, with that payload, and deletes the record
**only after** Lambda accepted the invocation (202). If the re-run fails too, Lambda retries it and a new record
arrives in the same queue (and its alarm fires again). Both functions are idempotent: runs are claimed per (partner,
week) and the sweep repeats nothing it already did, so a record replayed twice is harmless.

A dry run lists the records and makes them visible again at once. Records written after the replay started (a re-run
that failed again) are left for the next replay, so a replay always ends.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from kauto.aws.clients import aws_client, sqs_client
from kauto_ops.stack import OpsError, describe_stack

SQS_BATCH = 10
RECEIVE_WAIT_SECONDS = 1
REPLAY_VISIBILITY_SECONDS = 120
"""How long a record being replayed stays hidden: enough for one invoke and one delete."""

# --function -> (function, its on-failure queue) as logical ids of the template.
FAILED_INVOCATION_QUEUES: dict[str, tuple[str, str]] = {
    "sweep": ("SweepFunction", "SweepFailedInvocationsQueue"),
    "weekly-scheduler": ("WeeklySchedulerFunction", "WeeklySchedulerFailedInvocationsQueue"),
}


@dataclass(frozen=True, slots=True)
class FailedInvocation:
    """What a listing shows of one record: the request, why it failed, and how often Lambda tried."""

    request_id: str
    condition: str
    attempts: int
    error_type: str
    payload: Any
    written: datetime | None = None
    """When Lambda wrote the record (its ``timestamp``)."""


@dataclass(slots=True)
class FailedInvocationReplay:
    dry_run: bool
    records: list[FailedInvocation] = field(default_factory=list)


def parse_record(body: str) -> tuple[FailedInvocation, str]:
    """A record Lambda sent to an on-failure destination, and the ARN of the function it names.

    :class:`OpsError` when the body is not such a record (it is then left in the queue).
    """
    try:
        record = json.loads(body)
        context = record["requestContext"]
        function_arn = str(context["functionArn"])
        payload = record["requestPayload"]
    except (ValueError, KeyError, TypeError) as error:
        raise OpsError(f"not a Lambda invocation record ({type(error).__name__}); left in the queue") from error
    response = record.get("responsePayload") if isinstance(record.get("responsePayload"), Mapping) else {}
    return (
        FailedInvocation(
            request_id=str(context.get("requestId", "")),
            condition=str(context.get("condition", "")),
            attempts=int(context.get("approximateInvokeCount", 0)),
            error_type=str(response.get("errorType", "")),
            payload=payload,
            written=_timestamp(record.get("timestamp")),
        ),
        function_arn,
    )


def replay_failed_invocations(
    sqs: Any,
    lambda_client: Any,
    *,
    queue_url: str,
    function_name: str,
    max_records: int | None = None,
    dry_run: bool = False,
    wait_seconds: int = RECEIVE_WAIT_SECONDS,
    now: datetime | None = None,
) -> FailedInvocationReplay:
    """Re-invoke ``function_name`` (asynchronously) with the payload of up to ``max_records`` records (all when
    ``None``) of ``queue_url``.

    Records written after the replay started (``now``), such as those of re-runs that failed again, are left for the
    next replay. Records of another function and bodies that are no record are refused (:class:`OpsError`) and left
    in the queue; every record received and not replayed is made visible again before returning.
    """
    started = now or datetime.now(UTC)
    result = FailedInvocationReplay(dry_run)
    seen: set[str] = set()
    hidden: dict[str, str] = {}  # message id -> receipt of what was received and is still in the queue
    try:
        while max_records is None or len(result.records) < max_records:
            wanted = SQS_BATCH if max_records is None else min(SQS_BATCH, max_records - len(result.records))
            messages = _call(
                "ReceiveMessage",
                sqs.receive_message,
                QueueUrl=queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                hidden[message["MessageId"]] = message["ReceiptHandle"]
                record, function_arn = parse_record(message["Body"])
                if _function_name(function_arn) != _function_name(function_name):
                    raise OpsError(
                        f"record {record.request_id} is of {function_arn}, not {function_name}; left in the queue"
                    )
                if record.written is not None and record.written >= started:
                    continue
                if not dry_run:
                    _reinvoke(lambda_client, function_name, record)
                    _call(
                        "DeleteMessage", sqs.delete_message, QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    del hidden[message["MessageId"]]
                result.records.append(record)
    finally:
        for receipt in hidden.values():
            _call(
                "ChangeMessageVisibility",
                sqs.change_message_visibility,
                QueueUrl=queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=0,
            )
    return result


def _reinvoke(lambda_client: Any, function_name: str, record: FailedInvocation) -> None:
    response = _call(
        "Invoke",
        lambda_client.invoke,
        FunctionName=function_name,
        InvocationType="Event",
        Payload=json.dumps(record.payload).encode(),
    )
    if response.get("StatusCode") != 202:
        raise OpsError(f"Lambda did not accept the re-run of {record.request_id}: {response.get('StatusCode')}")


def register(commands: Any) -> None:
    """Add ``replay-failed-invocations`` to an operator CLI's subparsers (``kauto-backfill``, ``kauto-ops``)."""
    replay = commands.add_parser(
        "replay-failed-invocations",
        help="re-run scheduled invocations that failed every attempt, from their on-failure queue",
        description=(
            "Read the Lambda invocation records in a function's on-failure queue, invoke the function again "
            "(asynchronously, as its schedule does) with each record's payload, and delete the record only after "
            "Lambda accepted the invocation. A re-run that fails again lands in the same queue."
        ),
    )
    replay.add_argument("--function", required=True, choices=sorted(FAILED_INVOCATION_QUEUES), help="which function")
    replay.add_argument("--max", type=_positive_int, metavar="N", help="replay at most N records (default: all)")
    replay.add_argument("--stack", metavar="NAME", help="the deployed CloudFormation stack (resources looked up)")
    replay.add_argument("--queue-url", help="on-failure queue URL (default: from the stack)")
    replay.add_argument("--function-name", help="function name or ARN (default: from the stack)")
    replay.add_argument("--dry-run", action="store_true", help="list the records, replay nothing")
    replay.set_defaults(command=run_replay_failed_invocations)


def run_replay_failed_invocations(args: argparse.Namespace, out: TextIO) -> int:
    function_id, queue_id = FAILED_INVOCATION_QUEUES[args.function]
    queue_url, function_name = args.queue_url, args.function_name
    if not (queue_url and function_name):
        if not args.stack:
            raise OpsError("pass --stack NAME (the deployed stack) or both --queue-url and --function-name")
        stack = describe_stack(aws_client("cloudformation"), args.stack)
        queue_url = queue_url or stack.resource(queue_id, option="--queue-url")
        function_name = function_name or stack.resource(function_id, option="--function-name")
    result = replay_failed_invocations(
        sqs_client(),
        aws_client("lambda"),
        queue_url=queue_url,
        function_name=function_name,
        max_records=args.max,
        dry_run=args.dry_run,
    )
    for record in result.records:
        out.write(
            f"{record.request_id}: {record.condition} after {record.attempts} attempt(s), {record.error_type}; "
            f"payload {json.dumps(record.payload, sort_keys=True)}\n"
        )
    verb = "would re-run" if args.dry_run else "re-ran"
    out.write(f"{verb} {len(result.records)} invocation(s) of {function_name}\n")
    return 0


def _timestamp(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _function_name(name_or_arn: str) -> str:
    """``my-fn`` from ``my-fn``, ``arn:...:function:my-fn`` or ``arn:...:function:my-fn:$LATEST``."""
    parts = name_or_arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else name_or_arn


def _call(operation: str, call: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        response: dict[str, Any] = call(**kwargs)
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        raise OpsError(f"{operation} failed: {code or type(error).__name__}") from error
    return response


def _positive_int(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)
