"""Structured logs and EMF metrics for the webhook intake (Powertools), shared with the handler's decorators.

Correlation keys are the partner id and Kaltura's job id. Bodies, headers, signatures, secrets, KS values and
e-mail addresses are never logged.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "KalturaAutomations")

CORRELATION_KEYS = (
    "partner_id",
    "job_id",
    "kind",
    "dedupe_key",
    "body_format",
    "object_id",
    "entry_id",
    "correlation_id",
)


def reset_correlation() -> None:
    """Forget the previous delivery's correlation keys (the logger outlives invocations)."""
    logger.remove_keys(list(CORRELATION_KEYS))


def count(metric: str, **dimensions: str) -> None:
    """Emit one count of ``metric`` with ``dimensions``, flushed immediately as its own EMF document.

    Flushing per outcome keeps one delivery's dimensions from leaking into another's.
    """
    for name, value in dimensions.items():
        metrics.add_dimension(name, value)
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
