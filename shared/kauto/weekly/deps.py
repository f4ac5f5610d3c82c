"""The ports of the weekly reports and their wiring to AWS and Kaltura.

- :class:`RunDeps`: what scheduling and run bookkeeping need (config, ledger, the job queue, the clock). The scheduler
  function gets only these.
- :class:`WeeklyDeps`: the report worker's ports: :class:`RunDeps` plus the report store, the alert publisher, the
  Kaltura clients and the invocation's remaining time. The digest (:mod:`kauto.weekly.digest`) receives these too.

Unit tests pass in-memory fakes (``kauto_local.fakes``, including ``InMemoryJobQueue``, a fake Kaltura);
the handlers pass :func:`build_run_deps` / :func:`build_weekly_deps`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kauto.automation_config import AutomationConfig, load_automation_config
from kauto.automations.audit import audited, new_trail
from kauto.automations.deps import KALTURA_CLIENT_SETTINGS, KalturaFactory, partner_credentials
from kauto.aws.alerts import AlertPublisher, SnsAlertPublisher
from kauto.aws.audit import AuditTrail
from kauto.aws.clients import dynamodb_client, s3_client, sns_client
from kauto.aws.ledger import DynamoLedger, Ledger
from kauto.aws.object_store import ObjectStore
from kauto.aws.s3_writer import S3ObjectStore
from kauto.config import partner_directory, settings_from_env
from kauto.errors import ConfigError
from kauto.kaltura import InvocationBudget, KalturaClient, get_client
from kauto.weekly.config import (
    ReportWorkerSettings,
    RunSettings,
    WeeklyConfig,
    WeeklySettings,
    parse_weekly_config,
)
from kauto.weekly.queue import JobQueue, SqsJobQueue

DEFAULT_TIME_ZONE = "UTC"


def _unbounded() -> float | None:
    return None


@dataclass(frozen=True, slots=True)
class RunDeps:
    """Scheduling and run bookkeeping: the configuration, the ledger, the job queue and the clock."""

    config: AutomationConfig
    weekly: WeeklyConfig
    ledger: Ledger
    jobs: JobQueue
    clock: Callable[[], float] = time.time
    """Wall-clock unix seconds."""
    default_time_zone: str = DEFAULT_TIME_ZONE
    """The zone of partners whose weekly settings name none: the schedule's zone (``WEEKLY_TIME_ZONE``)."""

    def settings(self, partner_id: int) -> WeeklySettings:
        """``partner_id``'s weekly settings."""
        return self.weekly.for_partner(partner_id)

    def time_zone(self, partner_id: int) -> str:
        """The IANA zone whose weeks ``partner_id``'s runs cover."""
        return self.settings(partner_id).time_zone or self.default_time_zone


@dataclass(frozen=True, slots=True)
class WeeklyDeps:
    """Everything the report worker (and the digest it triggers) needs for one invocation."""

    run: RunDeps
    store: ObjectStore
    alerts: AlertPublisher
    kaltura: KalturaFactory
    time_left: Callable[[], float | None] = _unbounded
    """Seconds this invocation has left (None: unbounded); jobs checkpoint when it runs low."""
    audit: AuditTrail = dataclasses.field(default_factory=lambda: AuditTrail(None, clock=time.time))
    """This invocation's audit trail, fed by the wrapped ports of :func:`build_weekly_deps`; the handler flushes it."""

    @property
    def config(self) -> AutomationConfig:
        """The automation configuration."""
        return self.run.config

    @property
    def weekly(self) -> WeeklyConfig:
        """The validated weekly section."""
        return self.run.weekly

    @property
    def ledger(self) -> Ledger:
        """The ledger table."""
        return self.run.ledger

    @property
    def jobs(self) -> JobQueue:
        """ReportJobsQueue."""
        return self.run.jobs

    @property
    def clock(self) -> Callable[[], float]:
        """Wall-clock unix seconds."""
        return self.run.clock


def build_run_deps(environ: Mapping[str, str] | None = None) -> RunDeps:
    """Wire :class:`RunDeps` from ``LEDGER_TABLE``, ``REPORT_JOBS_QUEUE_URL``, ``AUTOMATION_CONFIG_PARAMETER`` and the
    optional ``WEEKLY_TIME_ZONE`` (:class:`kauto.weekly.config.RunSettings`); raises
    :class:`~kauto.validation.ConfigErrors` naming every missing or bad one."""
    settings = settings_from_env(RunSettings, environ)
    config = load_automation_config(settings.automation_config_parameter)
    return RunDeps(
        config=config,
        weekly=parse_weekly_config(config.weekly),
        ledger=DynamoLedger(dynamodb_client(), settings.ledger_table),
        jobs=SqsJobQueue(settings.report_jobs_queue_url),
        default_time_zone=settings.weekly_time_zone,
    )


def build_weekly_deps(lambda_context: Any, environ: Mapping[str, str] | None = None) -> WeeklyDeps:
    """Wire :class:`WeeklyDeps` for one report worker invocation: :func:`build_run_deps` plus ``REPORTS_BUCKET``,
    ``ALERTS_TOPIC_ARN`` and ``PARTNER_SECRETS_ARN``; Kaltura clients and ``time_left`` follow ``lambda_context``."""
    settings = settings_from_env(ReportWorkerSettings, environ)  # every missing variable at once
    run = build_run_deps(environ)
    budget = InvocationBudget.from_lambda_context(lambda_context)
    store = S3ObjectStore(s3_client(), settings.reports_bucket)
    trail = new_trail(store, time.time, getattr(lambda_context, "aws_request_id", None))
    ledger, alerts, audited_store = audited(
        run.ledger, SnsAlertPublisher(sns_client(), settings.alerts_topic_arn, run.ledger), store, trail
    )
    return WeeklyDeps(
        run=dataclasses.replace(run, ledger=ledger),
        store=audited_store,
        alerts=alerts,
        kaltura=WeeklyKaltura(settings.partner_secrets_arn, budget, run.weekly),
        time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000.0,
        audit=trail,
    )


class WeeklyKaltura:
    """:data:`KalturaFactory` for the weekly reports: the partner's client with its Reports Microservice base URL
    (``reports_service_url`` of its weekly settings; the partner secret has no such field), sharing one budget."""

    def __init__(self, secrets_arn: str, budget: InvocationBudget, weekly: WeeklyConfig) -> None:
        self._secrets_arn = secrets_arn
        self._budget = budget
        self._weekly = weekly
        self._clients: dict[int, KalturaClient] = {}

    def __call__(self, partner_id: int) -> KalturaClient:
        client = self._clients.get(partner_id)
        if client is None:
            partner = partner_directory(self._secrets_arn).get(partner_id)
            if partner is None:
                raise ConfigError(f"partners.{partner_id}", "partner is not in the partner secret")
            credentials = dataclasses.replace(
                partner_credentials(partner),
                reports_service_url=self._weekly.for_partner(partner_id).reports_service_url,
            )
            client = get_client(credentials, KALTURA_CLIENT_SETTINGS).for_invocation(self._budget)
            self._clients[partner_id] = client
        return client
