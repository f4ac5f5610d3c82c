"""Structured logs and EMF metrics for the automations (Powertools), shared with the worker's decorators.

Log ids and counts only: entry ids, task ids, partner ids, decision reasons. Never a KS, a secret, a whole event or
anything that can be personal data (entry names, user ids, e-mail addresses).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "KalturaAutomations")


def count(metric: str, value: int = 1, **dimensions: str) -> None:
    """Emit ``value`` counts of ``metric`` with ``dimensions``, flushed at once as its own EMF document.

    Flushing per call keeps one record's dimensions from leaking into the next record's metrics.
    """
    for name, dimension in dimensions.items():
        metrics.add_dimension(name, dimension)
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
