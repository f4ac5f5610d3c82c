"""X-Ray subsegments and annotations through Powertools' Tracer, for the functions that work behind the queues.

What a trace shows (the template turns on ``Tracing: Active`` for these functions):

- the handler (``## lambda_handler``, annotated ``ColdStart`` and ``Service`` by Powertools);
- one subsegment per record, annotated ``partner_id`` and ``kind`` (the event kind, or the queue message type);
- every AWS API call (botocore is patched: DynamoDB, SQS, S3, SNS, Secrets Manager, SSM, one subsegment each);
- every HTTP request to Kaltura (``Kaltura <service.action>``, one per attempt, annotated ``kaltura_action`` and
  ``http_status``). It is named by the action, never by its URL: a report download URL carries a KS. ``requests`` is
  not patched for the same reason. Responses are never recorded (they hold personal data).

Calls made from helper threads (the report download and upload threads) have no parent segment in that thread and
are not traced: the recorder is told to ignore that instead of logging an error per call.

Off outside Lambda (no ``LAMBDA_TASK_ROOT``: tests, the local stack, operator commands), under ``sam local`` and
when ``POWERTOOLS_TRACE_DISABLED`` is true: then every helper here is a no-op and the X-Ray SDK is not even
imported (its recorder builds a sampling client outside Lambda, about 0.4 s, and there is no daemon to send to).

The webhook has no Tracer: the X-Ray SDK and the botocore patch cost 20-35 ms of its cold start (measured: 8% of
the floor of ``benchmarks/webhook_bench.py`` in CPU time), which would take it past its target (<= 1.15x). Its
``Tracing: Active`` stays: the Lambda service itself records the invocation (initialisation, duration, errors) at
no cost to the function; only the subsegments of its two AWS writes are missing, and its logs and metrics carry
their outcome.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

Handler = TypeVar("Handler", bound=Callable[..., Any])

PATCHED_MODULES = ("botocore",)


def tracing_enabled() -> bool:
    """In Lambda (not ``sam local``), unless ``POWERTOOLS_TRACE_DISABLED`` says otherwise."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in {"1", "true", "yes", "on"}
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL") and not disabled


@functools.cache
def tracer() -> Tracer | None:
    """The process's Tracer (botocore patched), or ``None`` when tracing is off. Built once, on first use."""
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    built = Tracer(patch_modules=PATCHED_MODULES)
    built.provider.configure(context_missing="IGNORE_ERROR")  # type: ignore[attr-defined]
    return built


def capture_lambda_handler(handler: Handler) -> Handler:
    """Trace ``handler`` (without recording its response or error details) when tracing is on."""
    active = tracer()
    if active is None:
        return handler
    return active.capture_lambda_handler(handler, capture_response=False, capture_error=False)  # type: ignore[return-value]


@contextlib.contextmanager
def subsegment(name: str, **annotations: str | int | bool) -> Iterator[None]:
    """A subsegment ``name`` with ``annotations`` around the block (nothing when tracing is off)."""
    active = tracer()
    if active is None:
        yield
        return
    with active.provider.in_subsegment(name=name) as entity:
        for key, value in annotations.items():
            entity.put_annotation(key, value)  # type: ignore[arg-type]  # an int is a numbers.Number at run time
        yield


def annotate(**annotations: str | int | bool) -> None:
    """Annotate the current subsegment (nothing when tracing is off)."""
    active = tracer()
    if active is None:
        return
    for key, value in annotations.items():
        active.put_annotation(key, value)  # type: ignore[arg-type]  # likewise
