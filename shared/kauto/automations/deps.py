"""The ports the automations work through, and :func:`build_deps`, which wires them to AWS and Kaltura.

Domain code receives one :class:`AutomationDeps` and never builds a client itself, so unit tests pass in-memory fakes
(``kauto_local.fakes``: ``InMemoryLedger``, ``InMemoryEventQueue``, a fake Kaltura client) and the Lambda handlers pass
:func:`build_deps`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kauto.automation_config import AutomationConfig, load_automation_config
from kauto.automations.audit import audited, new_trail
from kauto.aws.alerts import AlertPublisher, SnsAlertPublisher
from kauto.aws.audit import AuditTrail
from kauto.aws.clients import dynamodb_client, s3_client, sns_client
from kauto.aws.ledger import DynamoLedger, Ledger
from kauto.aws.object_store import ObjectStore
from kauto.aws.queue import SqsEventQueue
from kauto.aws.s3_writer import S3ObjectStore
from kauto.config import MAX_WORKER_TIMEOUT_SECONDS, WorkerSettings, partner_directory, settings_from_env
from kauto.errors import ConfigError
from kauto.kaltura import ClientSettings, InvocationBudget, KalturaClient, get_client
from kauto.models import KalturaEvent
from kauto.partner_credentials import partner_credentials
from kauto.validation import Problem

DEFAULT_WORKER_TIMEOUT_SECONDS = MAX_WORKER_TIMEOUT_SECONDS
"""Lambda's maximum run time: without ``WORKER_TIMEOUT_SECONDS`` a claim is considered abandoned only after it."""

KALTURA_CLIENT_SETTINGS = ClientSettings()
"""Kaltura client tuning for every automation (timeouts, retries, paging); read when :func:`build_deps` runs."""


class EventSink(Protocol):
    """Where follow-up events go: the events queue (:class:`kauto.aws.queue.SqsEventQueue`)."""

    def send(self, event: KalturaEvent, delay_seconds: int = 0) -> str:
        """Enqueue ``event`` (visible after ``delay_seconds``, at most 900); returns the message id."""
        ...


KalturaFactory = Callable[[int], KalturaClient]
"""Partner id -> the Kaltura client bound to this invocation's time and retry budget."""


@dataclass(frozen=True, slots=True)
class AutomationDeps:
    """Everything an automation needs for one invocation."""

    config: AutomationConfig
    ledger: Ledger
    alerts: AlertPublisher
    store: ObjectStore
    kaltura: KalturaFactory
    events: EventSink
    clock: Callable[[], float] = time.time
    """Wall-clock unix seconds."""
    worker_timeout_seconds: int = DEFAULT_WORKER_TIMEOUT_SECONDS
    """How long one worker invocation can run: a claim older than this belongs to a worker that died."""
    secret_problems: Callable[[], Mapping[str, tuple[Problem, ...]]] = field(default=lambda: {})
    """The broken entries of the partner secret (key as written -> problems); read by the sweep's alert."""
    memo: dict[Any, Any] = field(default_factory=dict)
    """Lookups shared by the records of one invocation (e.g. a partner's catalog items); gone with the deps."""
    audit: AuditTrail = field(default_factory=lambda: AuditTrail(None, clock=time.time))
    """This invocation's audit trail (:mod:`kauto.automations.audit`): fed by the ledger, alert and store ports that
    :func:`build_deps` wraps; the handler flushes it once at the end."""


def build_deps(lambda_context: Any, environ: Mapping[str, str] | None = None) -> AutomationDeps:
    """Wire the real adapters from the environment (names set by template.yaml) for one Lambda invocation.

    Reads ``LEDGER_TABLE``, ``REPORTS_BUCKET``, ``ALERTS_TOPIC_ARN``, ``EVENTS_QUEUE_URL``, ``PARTNER_SECRETS_ARN``,
    ``AUTOMATION_CONFIG_PARAMETER`` and the optional ``WORKER_TIMEOUT_SECONDS`` (:class:`kauto.config.WorkerSettings`);
    raises :class:`~kauto.validation.ConfigErrors` naming every missing or invalid one. Clients and the configuration
    are cached per process; Kaltura clients are bound to ``lambda_context``'s remaining time.
    """
    settings = settings_from_env(WorkerSettings, environ)
    secrets_arn = settings.partner_secrets_arn
    ledger = DynamoLedger(dynamodb_client(), settings.ledger_table)
    store = S3ObjectStore(s3_client(), settings.reports_bucket)
    trail = new_trail(store, time.time, getattr(lambda_context, "aws_request_id", None))
    # The alert publisher's claims go to the raw ledger: published alerts are stated by the publisher wrapper.
    audited_ledger, alerts, audited_store = audited(
        ledger, SnsAlertPublisher(sns_client(), settings.alerts_topic_arn, ledger), store, trail
    )
    return AutomationDeps(
        config=load_automation_config(settings.automation_config_parameter),
        ledger=audited_ledger,
        alerts=alerts,
        store=audited_store,
        kaltura=InvocationKaltura(secrets_arn, InvocationBudget.from_lambda_context(lambda_context)),
        events=SqsEventQueue(settings.events_queue_url),
        worker_timeout_seconds=settings.worker_timeout_seconds,
        secret_problems=partner_directory(secrets_arn).broken,
        audit=trail,
    )


class InvocationKaltura:
    """:data:`KalturaFactory` over the partner secret: one client view per partner, sharing one invocation budget."""

    def __init__(self, secrets_arn: str, budget: InvocationBudget) -> None:
        self._secrets_arn = secrets_arn
        self._budget = budget
        self._clients: dict[int, KalturaClient] = {}

    def __call__(self, partner_id: int) -> KalturaClient:
        client = self._clients.get(partner_id)
        if client is None:
            partner = partner_directory(self._secrets_arn).get(partner_id)
            if partner is None:
                raise ConfigError(f"partners.{partner_id}", "partner is not in the partner secret")
            client = get_client(partner_credentials(partner), KALTURA_CLIENT_SETTINGS).for_invocation(self._budget)
            self._clients[partner_id] = client
        return client
