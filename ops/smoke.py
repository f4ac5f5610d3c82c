"""Smoke check of a deployed stack: does it work, end to end, without ordering or spending anything?

Run after every deploy (``make smoke STACK=kaltura-automations``, ``python -m kauto_ops.smoke --stack NAME`` or
``kauto-ops smoke``), from a workstation with AWS credentials for the stack's account and region. It checks:

1. the stack is in a completed state;
2. the partner secret (the stack's ``PartnerSecretsArn``) can be read and parses;
3. a correctly signed notification of a kind nothing acts on (an entry still importing) sent to the deployed
   endpoint answers 200 and is ignored: nothing is enqueued, ordered or spent;
4. the same notification with a wrong signature answers 401;
5. every alarm of the stack is OK;
6. every dead-letter queue (redrive targets, schedule dead-letter queues, on-failure destinations) is empty;
7. every schedule is enabled;
8. the automation configuration in SSM parses.

It prints a checklist and exits 1 if any check failed, 2 on invalid arguments. The stack's resources are found by
their types and logical ids, and cross-checked against the count its template declares. ``--webhook-url`` and
``--endpoint-url`` point it at the local stack (``make serve`` prints both).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from kauto.config import PartnerConfig, parse_partner_secrets
from kauto.errors import KautoError
from kauto_ops.config_cli import check_documents
from kauto_ops.stack import OpsError, stack_read_error

PROG = "kauto-ops smoke"
DEFAULT_STACK = "kaltura-automations"  # samconfig.toml's stack_name
HTTP_TIMEOUT_SECONDS = 15
COMPLETE_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
SMOKE_ENTRY_ID = "0_kautosmoke"
ENTRY_STATUS_IMPORTING = 1  # not ready: the webhook answers 200 and enqueues nothing (kind "other")
AWS_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist."""

    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class Stack:
    """What the checks need of the stack: outputs, parameters, resources by type, declared counts by type."""

    name: str
    status: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    resources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Resource type -> [(logical id, physical id)]."""
    declared: dict[str, int] = field(default_factory=dict)
    """Resource type -> how many the deployed template declares."""

    def of_type(self, resource_type: str) -> list[tuple[str, str]]:
        return self.resources.get(resource_type, [])


# ---------------------------------------------------------------------------------------------------- commands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", default=DEFAULT_STACK, metavar="NAME", help=f"the deployed stack (default: {DEFAULT_STACK})"
    )
    parser.add_argument(
        "--partner", type=int, metavar="PARTNER_ID", help="partner to sign as (default: the secret's only partner)"
    )
    parser.add_argument(
        "--webhook-url",
        metavar="URL",
        help="notification URL instead of the stack's WebhookUrl output ({partnerId} is replaced; a base URL "
        "gets /kaltura/notifications/<partner>)",
    )
    parser.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (the local stack's moto server)")
    parser.add_argument("--region", help="AWS region (default: the standard AWS configuration)")


def register(commands: Any) -> None:
    """Add ``smoke`` to the ``kauto-ops`` subcommands."""
    parser = commands.add_parser(
        "smoke",
        help="check a deployed stack end to end (signed test notification, alarms, queues, schedules, config)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run every check, print the checklist; 0 when all passed, else 1."""
    session = boto3.session.Session(region_name=args.region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url, config=AWS_CONFIG)

    out.write(f"Smoke check of stack {args.stack}\n")
    failures = 0
    for check in smoke_checks(client, args.stack, partner_id=args.partner, webhook_url=args.webhook_url):
        failures += not check.ok
        out.write(f"  [{'x' if check.ok else ' '}] {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}\n")
        out.flush()
    out.write("All checks passed.\n" if not failures else f"{failures} check(s) failed.\n")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``python -m kauto_ops.smoke``: the same command outside ``kauto-ops``."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m kauto_ops.smoke", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return run(args, stdout)
    except (OpsError, KautoError) as error:
        stderr.write(f"{PROG}: error: {error}\n")
        return 1


# ---------------------------------------------------------------------------------------------------- the checks


def smoke_checks(
    client: Callable[[str], Any], stack_name: str, *, partner_id: int | None = None, webhook_url: str | None = None
) -> Iterator[Check]:
    """The checklist, one :class:`Check` at a time; stops early only when the stack itself cannot be read."""
    stack = read_stack(client("cloudformation"), stack_name)
    yield Check("stack", stack.status in COMPLETE_STATES, stack.status)
    partner = yield from _partner_check(client, stack, partner_id)
    if partner is not None:
        url = _webhook_url(stack, partner.partner_id, webhook_url)
        yield from _webhook_checks(url, partner)
    yield from _alarm_checks(client("cloudwatch"), stack)
    yield from _dead_letter_checks(client, stack)
    yield from _schedule_checks(client("scheduler"), stack)
    yield _config_check(client("ssm"), stack)


def read_stack(cloudformation: Any, name: str) -> Stack:
    try:
        described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        stack = Stack(
            name=name,
            status=described["StackStatus"],
            outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
            parameters={
                p["ParameterKey"]: p.get("ResolvedValue") or p.get("ParameterValue", "")
                for p in described.get("Parameters", [])
            },
        )
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
            for summary in page.get("StackResourceSummaries", []):
                if summary.get("LogicalResourceId") and summary.get("PhysicalResourceId"):
                    stack.resources.setdefault(summary["ResourceType"], []).append(
                        (summary["LogicalResourceId"], summary["PhysicalResourceId"])
                    )
        body = cloudformation.get_template(StackName=name, TemplateStage="Processed")["TemplateBody"]
    except (ClientError, BotoCoreError) as error:
        raise stack_read_error(name, error) from error
    template = json.loads(body) if isinstance(body, str) else body
    for resource in template.get("Resources", {}).values():
        stack.declared[resource["Type"]] = stack.declared.get(resource["Type"], 0) + 1
    return stack


def _partner_check(
    client: Callable[[str], Any], stack: Stack, partner_id: int | None
) -> Generator[Check, None, PartnerConfig | None]:
    """Yields the secret's check; returns the partner to sign as (None when there is none)."""
    arn = stack.parameters.get("PartnerSecretsArn", "")
    try:
        text = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        partners = parse_partner_secrets(text).partners
    except (ClientError, BotoCoreError) as error:
        yield Check("partner secret", False, f"cannot read {arn or 'PartnerSecretsArn'}: {_aws_error(error)}")
        return None
    except KautoError as error:
        yield Check("partner secret", False, f"does not parse: {error}")
        return None
    # kauto-config's own check: a broken partner entry only disables that partner at run time, but fails the smoke.
    problems = check_documents(secret=text)
    if problems:
        yield Check("partner secret", False, f"{len(problems)} problem(s): " + "; ".join(problems))
    if partner_id is None and len(partners) != 1:
        yield Check("partner secret", False, f"{len(partners)} partners: choose one with --partner")
        return None
    chosen = partners.get(partner_id) if partner_id is not None else next(iter(partners.values()))
    if chosen is None:
        yield Check("partner secret", False, f"no partner {partner_id} in the secret")
        return None
    yield Check("partner secret", True, f"readable, {len(partners)} partner(s); signing as partner {chosen.partner_id}")
    return chosen


def _webhook_url(stack: Stack, partner_id: int, override: str | None) -> str:
    template = override or stack.outputs.get("WebhookUrl", "")
    if not template:
        raise OpsError(f"stack {stack.name} has no WebhookUrl output; pass --webhook-url")
    if "{partnerId}" in template:
        return template.replace("{partnerId}", str(partner_id))
    return f"{template.rstrip('/')}/kaltura/notifications/{partner_id}"


def smoke_notification(partner_id: int) -> bytes:
    """An entry-status notification for an entry still importing: authentic, and nothing acts on it."""
    document = {
        "object": {
            "id": SMOKE_ENTRY_ID,
            "partnerId": partner_id,
            "status": ENTRY_STATUS_IMPORTING,
            "name": "kaltura-automations smoke check",
            "objectType": "KalturaMediaEntry",
        },
        "eventObjectType": 1,
        "eventType": 3,
        "eventNotificationJobId": secrets.randbelow(10**12),
        "templateName": "kaltura-automations smoke check",
        "objectType": "KalturaHttpNotification",
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signed_headers(body: bytes, partner: PartnerConfig, *, secret: str | None = None) -> dict[str, str]:
    """Kaltura's headers: hex(HASH(admin secret + raw body)) with the partner's first allowed algorithm."""
    algorithm = partner.webhook_hash_algorithms[0]
    key = partner.admin_secret if secret is None else secret
    signature = hashlib.new(algorithm, key.encode() + body).hexdigest()
    return {
        "content-type": "application/json",
        "x-kaltura-signature": signature,
        "x-kaltura-hash-algo": algorithm,
    }


def _webhook_checks(url: str, partner: PartnerConfig) -> Iterator[Check]:
    body = smoke_notification(partner.partner_id)
    status, answer = _post(url, body, signed_headers(body, partner))
    outcome = _json_field(answer, "outcome")
    ignored = status == 200 and outcome == "ignored"
    yield Check(
        "signed notification",
        ignored,
        f"HTTP {status}, outcome {outcome or '-'} (expected 200, ignored: nothing enqueued)",
    )
    wrong = signed_headers(body, partner, secret=secrets.token_hex(16))
    status, _ = _post(url, body, wrong)
    yield Check("wrongly signed notification", status == 401, f"HTTP {status} (expected 401)")


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    if not url.startswith(("https://", "http://")):
        raise OpsError(f"webhook URL must be http(s): {url}")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return 0, f"{type(reason).__name__}: {reason}".encode()


def _json_field(body: bytes, name: str) -> str | None:
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


def _alarm_checks(cloudwatch: Any, stack: Stack) -> Iterator[Check]:
    names = {physical for _, physical in stack.of_type("AWS::CloudWatch::Alarm")}
    try:
        if not names:
            # A stand-in stack that does not list its alarms (moto): CloudFormation would name them
            # <stack>-<LogicalId>-<suffix>. Only then, since another stack's names can share the prefix.
            for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{stack.name}-"):
                found = page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
                names.update(alarm["AlarmName"] for alarm in found)
        states: dict[str, str] = {}
        for chunk in _chunks(sorted(names), 100):
            answer = cloudwatch.describe_alarms(AlarmNames=chunk, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    except (ClientError, BotoCoreError) as error:
        yield Check("alarms", False, f"cannot read: {_aws_error(error)}")
        return
    yield _count_check("alarms", len(states), stack.declared.get("AWS::CloudWatch::Alarm", 0))
    for name, state in sorted(states.items()):
        hint = "" if state in ("OK", "ALARM") else " (not evaluated yet: run again in a few minutes)"
        yield Check(f"alarm {name}", state == "OK", state + hint)


def _dead_letter_checks(client: Callable[[str], Any], stack: Stack) -> Iterator[Check]:
    sqs = client("sqs")
    queues = stack.of_type("AWS::SQS::Queue")
    try:
        dead_letter_arns = _dead_letter_arns(client, sqs, stack)
        found = []
        for logical_id, url in queues:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            if attributes["QueueArn"] in dead_letter_arns or "DeadLetter" in logical_id:
                found.append((logical_id, attributes))
    except (ClientError, BotoCoreError) as error:
        yield Check("dead-letter queues", False, f"cannot read: {_aws_error(error)}")
        return
    yield Check("dead-letter queues", bool(found), f"{len(found)} found" if found else "none found in the stack")
    for logical_id, attributes in found:
        waiting = sum(
            int(attributes.get(name, 0))
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )
        detail = "empty" if not waiting else f"{waiting} message(s) waiting (kauto-backfill replay-dlq, after a fix)"
        yield Check(f"dead-letter queue {logical_id}", waiting == 0, detail)


def _dead_letter_arns(client: Callable[[str], Any], sqs: Any, stack: Stack) -> set[str]:
    """Queues something dead-letters into: redrive targets, schedules' and async invocations' failure queues."""
    arns: set[str] = set()
    for _, url in stack.of_type("AWS::SQS::Queue"):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        if "RedrivePolicy" in attributes:
            arns.add(json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"])
    for name in _schedule_names(client("scheduler"), stack):
        arn = client("scheduler").get_schedule(Name=name)["Target"].get("DeadLetterConfig", {}).get("Arn")
        if arn:
            arns.add(arn)
    lambda_client = client("lambda")
    for _, function in stack.of_type("AWS::Lambda::Function"):
        try:
            config = lambda_client.get_function_event_invoke_config(FunctionName=function)
        except ClientError:
            continue  # no asynchronous invocation configuration on this function
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")
        if ":sqs:" in destination:
            arns.add(destination)
    return arns


def _schedule_names(scheduler: Any, stack: Stack) -> set[str]:
    names = {physical for _, physical in stack.of_type("AWS::Scheduler::Schedule")}  # Ref: the schedule's name
    if not names:
        # A stand-in stack that does not list its schedules (moto): the template names them <stack>-<purpose>.
        for page in scheduler.get_paginator("list_schedules").paginate(NamePrefix=f"{stack.name}-"):
            names.update(item["Name"] for item in page.get("Schedules", []))
    return names


def _schedule_checks(scheduler: Any, stack: Stack) -> Iterator[Check]:
    try:
        states = {name: scheduler.get_schedule(Name=name)["State"] for name in _schedule_names(scheduler, stack)}
    except (ClientError, BotoCoreError) as error:
        yield Check("schedules", False, f"cannot read: {_aws_error(error)}")
        return
    yield _count_check("schedules", len(states), stack.declared.get("AWS::Scheduler::Schedule", 0))
    for name, state in sorted(states.items()):
        yield Check(f"schedule {name}", state == "ENABLED", state)


def _config_check(ssm: Any, stack: Stack) -> Check:
    name = stack.outputs.get("AutomationConfigParameterName", "")
    if not name:
        return Check("automation config", False, f"stack {stack.name} has no AutomationConfigParameterName output")
    try:
        text = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as error:
        return Check("automation config", False, f"cannot read {name}: {_aws_error(error)}")
    problems = check_documents(automation=text)  # kauto-config's check, over the functions' own schema
    if problems:
        return Check("automation config", False, f"{name}: {len(problems)} problem(s): " + "; ".join(problems))
    return Check("automation config", True, f"{name} is valid")


def _count_check(what: str, found: int, declared: int) -> Check:
    # CloudFormation lists every resource it created and the stack's status is checked above, so only finding none
    # of what the template declares means the lookup itself is wrong (moto's stand-in may lack a few).
    return Check(what, found > 0 or declared == 0, f"{found} found, the stack's template declares {declared}")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
