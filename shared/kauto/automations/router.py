"""One entry point for every queued event: route it to its automation and classify failures in one place.

What happens to an error decides whether the SQS record is retried:

- **Retry** (raised, so the record fails, comes back after the visibility timeout and, after ``maxReceiveCount``
  tries, waits in the dead-letter queue): :class:`RetryLaterError`, retryable Kaltura errors (transport, 5xx,
  ``ACTION_BLOCKED``, ``ENTRY_NOT_READY``, out of invocation time), AWS errors (``DependencyUnavailableError``),
  configuration errors (``ConfigError``: nothing can succeed until an operator fixes the setting; the messages wait
  in the dead-letter queue, whose alarm alerts, and can be redriven), malformed messages, and anything unexpected.
- **Recorded, not retried**: permanent Kaltura errors the automations did not handle themselves (permission, invalid
  request, protocol). They are written to the ledger (``pk=failure#<pid>``), counted, logged without personal data,
  alerted once per (event kind, object, error code), and the record succeeds.
- **Done**: an ``ALREADY_DONE`` Kaltura error means the side effect exists.

Automations record their own domain outcomes (a skipped entry, a credit problem, a rejected order) and return.

An entry-ready event runs the caption decision first and then, for a meeting recording (the configured admin tag),
the session reports. Both are idempotent: when the first raises, the retry runs both again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from kauto.automations import captions, recordings, sessions, tasks
from kauto.automations.deps import AutomationDeps
from kauto.automations.errors import MalformedEventError
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, Severity
from kauto.errors import ConfigError
from kauto.kaltura import Disposition, KalturaAPIError, KalturaError, KalturaNotFoundError
from kauto.models import EventKind, KalturaEvent

FAILURE_TTL_SECONDS = 35 * 24 * 3600
"""Failure records outlive the queue's retention plus a redrive from the dead-letter queue."""


class RouteOutcome(StrEnum):
    """How an event ended (when it did not raise)."""

    HANDLED = "handled"
    IGNORED = "ignored"
    """A kind no automation acts on."""
    ALREADY_DONE = "already_done"
    FAILED_PERMANENTLY = "failed_permanently"
    """Recorded and alerted; retrying would not help."""


def handle_event(event: KalturaEvent, deps: AutomationDeps) -> RouteOutcome:
    """Run the automation for ``event``'s kind. Raises what must be retried (see the module docstring)."""
    route = _ROUTES.get(event.kind)
    if route is None:
        count("EventIgnored", kind=event.kind.value)
        return RouteOutcome.IGNORED
    try:
        route(event, deps)
    except KalturaError as error:
        if isinstance(error, ConfigError) or error.retryable:
            raise
        if error.disposition is Disposition.ALREADY_DONE:
            return RouteOutcome.ALREADY_DONE
        record_permanent_failure(event, error, deps)
        return RouteOutcome.FAILED_PERMANENTLY
    return RouteOutcome.HANDLED


def record_permanent_failure(event: KalturaEvent, error: KalturaError, deps: AutomationDeps) -> None:
    """Ledger record, metric, log and (once per kind, object and code) an alert for a permanent failure."""
    code = error.code if isinstance(error, KalturaAPIError) else type(error).__name__
    object_id = event.object_id or event.entry_id or "-"
    deps.ledger.put(
        f"failure#{event.partner_id}",
        f"{event.kind.value}#{object_id}#{event.dedupe_key}",
        {
            "kind": event.kind.value,
            "object_id": object_id,
            "entry_id": event.entry_id,
            "error": type(error).__name__,
            "code": code,
            "failed_at": int(deps.clock()),
        },
        ttl_seconds=FAILURE_TTL_SECONDS,
    )
    count("AutomationPermanentFailure", kind=event.kind.value)
    logger.error(
        "automation failed permanently",
        extra={"partner_id": event.partner_id, "kind": event.kind.value, "object_id": object_id, "code": code},
    )
    alert = Alert(
        rule="automation_failed",
        severity=Severity.WARNING,
        partner_id=event.partner_id,
        subject=f"Kaltura partner {event.partner_id}: {event.kind.value} for {object_id} failed ({code})",
        summary=(
            f"Kaltura refused a call the {event.kind.value} automation needs ({code}). Retrying will not help; "
            "check the partner's permissions and configuration."
        ),
        details={"kind": event.kind.value, "object_id": object_id, "entry_id": event.entry_id, "code": code},
    )
    deps.alerts.publish(alert, dedupe_key=f"{event.kind.value}:{object_id}:{code}")


def _entry_ready(event: KalturaEvent, deps: AutomationDeps) -> None:
    entry_id = event.entry_id or event.object_id
    if not entry_id:
        raise MalformedEventError("entry_id", "an entry_ready event needs the entry id")
    try:
        # The webhook snapshot can be stale or late (docs/kaltura.md#recognising-events): act on the entry as it is now.
        entry = deps.kaltura(event.partner_id).entries.get(entry_id)
    except KalturaNotFoundError:
        count("EntryGone")
        logger.info("entry deleted before it was handled", extra={"partner_id": event.partner_id, "entry_id": entry_id})
        return
    captions.order_captions(event, entry, deps)
    meeting_tag = deps.config.partner(event.partner_id).session_reports.meeting_admin_tag
    if entry.is_ready and meeting_tag.lower() in captions.split_tags(entry.admin_tags):
        recordings.handle_meeting_recording_ready(event, entry, deps)


def _vendor_task_status(event: KalturaEvent, deps: AutomationDeps) -> None:
    tasks.handle_task_status(event, deps)


def _session_ended(event: KalturaEvent, deps: AutomationDeps) -> None:
    sessions.pull_session_reports(event, deps)


_ROUTES: Mapping[EventKind, Callable[[KalturaEvent, AutomationDeps], None]] = {
    EventKind.ENTRY_READY: _entry_ready,
    EventKind.VENDOR_TASK_STATUS: _vendor_task_status,
    EventKind.SESSION_ENDED: _session_ended,
}
