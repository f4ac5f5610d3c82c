"""The webhook intake: verify, parse, normalize, dedupe, enqueue, and answer Kaltura.

Order of checks (each before any work the next one needs): size (413) -> partner id in the path (404) -> control
bytes (400) -> partner's secret (404 if unknown) -> signature (401) -> body format (415/400) -> body's partner
(403) -> dedupe + enqueue. A 200 is only returned once SQS has accepted the message or the job is a known
duplicate; Kaltura treats anything but 200/204 as "retry" (docs/kaltura.md#delivery-and-retries).

Decisions:
- Events of kind ``other`` (authentic, but nothing consumes them: other templates, non-ready entries, empty
  bodies from templates without data) answer 200 and are counted, but are not enqueued. A 4xx would only make
  Kaltura retry something no retry can change; the metric and a log line tell operators a template is wired to
  more than we use.
- An empty body is what a stock template without ``data`` sends (docs/kaltura.md#webhook-bodies). Its signature is
  checked like any other; it is then ignored as ``other`` with reason ``empty_body`` and logged as a warning, since the
  template needs ObjectData configured to be useful.
- Dedupe key: partner + ``eventNotificationJobId`` (stable across Kaltura's retries). Bodies without it (DataFields,
  text) use a sha256 of their sorted parameters: a retry resends the same content, and the same content arriving
  again within the 8-day retention is treated as a duplicate too.
- Exactly once, in two writes (:mod:`kauto.aws.dedupe`): a conditional put claims the key, then SendMessage; 200.
  A delivery that finds the key claimed is a duplicate: 200, nothing enqueued. If the send fails (any error, or no
  answer before the invocation's deadline) the delivery deletes its own claim and answers 503, so Kaltura's retry
  (~60 s later, docs/kaltura.md#delivery-and-retries) claims and sends afresh. A claim that fails or times out is
  released the same way, since its write may have landed anyway.
- Both writes run on a worker thread under a deadline taken from the invocation's remaining time, keeping
  :data:`RELEASE_RESERVE_SECONDS` back to undo the claim and answer (:mod:`kauto.intake.deadline`). A stalled
  queue or table thus yields release + 503 rather than a Lambda timeout that would leave the claim behind. The
  abandoned writes carry on in the background: a send that still completes means Kaltura's retry enqueues the event
  a second time (a duplicate message, which the idempotent workers absorb, never a lost event).

Residual risk, accepted: a claim can exist without a message, after which Kaltura's later attempts of that job are
answered as duplicates and nothing enqueues the event. That happens only when
- the process dies between the claim and the send (hard crash, out of memory: nothing can run to release it);
- the send fails and deleting the claim fails too (logged as an error and counted as ``DedupeReleaseFailed``);
- writes abandoned at the deadline land the claim after its release (botocore keeps retrying in the background,
  e.g. once a network stall clears) and then fail to send; if the send succeeds, the event is simply enqueued.
The scheduled sweep (ready entries without a caption decision, open REACH tasks, ended sessions not yet pulled)
recovers such an event's effect. There is no lease and no waiting on "claimed but not yet sent": Kaltura never has
two attempts of one job in flight (it retries only after an attempt failed, docs/kaltura.md#delivery-and-retries), so a
same-key delivery inside another's claim-to-send window only comes from other paths (a manual replay, identical
DataFields content). Answering it as a duplicate loses nothing: the first delivery either enqueues, or releases its
claim and answers 503, and Kaltura retries that one.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from kauto.aws.dedupe import DynamoDedupeStore
from kauto.aws.queue import SqsEventQueue
from kauto.config import PartnerConfig, WebhookSettings, partner_directory
from kauto.errors import DedupeStoreUnavailableError, KautoError, QueueUnavailableError
from kauto.intake.deadline import DeadlineExceededError, call_before
from kauto.intake.errors import UnknownPartnerError, status_for
from kauto.intake.normalize import normalize
from kauto.intake.parsing import parse_body
from kauto.intake.request import WebhookRequest, request_from_api_gateway
from kauto.intake.signature import verify_signature
from kauto.intake.telemetry import count, logger, reset_correlation
from kauto.models import BodyFormat, EventKind, KalturaEvent

RELEASE_RESERVE_SECONDS = 1.5
"""Kept back from the invocation's remaining time: the claim and the send must be done by then, so that a failed or
stalled send still leaves time to delete the claim and answer 503."""

_ANSWER_MARGIN_SECONDS = 0.3
"""Kept back from the release: returning the answer must not be what runs into the Lambda timeout."""


class PartnerLookup(Protocol):
    """Finds a partner's configuration (see :class:`kauto.config.PartnerDirectory`)."""

    def get(self, partner_id: int) -> PartnerConfig | None: ...


class EventQueue(Protocol):
    """Durably accepts events (see :class:`kauto.aws.queue.SqsEventQueue`)."""

    def send(self, event: KalturaEvent) -> str: ...


class DedupeStore(Protocol):
    """Claims dedupe keys (see :class:`kauto.aws.dedupe.DynamoDedupeStore`)."""

    def claim(self, key: str, token: str, *, now: float) -> bool: ...

    def release(self, key: str, token: str) -> bool: ...


class Outcome(StrEnum):
    """What happened to a delivery."""

    ACCEPTED = "accepted"
    """Enqueued now."""
    DUPLICATE = "duplicate"
    """An earlier delivery of the same job holds the dedupe claim (its message is queued, or being sent)."""
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
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._partners = partners
        self._queue = queue
        self._dedupe = dedupe
        self._wall_clock = wall_clock
        self._monotonic = monotonic

    def process(self, request: WebhookRequest) -> WebhookResponse:
        """Verify, normalize and enqueue one delivery. Raises the typed errors mapped in :mod:`kauto.intake.errors`."""
        deadline = self._monotonic() + request.remaining_seconds
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
        return self._enqueue_once(event, deadline)

    def _enqueue_once(self, event: KalturaEvent, deadline: float) -> WebhookResponse:
        key = event.dedupe_key
        token = uuid.uuid4().hex
        progress: list[str] = []  # steps the worker thread has finished, read when it misses the deadline

        def claim_and_send() -> bool:
            if not self._dedupe.claim(key, token, now=self._wall_clock()):
                return False
            progress.append("claimed")
            self._queue.send(event)
            return True

        try:
            # One worker-thread hop for both writes: the deadline costs a thread handoff per delivery, not two.
            accepted = call_before(deadline - RELEASE_RESERVE_SECONDS, self._monotonic, claim_and_send)
        except DeadlineExceededError as exc:
            # Abandoned, the worker may still claim and send later: releasing now keeps Kaltura's retry working.
            self._release(key, token, deadline)
            if progress:
                raise QueueUnavailableError("sqs", "SendMessage", str(exc)) from exc
            raise DedupeStoreUnavailableError("dynamodb", "PutItem", str(exc)) from exc
        except Exception:
            # A failed send, or a failed put that may have landed anyway (DynamoDB wrote, the answer was lost).
            self._release(key, token, deadline)
            raise
        outcome = Outcome.ACCEPTED if accepted else Outcome.DUPLICATE
        return WebhookResponse(200, outcome, kind=event.kind, dedupe_key=key)

    def _release(self, key: str, token: str, deadline: float) -> None:
        # Without our claim row Kaltura's retry is treated as new. A row that cannot be deleted makes every later
        # attempt of this job a duplicate: only the sweep can then recover the event, hence an error log + metric.
        try:
            call_before(deadline - _ANSWER_MARGIN_SECONDS, self._monotonic, lambda: self._dedupe.release(key, token))
        except (DedupeStoreUnavailableError, DeadlineExceededError):
            logger.error(
                "could not release the dedupe claim: if it was written, Kaltura's retries are answered as duplicates "
                "and the sweep recovers the event",
                exc_info=True,
            )
            count("DedupeReleaseFailed")


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
