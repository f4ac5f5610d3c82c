"""The webhook intake: verify, parse, normalize, dedupe, enqueue, and answer Kaltura.

Order of checks (each before any work the next one needs): size (413) -> partner id in the path (404) -> control
bytes (400) -> partner's secret (404 if unknown) -> signature (401) -> body format (415/400) -> body's partner
(403) -> dedupe + enqueue. A 200 is only returned once SQS has accepted the message or the job is a known
duplicate; Kaltura treats anything but 200/204 as "retry" (PROTOCOL.md §2.3).

Decisions:
- Events of kind ``other`` (authentic, but nothing consumes them: other templates, non-ready entries, empty
  bodies from templates without data) answer 200 and are counted, but are not enqueued. A 4xx would only make
  Kaltura retry something no retry can change; the metric and a log line tell operators a template is wired to
  more than we use.
- An empty body is what a stock template without ``data`` sends (PROTOCOL.md §1.2). Its signature is checked like
  any other; it is then ignored as ``other`` with reason ``empty_body`` and logged as a warning, since the template
  needs ObjectData configured to be useful.
- Dedupe key: partner + ``eventNotificationJobId`` (stable across Kaltura's retries). Bodies without it (DataFields,
  text) use a sha256 of their sorted parameters: a retry resends the same content, and the same content arriving
  again within the 8-day retention is treated as a duplicate too.
- Races: a claim carries a lease of the invocation's remaining run time (+5 s). A delivery that finds a live claim
  waits up to ``WEBHOOK_CLAIM_WAIT_SECONDS`` for it to become ``enqueued`` (200 duplicate) or disappear (claim it),
  else answers 503 so Kaltura retries; a claim whose lease ran out belongs to a dead invocation and is taken over.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from kauto.aws.dedupe import ClaimResult, ClaimState, DynamoDedupeStore
from kauto.aws.queue import SqsEventQueue
from kauto.config import PartnerConfig, WebhookSettings, partner_directory
from kauto.errors import DedupeStoreUnavailableError, KautoError, QueueUnavailableError
from kauto.intake.errors import ClaimInProgressError, UnknownPartnerError, status_for
from kauto.intake.normalize import normalize
from kauto.intake.parsing import parse_body
from kauto.intake.request import WebhookRequest, request_from_api_gateway
from kauto.intake.signature import verify_signature
from kauto.intake.telemetry import count, logger, reset_correlation
from kauto.models import BodyFormat, EventKind, KalturaEvent

CLAIM_POLL_INTERVAL_SECONDS = 0.02


class PartnerLookup(Protocol):
    """Finds a partner's configuration (see :class:`kauto.config.PartnerDirectory`)."""

    def get(self, partner_id: int) -> PartnerConfig | None: ...


class EventQueue(Protocol):
    """Durably accepts events (see :class:`kauto.aws.queue.SqsEventQueue`)."""

    def send(self, event: KalturaEvent) -> str: ...


class DedupeStore(Protocol):
    """Claims dedupe keys (see :class:`kauto.aws.dedupe.DynamoDedupeStore`)."""

    def try_claim(self, key: str, *, now: float, lease_seconds: float) -> ClaimResult: ...

    def mark_enqueued(self, key: str, token: str, *, message_id: str, now: float) -> bool: ...

    def release(self, key: str, token: str) -> bool: ...


class Outcome(StrEnum):
    """What happened to a delivery."""

    ACCEPTED = "accepted"
    """Enqueued now."""
    DUPLICATE = "duplicate"
    """Already enqueued by an earlier delivery of the same job."""
    IGNORED = "ignored"
    """Authentic, but of a kind nothing consumes."""
    REJECTED = "rejected"
    """Not taken: the request is wrong (4xx)."""
    FAILED = "failed"
    """Not taken: we could not take it right now or are misconfigured (5xx)."""


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """The answer to one delivery."""

    status_code: int
    outcome: Outcome
    reason: str | None = None
    kind: EventKind | None = None
    dedupe_key: str | None = None
    message: str | None = None

    def to_api_gateway(self) -> dict[str, Any]:
        """HTTP API (payload 2.0) response; the short JSON body ends up in Kaltura's job log."""
        body: dict[str, str] = {"outcome": self.outcome.value}
        for name in ("reason", "kind", "dedupe_key", "message"):
            value = getattr(self, name)
            if value is not None:
                body[name] = str(value)
        return {
            "statusCode": self.status_code,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(body, separators=(",", ":")),
        }


class WebhookIntake:
    """Processes verified Kaltura notifications into the events queue, exactly once per Kaltura job."""

    def __init__(
        self,
        *,
        partners: PartnerLookup,
        queue: EventQueue,
        dedupe: DedupeStore,
        claim_wait_seconds: float = 0.3,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._partners = partners
        self._queue = queue
        self._dedupe = dedupe
        self._claim_wait = claim_wait_seconds
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._sleep = sleep

    def process(self, request: WebhookRequest) -> WebhookResponse:
        """Verify, normalize and enqueue one delivery. Raises the typed errors mapped in :mod:`kauto.intake.errors`."""
        partner_id = request.partner_id
        logger.append_keys(partner_id=partner_id)
        request.reject_control_bytes()
        partner = self._partners.get(partner_id)
        if partner is None:
            raise UnknownPartnerError("unknown_partner", "unknown partner")
        verify_signature(request.body, request.headers, partner)
        parsed = parse_body(request.body)
        event = normalize(parsed, partner_id=partner_id, received_at=request.received_at)
        logger.append_keys(
            job_id=event.job_id,
            kind=event.kind.value,
            dedupe_key=event.dedupe_key,
            body_format=event.body_format.value,
            object_id=event.object_id,
            entry_id=event.entry_id,
        )
        logger.set_correlation_id(str(event.job_id) if event.job_id is not None else event.dedupe_key)
        if event.kind is EventKind.OTHER:
            reason = "empty_body" if event.body_format is BodyFormat.EMPTY else "not_acted_on"
            return WebhookResponse(200, Outcome.IGNORED, reason=reason, kind=event.kind, dedupe_key=event.dedupe_key)
        return self._enqueue_once(event, request.lease_seconds)

    def _enqueue_once(self, event: KalturaEvent, lease_seconds: float) -> WebhookResponse:
        key = event.dedupe_key
        deadline = self._monotonic() + self._claim_wait
        while True:
            claim = self._dedupe.try_claim(key, now=self._wall_clock(), lease_seconds=lease_seconds)
            if claim.token is not None:
                token = claim.token
                break
            if claim.existing is ClaimState.ENQUEUED:
                return WebhookResponse(200, Outcome.DUPLICATE, kind=event.kind, dedupe_key=key)
            # Another delivery of this job is between its claim and its send: give it a moment to finish.
            if self._monotonic() >= deadline:
                raise ClaimInProgressError("claim_in_progress", "the same notification is being processed; retry")
            self._sleep(CLAIM_POLL_INTERVAL_SECONDS)
        try:
            message_id = self._queue.send(event)
        except QueueUnavailableError:
            self._release(key, token)
            raise
        self._mark_enqueued(key, token, message_id)
        return WebhookResponse(200, Outcome.ACCEPTED, kind=event.kind, dedupe_key=key)

    def _release(self, key: str, token: str) -> None:
        # Without the claim row Kaltura's retry is treated as new. If the delete fails too, the claim's lease runs
        # out before Kaltura's next attempt (~60 s later, PROTOCOL.md §2.3) and that attempt takes it over.
        try:
            self._dedupe.release(key, token)
        except DedupeStoreUnavailableError:
            logger.warning("could not release the dedupe claim after a failed send", exc_info=True)

    def _mark_enqueued(self, key: str, token: str, message_id: str) -> None:
        # The message is in the queue: whatever happens here, the answer is 200 (raising now would make Kaltura
        # resend an event we already have). A row left pending only costs a duplicate message after its lease, and
        # the workers are idempotent.
        try:
            marked = self._dedupe.mark_enqueued(key, token, message_id=message_id, now=self._wall_clock())
        except DedupeStoreUnavailableError:
            marked = False
        if not marked:
            logger.warning("dedupe row not marked enqueued; a redelivery may enqueue a duplicate")
            count("DedupeMarkFailed")


@functools.cache
def webhook_intake() -> WebhookIntake:
    """The process-wide intake wired to AWS from the environment (``WebhookSettings``), built on first use.

    Built inside :func:`respond`, so a missing setting becomes a 500 answer rather than an unhandled error.
    """
    settings = WebhookSettings.from_env()
    return WebhookIntake(
        partners=partner_directory(settings.partner_secrets_arn),
        queue=SqsEventQueue(settings.events_queue_url),
        dedupe=DynamoDedupeStore(settings.dedupe_table),
        claim_wait_seconds=settings.claim_wait_seconds,
    )


def respond(
    event: Mapping[str, Any],
    *,
    remaining_seconds: float | None = None,
    intake: Callable[[], WebhookIntake] = webhook_intake,
) -> WebhookResponse:
    """Answer one API Gateway event: run the intake and map any typed error to its HTTP status (one table).

    Errors that are not mapped (bugs) propagate, so Lambda reports them and Kaltura retries.
    """
    reset_correlation()
    try:
        request = request_from_api_gateway(event, now=time.time(), remaining_seconds=remaining_seconds)
        response = intake().process(request)
    except KautoError as error:
        mapped = status_for(error)
        if mapped is None:
            raise
        status, reason = mapped
        outcome = Outcome.REJECTED if status < 500 else Outcome.FAILED
        message = getattr(error, "message", None) or ("temporarily unavailable" if status == 503 else "server error")
        response = WebhookResponse(status, outcome, reason=reason, message=message)
        if status >= 500:
            logger.error("notification not taken", extra={"status": status, "reason": reason}, exc_info=True)
        else:
            logger.warning("notification rejected", extra={"status": status, "reason": reason})
        count("NotificationFailed" if status >= 500 else "NotificationRejected", reason=reason)
        return response
    _log_and_count(response)
    return response


def _log_and_count(response: WebhookResponse) -> None:
    kind = response.kind.value if response.kind is not None else EventKind.OTHER.value
    if response.outcome is Outcome.IGNORED:
        if response.reason == "empty_body":
            logger.warning("empty notification ignored: the Kaltura template has no data configured")
        else:
            logger.info("notification ignored", extra={"reason": response.reason})
        count("NotificationIgnored", reason=response.reason or "not_acted_on")
        return
    logger.info(f"notification {response.outcome.value}", extra={"status": response.status_code})
    metric = "NotificationAccepted" if response.outcome is Outcome.ACCEPTED else "NotificationDuplicate"
    count(metric, kind=kind)
