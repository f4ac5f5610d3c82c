"""Lambda's asynchronous invoke, locally (docs/architecture.md#async-invocations): what happens when EventBridge
Scheduler (or anything invoking with ``InvocationType=Event``) invokes a function.

Lambda queues the event and runs the function; on a function error it retries (one minute before the second attempt,
two minutes before the third) up to the function's ``MaximumRetryAttempts``, unless the event got older than
``MaximumEventAgeInSeconds`` first; then it sends an invocation record to the ``OnFailure`` destination, or drops the
event when there is none. The settings are the function's EventInvokeConfig as the local stack created it in moto
from the translated template (Lambda's defaults, 2 retries and 6 hours, when it has none).

Here the attempts run one after the other without the waits: the retry schedule only decides whether the event's
age would have run out before an attempt (condition ``EventAgeExceeded``).
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.stack import LocalAwsStack, LocalFunction

DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 6 * 3600
RETRY_DELAYS_SECONDS = (60, 120)
"""Lambda waits one minute before the second attempt and two minutes before the third."""
LATEST = "$LATEST"


@dataclass(frozen=True, slots=True)
class AsyncInvokeConfig:
    """A function's EventInvokeConfig: retries, maximum event age, on-failure destination (an SQS queue URL)."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_seconds: int = DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
    on_failure_queue_url: str | None = None


@dataclass(frozen=True, slots=True)
class AsyncInvocation:
    """How one asynchronous invocation ended: the function's result, or the record sent to the on-failure queue
    (``record`` is set whenever every attempt failed; ``destination_message_id`` when it reached a queue)."""

    request_id: str
    attempts: int
    succeeded: bool
    result: Any = None
    record: Mapping[str, Any] | None = None
    destination_message_id: str | None = None
    error: BaseException | None = None
    """The last attempt's error (local callers tell an input the function refused from other failures)."""


class LocalAsyncInvoker:
    """Invokes functions of the local stack as Lambda's asynchronous invoke does (see the module docstring)."""

    def __init__(self, aws: LocalAwsStack, runtime: LocalLambdaRuntime) -> None:
        self._aws = aws
        self._runtime = runtime

    def config(self, function: LocalFunction) -> AsyncInvokeConfig:
        """The function's EventInvokeConfig as moto holds it (Lambda's defaults when it has none)."""
        lambda_client = self._aws.client("lambda")
        try:
            config = lambda_client.get_function_event_invoke_config(FunctionName=function.physical_name)
        except lambda_client.exceptions.ResourceNotFoundException:
            return AsyncInvokeConfig()
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        queue_url = None
        if destination:
            if ":sqs:" not in destination:
                raise NotImplementedError(f"on-failure destination {destination}: only SQS is emulated locally")
            queue_url = self._aws.client("sqs").get_queue_url(QueueName=destination.rsplit(":", 1)[-1])["QueueUrl"]
        return AsyncInvokeConfig(
            maximum_retry_attempts=int(config.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS)),
            maximum_event_age_seconds=int(config.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)),
            on_failure_queue_url=str(queue_url) if queue_url else None,
        )

    def invoke(self, logical_id: str, payload: Mapping[str, Any]) -> AsyncInvocation:
        """Run the function with ``payload``, retrying as configured; park the record of a failure."""
        function = self._aws.functions[logical_id]
        config = self.config(function)
        request_id = str(uuid.uuid4())
        event = json.loads(json.dumps(payload))  # what Lambda stores: the JSON payload, not a live object
        attempts, age = 0, 0
        while True:
            attempts += 1
            try:
                result = self._runtime.invoke(logical_id, json.loads(json.dumps(event)), request_id=request_id)
            except Exception as error:  # any unhandled error is a function error to Lambda
                failure = error
            else:
                return AsyncInvocation(request_id, attempts, succeeded=True, result=result)
            if attempts > config.maximum_retry_attempts:
                condition = "RetriesExhausted"
                break
            age += RETRY_DELAYS_SECONDS[min(attempts, len(RETRY_DELAYS_SECONDS)) - 1]
            if age > config.maximum_event_age_seconds:
                condition = "EventAgeExceeded"
                break
        record = failure_record(function, request_id, event, failure, condition=condition, attempts=attempts)
        message_id = None
        if config.on_failure_queue_url:
            sent = self._aws.client("sqs").send_message(
                QueueUrl=config.on_failure_queue_url, MessageBody=json.dumps(record)
            )
            message_id = str(sent["MessageId"])
        return AsyncInvocation(
            request_id, attempts, succeeded=False, record=record, destination_message_id=message_id, error=failure
        )


class LocalLambdaClient:
    """The ``invoke`` of a boto3 Lambda client for the local stack's functions (by name or ARN, ``$LATEST``).

    ``InvocationType="Event"`` goes through :class:`LocalAsyncInvoker` and answers 202 as Lambda does; operator
    commands written against boto3 (the replay of on-failure records) run unchanged against the local stack.
    """

    def __init__(self, aws: LocalAwsStack, invoker: LocalAsyncInvoker) -> None:
        self._aws = aws
        self._invoker = invoker
        self.invocations: list[AsyncInvocation] = []

    def invoke(
        self, *, FunctionName: str, InvocationType: str = "RequestResponse", Payload: bytes | str = b"{}"
    ) -> dict[str, Any]:
        if InvocationType != "Event":
            raise NotImplementedError("the local Lambda client emulates asynchronous invocations only")
        name = FunctionName.removesuffix(f":{LATEST}").rsplit(":", 1)[-1]
        (function,) = [f for f in self._aws.functions.values() if f.physical_name == name]
        self.invocations.append(self._invoker.invoke(function.logical_id, json.loads(Payload or b"{}")))
        return {"StatusCode": 202}


def failure_record(
    function: LocalFunction, request_id: str, payload: Any, error: BaseException, *, condition: str, attempts: int
) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination after a function error."""
    now = datetime.now(UTC)
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function.arn}:{LATEST}",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": LATEST, "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": _function_stack(error, function.code_dir),
        },
    }


def _function_stack(error: BaseException, code_dir: Path) -> list[str]:
    # Lambda's Python runtime reports the frames from the handler down, not the runtime's own.
    frames = traceback.extract_tb(error.__traceback__)
    start = next((i for i, frame in enumerate(frames) if Path(frame.filename).parent == code_dir), 0)
    return traceback.format_list(frames[start:])
