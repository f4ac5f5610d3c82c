"""Weekly scheduler function: EventBridge Scheduler (weekly, ``ScheduleTimezone``) starts each partner's run.

Thin by design: the fan-out lives in :mod:`kauto.weekly.scheduler`. The event is the schedule's input,
``{"partner_id"?: ..., "week"?: "YYYY-Www", "force"?: false}`` (``{}``: every configured partner, previous week).
A failure propagates: the schedule invokes asynchronously, so Lambda retries it (EventInvokeConfig) and then sends
the invocation record to the on-failure queue (alarmed; replayable); a retry starts nothing twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from kauto.automations.telemetry import logger
from kauto.weekly.deps import build_run_deps
from kauto.weekly.scheduler import ScheduleRequest, schedule_runs


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Start the requested weekly runs; returns the totals (partners, started, duplicate, jobs, ...)."""
    request = ScheduleRequest.from_event(event)
    report = schedule_runs(request, build_run_deps(), trigger=f"schedule:{context.aws_request_id}")
    totals = report.totals()
    logger.info("weekly runs scheduled", extra=totals)
    return totals
