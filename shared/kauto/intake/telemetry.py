"""Structured logs and EMF metrics for the webhook intake (Powertools), shared with the handler's decorators.

Correlation keys are the partner id and Kaltura's job id. Bodies, headers, signatures, secrets, KS values and
e-mail addresses are never logged.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from kauto.metrics import InvocationMetrics

logger = Logger()
metrics = InvocationMetrics()
"""The webhook handler is wrapped in ``metrics.log_metrics``: one EMF document per delivery."""

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
    """Count one ``metric`` with ``dimensions``; written with the delivery's other counts when the handler returns."""
    metrics.count(metric, 1, **dimensions)
