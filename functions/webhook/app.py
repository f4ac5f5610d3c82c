"""Webhook function: Kaltura HTTP event notifications via API Gateway (``POST /kaltura/notifications/{partnerId}``).

Thin by design: all checks, the error-to-status table and the exactly-once enqueue live in :mod:`kauto.intake`.
One EMF document per delivery (``metrics.log_metrics``). No X-Ray Tracer here, only Lambda's own trace segments:
the SDK's import would spend the cold-start budget (see :mod:`kauto.tracing`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from kauto.intake.service import respond
from kauto.intake.telemetry import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one notification: 200 once enqueued (or a known duplicate), otherwise the mapped 4xx/5xx."""
    response = respond(event, remaining_seconds=context.get_remaining_time_in_millis() / 1000)
    return response.to_api_gateway()
