"""Structured logs and EMF metrics for the automations (Powertools), shared with the functions' decorators.

Log ids and counts only: entry ids, task ids, partner ids, decision reasons. Never a KS, a secret, a whole event or
anything that can be personal data (entry names, user ids, e-mail addresses).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()

_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "KalturaAutomations"


def count(metric: str, value: int = 1, **dimensions: str) -> None:
    """Emit ``value`` counts of ``metric`` with ``dimensions`` as its own EMF document.

    Each call is a separate metric object, so dimensions never leak between records or threads.
    """
    with single_metric(name=metric, unit=MetricUnit.Count, value=value, namespace=_NAMESPACE) as emitted:
        for name, dimension in dimensions.items():
            emitted.add_dimension(name=name, value=dimension)
