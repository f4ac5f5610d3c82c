"""Report worker function: consumes ReportJobsQueue (weekly job steps and digest requests), partial batch failures.

Thin by design: the job runner lives in :mod:`kauto.weekly.jobs`. Jobs handle Kaltura's transient failures
themselves (a delayed retry step); a record fails (and returns to the queue, then the dead-letter queue after
``maxReceiveCount`` tries) only for what needs the queue's retry or an operator: configuration errors, AWS outages
while recording progress, malformed messages, unexpected errors.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from kauto.automations.telemetry import count, logger
from kauto.weekly.deps import WeeklyDeps, build_weekly_deps
from kauto.weekly.jobs import handle_message

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Handle one SQS batch; returns ``{"batchItemFailures": [...]}`` naming the records to retry."""
    deps = build_weekly_deps(context)
    try:
        return process_partial_response(
            event=event,
            record_handler=lambda record: handle_record(record, deps),
            processor=processor,
            context=context,
        )
    finally:
        deps.audit.flush()  # one audit object per partner and day for the whole batch


def handle_record(record: SQSRecord, deps: WeeklyDeps) -> str:
    """Run one message; raises to fail (and retry) the record."""
    logger.append_keys(message_id=record.message_id)
    try:
        outcome = handle_message(record.body, deps)
    except Exception as error:
        # The error type and code only: Kaltura's messages are scrubbed, and message bodies are never logged.
        logger.warning(
            "record failed, it will be retried",
            extra={"error": type(error).__name__, "code": getattr(error, "code", None)},
        )
        count("ReportRecordFailed", error=type(error).__name__)
        raise
    finally:
        logger.remove_keys(["message_id"])
    logger.info("record handled", extra={"outcome": outcome.value})
    return outcome.value
