"""`make serve`: the local stack kept up for manual tries with curl, or for a real Kaltura partner to notify.

The running product (:class:`LocalProduct`, also what ``make demo`` drives): template.yaml created in moto server mode
(:class:`~kauto_local.stack.LocalAwsStack`), the real handlers run in-process
(:class:`~kauto_local.runtime.LocalLambdaRuntime`), the template's HTTP API routes served on 127.0.0.1
(:class:`~kauto_local.http_api.LocalHttpApi`), one :class:`~kauto_local.poller.SqsPoller` per SQS event source of the
template, the template's schedules fired on demand, and an SQS queue subscribed to the alerts topic to see alerts.

Besides the template's routes the local endpoint answers a few ``/_local/`` routes (never deployed):

- ``GET /_local/status``: schedules, queue depths, objects in the reports bucket, the latest decisions (facts of the
  audit trail, newest first), alerts so far;
- ``POST /_local/schedules/<name>``: invoke a schedule's function with the schedule's input, as EventBridge Scheduler
  would (``sweep``, ``weekly-reports``): asynchronously, with Lambda's retries and on-failure queue
  (:mod:`~kauto_local.async_invoke`); the body, if any, replaces the input (e.g. ``{"week": "2026-W01"}``);
- ``POST /_local/alarms/evaluate``: evaluate the alarms once, as CloudWatch would, notifying the alerts
  topic of each change (:mod:`~kauto_local.alarms`);
- ``POST /_local/simulator/advance?seconds=N``: move the Kaltura simulator's clock (simulator mode only): entries
  become ready, REACH tasks progress, room sessions end, and the simulator notifies the webhook.

Environment of ``python -m kauto_local.serve`` (without ``KALTURA_SERVICE_URL`` it runs against the simulator):
``KALTURA_SERVICE_URL``, ``KALTURA_PARTNER_ID``, ``KALTURA_ADMIN_SECRET`` (optional ``KALTURA_APP_TOKEN_ID``,
``KALTURA_APP_TOKEN``, ``KALTURA_APP_TOKEN_HASH_TYPE``), ``KAUTO_WEBHOOK_HASH`` (sha256), ``KAUTO_PORT`` (8080),
``KAUTO_DRY_RUN`` (1: captions are decided and recorded but never ordered; 0 orders for real),
``KAUTO_CONFIG_FILE`` (an automation config override, JSON) and ``KAUTO_LOG_FILE`` (function logs go there instead of
the console). Binds 127.0.0.1 only: a real Kaltura reaches it through a tunnel (the printed instructions say how).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from kauto.automation_config import deep_merge
from kauto.aws.audit import AUDIT_PREFIX
from kauto_local.alarms import evaluate_alarms
from kauto_local.async_invoke import AsyncInvocation, LocalAsyncInvoker
from kauto_local.http_api import LocalHttpApi, routes_from_template
from kauto_local.poller import DrainReport, SqsPoller, queue_depth
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import BodyFormat, KalturaSimulator, signature
from kauto_local.simulator.dispatcher import encode_body
from kauto_local.stack import STACK_NAME, LocalAwsStack, load_template
from kauto_ops.config_cli import check_documents
from kauto_ops.trail import latest_facts

ALERTS_OBSERVER_QUEUE = "kauto-local-alerts-observer"
CONTROL_PREFIX = "/_local/"
JSON_HEADERS = {"content-type": "application/json"}

# Control routes: (method, path pattern) -> handler(match, query, body) returning a JSON-ready value.
ControlHandler = Callable[[re.Match[str], Mapping[str, list[str]], bytes], Any]


class ControlError(Exception):
    """A ``/_local/`` request that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True)
class Schedule:
    """An ``AWS::Scheduler::Schedule`` of the template (a function's ScheduleV2 event), fired on demand here."""

    name: str
    function_id: str
    expression: str
    time_zone: str
    input: Mapping[str, Any]


def schedules_from_template(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Schedule]:
    """Every ScheduleV2 event of every function, by name (the schedule's ``Name`` without the stack prefix)."""
    schedules = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_id, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] != "ScheduleV2":
                continue
            properties = event["Properties"]
            name = _schedule_name(properties.get("Name"), f"{logical_id}-{event_id}")
            # No Input: the function gets an empty object (events/sweep/schedule.event.json).
            raw_input = properties.get("Input")
            schedules[name] = Schedule(
                name=name,
                function_id=logical_id,
                expression=_resolve(properties["ScheduleExpression"], template, parameters),
                time_zone=_resolve(properties.get("ScheduleExpressionTimezone", "UTC"), template, parameters),
                input=json.loads(raw_input) if isinstance(raw_input, str) else {},
            )
    return schedules


def _schedule_name(name: Any, fallback: str) -> str:
    prefix = "${AWS::StackName}-"
    if isinstance(name, Mapping) and isinstance(name.get("Fn::Sub"), str) and name["Fn::Sub"].startswith(prefix):
        return str(name["Fn::Sub"][len(prefix) :])
    return name if isinstance(name, str) else fallback


def _resolve(value: Any, template: Mapping[str, Any], parameters: Mapping[str, str]) -> str:
    """A plain string, or a ``Ref`` to a template parameter (the stack's value, else its default)."""
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        name = value["Ref"]
        return str(parameters.get(name, template["Parameters"][name].get("Default", "")))
    return str(value)


# ---------------------------------------------------------------------------------------------------- the product


class LocalEndpoint(LocalHttpApi):
    """The template's routes (the HTTP API stand-in) plus the local control routes under ``/_local/``."""

    def __init__(self, runtime: LocalLambdaRuntime, port: int = 0) -> None:
        super().__init__(runtime, routes_from_template(load_template()), port)
        self.control_routes: dict[tuple[str, re.Pattern[str]], ControlHandler] = {}

    def add_control_route(self, method: str, pattern: str, handler: ControlHandler) -> None:
        """Serve ``method`` on paths matching ``pattern`` (a regex of the path after ``/_local/``)."""
        self.control_routes[(method, re.compile(f"^{re.escape(CONTROL_PREFIX)}{pattern}$"))] = handler

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if not path.startswith(CONTROL_PREFIX):
            return super().handle(method, path, query, headers, body)
        for (route_method, pattern), handler in self.control_routes.items():
            match = pattern.match(path)
            if match and route_method == method:
                try:
                    result = handler(match, parse_qs(query), body)
                except ControlError as error:
                    return _control_answer(error.status, str(error))
                except ValueError as error:
                    # The input was refused (e.g. a schedule input its function rejects): the caller's to fix.
                    return _control_answer(400, f"{type(error).__name__}: {error}")
                except Exception as error:  # answered, never an empty reply; the traceback goes to the console
                    traceback.print_exc()
                    return _control_answer(500, f"{type(error).__name__}: {error}")
                return 200, dict(JSON_HEADERS), json.dumps(result, indent=2, default=str).encode() + b"\n"
        return 404, dict(JSON_HEADERS), b'{"message":"Not Found"}'


def _control_answer(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, dict(JSON_HEADERS), json.dumps({"message": message}).encode() + b"\n"


@dataclass
class LocalProduct:
    """The running local product; build it with :func:`local_product`."""

    aws: LocalAwsStack
    runtime: LocalLambdaRuntime
    endpoint: LocalEndpoint
    pollers: dict[str, SqsPoller]
    schedules: dict[str, Schedule]
    alerts_queue_url: str
    alert_log: list[dict[str, Any]] = field(default_factory=list)
    _alerts_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def outputs(self) -> Mapping[str, str]:
        return self.aws.outputs

    def webhook_url(self, partner_id: int | str) -> str:
        """The notification URL to give Kaltura for ``partner_id``."""
        return f"{self.endpoint.url}/kaltura/notifications/{partner_id}"

    def fire(self, name: str, event: Mapping[str, Any] | None = None) -> Any:
        """Fire a schedule (see :meth:`fire_async`) and return the function's result (``None`` if it failed)."""
        return self.fire_async(name, event).result

    def fire_async(self, name: str, event: Mapping[str, Any] | None = None) -> AsyncInvocation:
        """What EventBridge Scheduler does: invoke the schedule's function asynchronously with its input (or
        ``event``): Lambda's retries, then the on-failure destination (see :mod:`kauto_local.async_invoke`)."""
        schedule = self.schedules[name]
        return LocalAsyncInvoker(self.aws, self.runtime).invoke(
            schedule.function_id, dict(schedule.input if event is None else event)
        )

    def drain(self, function_id: str, *, max_batches: int = 500) -> DrainReport:
        """Deliver the function's queue to it until the queue is empty (delayed messages are not waited for)."""
        return self.pollers[function_id].drain(max_batches=max_batches)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert published so far, oldest first (alerts that arrived since the last call are read now)."""
        sqs = self.aws.client("sqs")
        with self._alerts_lock:
            while True:
                messages = sqs.receive_message(
                    QueueUrl=self.alerts_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
                if not messages:
                    return list(self.alert_log)
                for message in messages:
                    self.alert_log.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=self.alerts_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Objects of the reports bucket under ``prefix``, by key (sorted)."""
        s3 = self.aws.client("s3")
        bucket = self.outputs["ReportsBucketName"]
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]
        return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in sorted(keys)}

    def peek(self, queue_output: str) -> list[str]:
        """Bodies waiting in a queue named by a stack output (received with visibility 0: they stay there)."""
        sqs = self.aws.client("sqs")
        url = self.outputs[queue_output]
        bodies: dict[str, str] = {}
        for _ in range(queue_depth(sqs, url) + 1):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            for message in messages.get("Messages", []):
                bodies[message["MessageId"]] = message["Body"]
            if len(bodies) >= queue_depth(sqs, url):
                break
        return list(bodies.values())

    def depth(self, queue_output: str) -> int:
        """Visible, in-flight and delayed messages of a queue named by a stack output."""
        return queue_depth(self.aws.client("sqs"), self.outputs[queue_output])

    def status(self) -> dict[str, Any]:
        """What ``GET /_local/status`` answers."""
        queues = sorted(name for name in self.outputs if name.endswith("QueueUrl"))
        return {
            "webhook": self.webhook_url("{partnerId}"),
            "schedules": {
                name: {"function": s.function_id, "expression": s.expression, "time_zone": s.time_zone}
                for name, s in self.schedules.items()
            },
            "queues": {name.removesuffix("Url"): self.depth(name) for name in queues},
            "objects": {key: len(body) for key, body in self.objects().items() if not key.startswith(AUDIT_PREFIX)},
            "decisions": self.decisions(),
            "alerts": [
                {"alert": a.get("alert"), "severity": a.get("severity"), "subject": a.get("subject")}
                for a in self.alerts()
            ],
        }

    def decisions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest facts of the audit trail, newest first (what ``kauto-ops explain`` builds its timelines from)."""
        facts = latest_facts(self.aws.client("s3"), self.outputs["ReportsBucketName"], limit)
        return [{name: value for name, value in fact.items() if value is not None} for fact in facts]

    # -- Lambda's SQS pollers, in the background (make serve) --------------------------------------------------

    def poll_in_background(
        self, stop: threading.Event, console: TextIO, idle_seconds: float = 0.5
    ) -> list[threading.Thread]:
        """One thread per SQS event source, polling until ``stop`` is set (Lambda long-polls its queues)."""
        threads = [
            threading.Thread(
                target=_poll_loop,
                args=(poller, stop, console, idle_seconds),
                name=f"poller-{function_id}",
                daemon=True,  # make serve stops within seconds even while an invocation runs
            )
            for function_id, poller in self.pollers.items()
        ]
        for thread in threads:
            thread.start()
        return threads

    def _control_schedule(self, match: re.Match[str], _query: Mapping[str, list[str]], body: bytes) -> Any:
        name = match.group("name")
        if name not in self.schedules:
            raise ControlError(404, f"no schedule {name!r}; schedules: {', '.join(sorted(self.schedules))}")
        try:
            event = json.loads(body) if body.strip() else None
        except ValueError as error:
            raise ControlError(400, f"the body must be the schedule input as JSON: {error}") from error
        if event is not None and not isinstance(event, dict):
            raise ControlError(400, "the body must be the schedule input as a JSON object")
        invocation = self.fire_async(name, event)
        if invocation.succeeded:
            return {"schedule": name, "result": invocation.result, "attempts": invocation.attempts}
        record = invocation.record or {}
        if isinstance(invocation.error, ValueError):
            # The function refused the input (e.g. a week that does not exist): the caller's to fix. Lambda still
            # retried it and parked the record, as it would in AWS.
            raise ControlError(
                400,
                f"{type(invocation.error).__name__}: {invocation.error} ({invocation.attempts} attempts; invocation "
                f"record sent to the on-failure queue: {invocation.destination_message_id})",
            )
        return {
            "schedule": name,
            "failed": record.get("responsePayload", {}).get("errorType"),
            "condition": record.get("requestContext", {}).get("condition"),
            "attempts": invocation.attempts,
            "on_failure_message_id": invocation.destination_message_id,
        }


def _poll_loop(poller: SqsPoller, stop: threading.Event, console: TextIO, idle_seconds: float) -> None:
    function = poller.source.function.logical_id
    while not stop.is_set():
        try:
            result = poller.poll_once()
        except Exception as error:  # a moto hiccup must not end polling; say so and try again
            console.write(f"poller of {function}: {type(error).__name__}: {error}\n")
            stop.wait(5)
            continue
        if result is None:
            stop.wait(idle_seconds)
        elif result.failed:
            reason = f" ({result.error})" if result.error else ""
            console.write(f"{function}: {len(result.failed)} of {len(result.message_ids)} record(s) failed{reason}\n")


@contextlib.contextmanager
def local_product(
    partner_secrets: Mapping[str, Any],
    automation_config: Mapping[str, Any],
    *,
    log_path: Path | None = None,
    failed_visibility_seconds: int | None = None,
    port: int = 0,
) -> Iterator[LocalProduct]:
    """Start the stack with ``automation_config`` as the ``AutomationConfig`` parameter; the process environment and
    ``sys.stdout`` are restored afterwards.

    ``log_path`` sends function output there (CloudWatch Logs' stand-in) instead of the console.
    ``failed_visibility_seconds`` shortens the wait before a failed record comes back (see ``SqsPoller``).
    """
    saved_environment = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)  # moto's fake credentials only: never a profile of a real account
    parameters = {"AutomationConfig": json.dumps(automation_config, separators=(",", ":"))}
    try:
        with LocalAwsStack(partner_secrets=partner_secrets, parameters=parameters) as aws:
            runtime = LocalLambdaRuntime(aws.functions, log_path=log_path)
            endpoint = LocalEndpoint(runtime, port)
            try:
                pollers = {
                    source.function.logical_id: SqsPoller(
                        aws, runtime, source, failed_visibility_seconds=failed_visibility_seconds
                    )
                    for source in aws.queue_sources
                }
                product = LocalProduct(
                    aws=aws,
                    runtime=runtime,
                    endpoint=endpoint,
                    pollers=pollers,
                    schedules=schedules_from_template(load_template(), parameters),
                    alerts_queue_url=aws.observe_alerts(ALERTS_OBSERVER_QUEUE),
                )
                endpoint.add_control_route("GET", "status", lambda *_: product.status())
                endpoint.add_control_route("POST", r"schedules/(?P<name>[\w-]+)", product._control_schedule)
                endpoint.add_control_route(
                    "POST", "alarms/evaluate", lambda *_: {"changed": evaluate_alarms(product.aws)}
                )
                endpoint.start()
                try:
                    yield product
                finally:
                    endpoint.stop()
            finally:
                runtime.close()
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)


# ---------------------------------------------------------------------------------------------------- make serve

DEFAULT_PORT = 8080
SHUTDOWN_JOIN_SECONDS = 2.0
"""How long stopping waits, in all, for the pollers' invocations in progress (make serve stops within 5 s)."""
HASH_ALGORITHMS = ("sha1", "sha256", "sha512")
CONFIG_PARAMETER_LIMIT = 4096  # CloudFormation's limit on a parameter value (the AutomationConfig parameter)
SIMULATOR_PARTNER_ID = 1234567
# A fake admin secret: the simulator signs with it and the local partner secret holds it. Never a real one.
SIMULATOR_ADMIN_SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105
SIMULATOR_SEED = 7
# Kaltura's clock starts this far behind the wall clock, and is never advanced past the wall clock minus
# SIMULATOR_MIN_LAG_SECONDS: what the simulator reports as done (a session ended, a task finished) is then in the
# automations' past (they read the wall clock), as Kaltura's news always are in production.
SIMULATOR_LAG_SECONDS = 6 * 3600
SIMULATOR_MIN_LAG_SECONDS = 600
ALERT_POLL_SECONDS = 2.0


class SettingsError(Exception):
    """An environment variable of ``make serve`` is missing or wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class RealKaltura:
    """A real Kaltura partner (from the environment)."""

    service_url: str
    partner_id: int
    admin_secret: str
    app_token_id: str | None
    app_token: str | None
    app_token_hash_type: str | None


@dataclass(frozen=True, slots=True)
class ServeSettings:
    port: int
    dry_run: bool
    hash_algorithm: str
    kaltura: RealKaltura | None
    config_override: Mapping[str, Any]
    log_file: Path | None

    @property
    def partner_id(self) -> int:
        return self.kaltura.partner_id if self.kaltura else SIMULATOR_PARTNER_ID


def settings_from_env(env: Mapping[str, str]) -> ServeSettings:
    """Read and check the environment (see the module docstring); raises :class:`SettingsError`."""
    port = _int_setting(env, "KAUTO_PORT", DEFAULT_PORT)
    if not 1 <= port <= 65535:
        raise SettingsError("KAUTO_PORT must be a TCP port (1-65535)")
    dry_run_text = env.get("KAUTO_DRY_RUN", "1").strip().lower()
    if dry_run_text not in ("0", "1", "true", "false", "yes", "no"):
        raise SettingsError("KAUTO_DRY_RUN must be 1 (dry run, the default) or 0 (order captions for real)")
    hash_algorithm = env.get("KAUTO_WEBHOOK_HASH", "sha256").strip().lower()
    if hash_algorithm not in HASH_ALGORITHMS:
        raise SettingsError(f"KAUTO_WEBHOOK_HASH must be one of {', '.join(HASH_ALGORITHMS)}")
    override: Mapping[str, Any] = {}
    if env.get("KAUTO_CONFIG_FILE"):
        try:
            override = json.loads(Path(env["KAUTO_CONFIG_FILE"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SettingsError(f"KAUTO_CONFIG_FILE: cannot read a JSON document: {error}") from error
    log_file = Path(env["KAUTO_LOG_FILE"]) if env.get("KAUTO_LOG_FILE") else None
    return ServeSettings(
        port=port,
        dry_run=dry_run_text in ("1", "true", "yes"),
        hash_algorithm=hash_algorithm,
        kaltura=_real_kaltura(env),
        config_override=override,
        log_file=log_file,
    )


def _int_setting(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None


def _real_kaltura(env: Mapping[str, str]) -> RealKaltura | None:
    service_url = env.get("KALTURA_SERVICE_URL", "").strip().rstrip("/")
    if not service_url:
        return None
    if urlsplit(service_url).scheme not in ("http", "https") or service_url.endswith("/api_v3"):
        raise SettingsError("KALTURA_SERVICE_URL must be the Kaltura base URL, e.g. https://www.kaltura.com")
    for name in ("KALTURA_PARTNER_ID", "KALTURA_ADMIN_SECRET"):
        if not env.get(name):
            raise SettingsError(f"{name} is required with KALTURA_SERVICE_URL")
    token_id, token = env.get("KALTURA_APP_TOKEN_ID") or None, env.get("KALTURA_APP_TOKEN") or None
    if (token_id is None) != (token is None):
        raise SettingsError("KALTURA_APP_TOKEN_ID and KALTURA_APP_TOKEN go together")
    return RealKaltura(
        service_url=service_url,
        partner_id=_int_setting(env, "KALTURA_PARTNER_ID", 0),
        admin_secret=env["KALTURA_ADMIN_SECRET"],
        app_token_id=token_id,
        app_token=token,
        app_token_hash_type=env.get("KALTURA_APP_TOKEN_HASH_TYPE") or None,
    )


def serve_partner_secrets(settings: ServeSettings, simulator_url: str | None) -> dict[str, Any]:
    """The partner secret: the real partner of the environment, or the simulator's partner."""
    if settings.kaltura is None:
        if simulator_url is None:
            raise ValueError("the simulator's URL is needed without a real Kaltura")
        entry: dict[str, Any] = {"admin_secret": SIMULATOR_ADMIN_SECRET, "service_url": simulator_url}
    else:
        kaltura = settings.kaltura
        entry = {"admin_secret": kaltura.admin_secret, "service_url": kaltura.service_url}
        if kaltura.app_token_id and kaltura.app_token:
            entry["app_token"] = {"id": kaltura.app_token_id, "token": kaltura.app_token}
            if kaltura.app_token_hash_type:
                entry["app_token"]["hash_type"] = kaltura.app_token_hash_type
    entry["webhook_hash_algorithms"] = [settings.hash_algorithm]
    return {"partners": {str(settings.partner_id): entry}}


def serve_automation_config(settings: ServeSettings) -> dict[str, Any]:
    """Captions on for the partner, the ``KAUTO_CONFIG_FILE`` override on top, and dry run as ``KAUTO_DRY_RUN``
    says (whatever the file says: only the environment turns real orders on)."""
    document: dict[str, Any] = {"partners": {str(settings.partner_id): {"captions": {"enabled": True}}}}
    deep_merge(document, settings.config_override)
    deep_merge(document, {"partners": {str(settings.partner_id): {"captions": {"dry_run": settings.dry_run}}}})
    return document


def check_configuration(secrets: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Validate both documents as the functions will (fail now, not on the first notification)."""
    problems = check_documents(secret=json.dumps(secrets), automation=json.dumps(config))
    if problems:
        raise SettingsError("\n".join(["the configuration is invalid (kauto-config check):", *problems]))
    if len(json.dumps(config, separators=(",", ":"))) > CONFIG_PARAMETER_LIMIT:
        raise SettingsError(f"KAUTO_CONFIG_FILE: the configuration exceeds {CONFIG_PARAMETER_LIMIT} bytes")


@dataclass(frozen=True, slots=True)
class SimulatorSeed:
    """What :func:`seed_simulator` created for manual tries."""

    ready_entry_id: str
    converting_entry_ids: tuple[str, ...]
    room_entry_id: str


def seed_simulator(sim: KalturaSimulator) -> SimulatorSeed:
    """A partner with REACH, a ready entry (for the curl example), two entries still converting and a room session
    that ends soon (advance the clock to see Kaltura notify), and analytics for any week (for the weekly run)."""
    sim.add_partner(SIMULATOR_PARTNER_ID, SIMULATOR_ADMIN_SECRET, name="Local partner")
    item = sim.add_catalog_item(SIMULATOR_PARTNER_ID, name="English machine captions")
    sim.add_reach_profile(SIMULATOR_PARTNER_ID, credit=600, default_for=[item.id])
    ready = sim.add_entry(SIMULATOR_PARTNER_ID, name="Welcome lecture", duration=1500)
    converting = tuple(
        sim.add_entry(SIMULATOR_PARTNER_ID, name=name, duration=duration, status=1, ready_in=ready_in).id
        for name, duration, ready_in in (("Lab walkthrough", 900, 60), ("Guest talk", 2700, 120))
    )
    session = sim.add_room_session(
        SIMULATOR_PARTNER_ID, room_name="Project room", end=sim.clock.now() + 180, attendees=5, breakouts=1
    )
    return SimulatorSeed(ready.id, converting, session.room_entry_id)


def advance_simulator(sim: KalturaSimulator, seconds: int) -> dict[str, Any]:
    """Move Kaltura's clock by ``seconds``, but never closer to the wall clock than SIMULATOR_MIN_LAG_SECONDS."""
    now = sim.clock.now()
    allowed = max(0, min(seconds, int(time.time()) - SIMULATOR_MIN_LAG_SECONDS - now))
    before = len(sim.dispatcher.deliveries)
    sim.clock.advance(allowed)
    return {
        "advanced_seconds": allowed,
        "requested_seconds": seconds,
        "simulator_time": sim.clock.now(),
        "notifications_sent": len(sim.dispatcher.deliveries) - before,
        "tasks": {str(task.id): task.status for task in sim.tasks(SIMULATOR_PARTNER_ID)},
    }


def _control_advance(sim: KalturaSimulator) -> ControlHandler:
    def handler(_match: re.Match[str], query: Mapping[str, list[str]], _body: bytes) -> Any:
        try:
            seconds = int(query.get("seconds", ["60"])[0])
        except ValueError:
            raise ControlError(400, "seconds must be a whole number") from None
        if seconds < 0:
            raise ControlError(400, "Kaltura's clock only moves forward")
        return advance_simulator(sim, seconds)

    return handler


@dataclass(frozen=True, slots=True)
class SignedNotification:
    """A notification signed as Kaltura signs it, its body in a file: what the printed curl command posts."""

    url: str
    headers: Mapping[str, str]
    body_path: Path

    @property
    def command(self) -> str:
        headers = " ".join(f"-H '{name}: {value}'" for name, value in self.headers.items())
        return f"curl -sS -X POST '{self.url}' {headers} --data-binary @{self.body_path}"


def signed_entry_ready(
    sim: KalturaSimulator, webhook_url: str, entry_id: str, hash_algorithm: str
) -> SignedNotification:
    """The simulator's entry-ready notification for ``entry_id``, signed with the simulator partner's secret."""
    envelope = sim.dispatcher.entry_ready_envelope(entry_id)
    body, content_type = encode_body(envelope, BodyFormat.OBJECT_JSON)
    path = Path(tempfile.mkdtemp(prefix="kauto-serve-")) / "entry_ready.json"
    path.write_bytes(body)
    headers = {
        "Content-Type": content_type,
        "X-KALTURA-SIGNATURE": signature(SIMULATOR_ADMIN_SECRET, body, hash_algorithm),
        "X-KALTURA-HASH-ALGO": hash_algorithm,
    }
    return SignedNotification(webhook_url, headers, path)


def print_instructions(console: TextIO, settings: ServeSettings, served: Served) -> None:
    """The webhook URL, the control routes and curl examples (and how to expose the port to a real Kaltura)."""
    product, sim, example = served.product, served.sim, served.example
    webhook = product.webhook_url(settings.partner_id)
    base = product.endpoint.url
    if settings.dry_run:
        mode = "DRY RUN: captions are decided and recorded, never ordered"
    else:
        mode = "LIVE: captions are ORDERED"
    kaltura = f"{settings.kaltura.service_url}" if settings.kaltura else f"the simulator at {sim.url if sim else '-'}"
    lines = [
        "",
        f"Kaltura automations, local stack ({mode}; KAUTO_DRY_RUN={'1' if settings.dry_run else '0'})",
        f"  Kaltura:  {kaltura}, partner {settings.partner_id}, webhook signatures {settings.hash_algorithm}",
        f"  Webhook:  POST {webhook}",
        f"  Status:   curl -sS {base}/_local/status",
        f"  Smoke:    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local make smoke STACK={STACK_NAME} "
        f"SMOKE_ARGS='--endpoint-url {product.aws.endpoint_url} --webhook-url {base}'",
        "  Schedules (EventBridge Scheduler stand-in; a JSON body replaces the schedule's input):",
    ]
    width = max(len(name) for name in product.schedules)
    for name, schedule in product.schedules.items():
        lines.append(
            f"    curl -sS -X POST {base}/_local/schedules/{name:<{width}}   # {schedule.function_id}, "
            f"{schedule.expression} {schedule.time_zone}, input {json.dumps(dict(schedule.input))}"
        )
    if sim is not None and example is not None:
        lines += [
            "  A signed entry-ready notification (Kaltura's dispatcher would send the same):",
            f"    {example.command}",
            "  Move Kaltura's clock (entries finish converting, REACH tasks progress, a room session ends; the",
            "  simulator notifies the webhook by itself):",
            f"    curl -sS -X POST '{base}/_local/simulator/advance?seconds=600'",
        ]
    else:
        lines += [
            "  Sign a test notification with your admin secret (Kaltura signs hex(HASH(secret + body))):",
            f"    sig=$( (printf '%s' \"$KALTURA_ADMIN_SECRET\"; cat body.json) | {settings.hash_algorithm}sum "
            "| cut -d' ' -f1)",
            f"    curl -sS -X POST '{webhook}' -H 'Content-Type: application/json' "
            f"-H \"X-KALTURA-SIGNATURE: $sig\" -H 'X-KALTURA-HASH-ALGO: {settings.hash_algorithm}' "
            "--data-binary @body.json",
            "  For Kaltura to reach it, expose the port with a tunnel (it listens on 127.0.0.1 only), e.g.",
            f"    cloudflared tunnel --url {base}     (or: ngrok http {settings.port})",
            f"  and use https://<tunnel host>/kaltura/notifications/{settings.partner_id} as the URL of the",
            f"  HTTP event-notification templates (signature algorithm {settings.hash_algorithm}).",
        ]
    lines += [
        "  Operations (the audit trail, failures, replays) against this stack, from another shell:",
        f"    AWS_ENDPOINT_URL={product.aws.endpoint_url} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
        f"AWS_DEFAULT_REGION=us-east-1 .venv/bin/kauto-ops failures --stack {STACK_NAME}",
        "  Function logs: " + (str(settings.log_file) if settings.log_file else "below (JSON lines)"),
        "Ctrl-C stops.",
        "",
    ]
    console.write("\n".join(lines) + "\n")
    console.flush()


def _print_alerts(product: LocalProduct, stop: threading.Event, console: TextIO) -> None:
    shown = 0
    while not stop.wait(ALERT_POLL_SECONDS):
        try:
            alerts = product.alerts()
        except Exception as error:  # a moto hiccup must not end the watch; say so and go on
            console.write(f"alerts: {type(error).__name__}: {error}\n")
            continue
        for alert in alerts[shown:]:
            console.write(f"ALERT {alert.get('severity')} {alert.get('alert')}: {alert.get('subject')}\n")
        shown = len(alerts)


@dataclass(frozen=True, slots=True)
class Served:
    """What :func:`serving` runs: the product, the simulator (None with a real Kaltura) and a curl example."""

    product: LocalProduct
    sim: KalturaSimulator | None
    example: SignedNotification | None


@contextlib.contextmanager
def serving(settings: ServeSettings, console: TextIO, stop: threading.Event) -> Iterator[Served]:
    """Start everything (pollers and the alert watch run until ``stop`` is set, which leaving the block does)."""
    with contextlib.ExitStack() as stack:
        sim = seed = None
        if settings.kaltura is None:
            sim = stack.enter_context(
                KalturaSimulator(seed=SIMULATOR_SEED, start_time=int(time.time()) - SIMULATOR_LAG_SECONDS, tls=False)
            )
            seed = seed_simulator(sim)
        secrets = serve_partner_secrets(settings, sim.url if sim else None)
        config = serve_automation_config(settings)
        check_configuration(secrets, config)
        product = stack.enter_context(local_product(secrets, config, log_path=settings.log_file, port=settings.port))
        example = None
        if sim is not None and seed is not None:
            webhook = product.webhook_url(SIMULATOR_PARTNER_ID)
            sim.subscribe(webhook, partner_id=SIMULATOR_PARTNER_ID, hash_algorithm=settings.hash_algorithm)
            product.endpoint.add_control_route("POST", "simulator/advance", _control_advance(sim))
            example = signed_entry_ready(sim, webhook, seed.ready_entry_id, settings.hash_algorithm)
            stack.callback(shutil.rmtree, example.body_path.parent, ignore_errors=True)
        threads = product.poll_in_background(stop, console)
        threads.append(
            threading.Thread(target=_print_alerts, args=(product, stop, console), name="alerts", daemon=True)
        )
        threads[-1].start()
        try:
            yield Served(product, sim, example)
        finally:
            # Give an invocation in progress a moment to finish before the stack goes away, but stop within
            # seconds whatever runs (the threads are daemons: one still busy does not keep the process alive).
            stop.set()
            deadline = time.monotonic() + SHUTDOWN_JOIN_SECONDS
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))


def serve(settings: ServeSettings, console: TextIO, stop: threading.Event) -> None:
    """Run until ``stop`` is set (Ctrl-C)."""
    with serving(settings, console, stop) as served:
        print_instructions(console, settings, served)
        stop.wait()


class ShutdownRequested(BaseException):  # like KeyboardInterrupt: no `except Exception` swallows it
    """SIGINT or SIGTERM: raised in the main thread, so that leaving every ``with`` block stops and cleans up."""


def main() -> int:
    """``make serve``: exit status 2 for a bad setting, 0 after Ctrl-C."""
    console = sys.stdout
    try:
        settings = settings_from_env(os.environ)
    except SettingsError as error:
        console.write(f"make serve: {error}\n")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # No lock in here (not even stop.set()): the main thread may hold one when a signal lands, e.g. inside the
        # first signal's stop.set(), and a handler that waits for it never returns. The first signal unwinds the
        # main thread, which stops everything and cleans up within seconds; later ones are ignored, so that they
        # cut neither the cleanup short nor the interpreter's exit.
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, signal.SIG_IGN)
        raise ShutdownRequested(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        serve(settings, console, stop)
    except ShutdownRequested:
        pass
    except SettingsError as error:
        console.write(f"make serve: {error}\n")
        return 2
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            console.write(f"make serve: port {settings.port} is in use; choose another with KAUTO_PORT\n")
            return 2
        raise
    console.write("Stopped.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
