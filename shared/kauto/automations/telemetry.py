"""Structured logs and EMF metrics for the automations (Powertools), shared with the functions' decorators.

Log ids and counts only: entry ids, task ids, partner ids, decision reasons. Never a KS, a secret, a whole event or
anything that can be personal data (entry names, user ids, e-mail addresses).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from kauto.metrics import InvocationMetrics

logger = Logger()
metrics = InvocationMetrics()
"""Wrap each handler in ``metrics.log_metrics``: the counts of an invocation are written once, at its end."""


def count(metric: str, value: int = 1, **dimensions: str) -> None:
    """Count ``value`` of ``metric`` with ``dimensions`` (their own values: they never leak to other counts)."""
    metrics.count(metric, value, **dimensions)
