"""Sweep function: the scheduled reconciliation (EventBridge Scheduler, every 15 minutes by default).

Thin by design: the sweep itself lives in :mod:`kauto.automations.sweep`. A failure propagates: the schedule invokes
asynchronously, so Lambda retries it (EventInvokeConfig) and then sends the invocation record to the on-failure queue
(alarmed); watermarks only move for what was enqueued, so a retry misses nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from kauto.automations.deps import build_deps
from kauto.automations.sweep import run_sweep
from kauto.automations.telemetry import logger


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Sweep every configured partner once; returns the totals (partners, found, enqueued, checked)."""
    deps = build_deps(context)
    try:
        report = run_sweep(deps, int(deps.clock()), time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    finally:
        deps.audit.flush()
    return report.totals()
