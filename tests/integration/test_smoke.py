"""``make smoke`` against the local stack: moto in server mode (the stack of template.yaml, with its alarms and
schedules) and ``make serve``'s endpoint running the real webhook. A healthy stack passes every check without
enqueueing anything; each broken part fails its own line and the exit status."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest
from helpers import clear_all_kauto_caches
from kauto_local.serve import LocalProduct, local_product
from kauto_local.stack import STACK_NAME
from kauto_ops.smoke import main

pytestmark = pytest.mark.integration

PARTNER_ID = 1234567
SECRETS = {
    "partners": {
        str(PARTNER_ID): {
            "admin_secret": "0123456789abcdef0123456789abcdef",  # a fake secret, never a real one
            "webhook_hash_algorithms": ["sha256"],
            "service_url": "https://www.kaltura.com",
        }
    }
}


@pytest.fixture
def product(moto_aws: str) -> Iterator[LocalProduct]:
    with local_product(SECRETS, {}) as running:
        yield running
    clear_all_kauto_caches()


def smoke(product: LocalProduct, *extra: str, webhook_url: str | None = None) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "--stack",
        STACK_NAME,
        "--endpoint-url",
        product.aws.endpoint_url,
        "--webhook-url",
        webhook_url or product.endpoint.url,
        *extra,
    ]
    status = main(argv, out=out, err=err)
    return status, out.getvalue().splitlines(), err.getvalue()


def failed(lines: list[str]) -> list[str]:
    return [line.split("FAIL", 1)[1].strip() for line in lines if "FAIL" in line]


def line(lines: list[str], name: str) -> str:
    matches = [text for text in lines if f"  {name}:" in text]
    assert len(matches) == 1, (name, lines)
    return matches[0]


def test_a_healthy_stack_passes_every_check_and_nothing_is_enqueued(product: LocalProduct) -> None:
    status, lines, err = smoke(product)

    assert (status, failed(lines), err) == (0, [], "")
    assert lines[-1] == "All checks passed."
    assert "HTTP 200, outcome ignored" in line(lines, "signed notification")
    assert "HTTP 401" in line(lines, "wrongly signed notification")
    alarms = product.aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert alarms and [text for text in lines if "] ok    alarm " in text] == [
        f"  [x] ok    alarm {name}: OK" for name in sorted(alarm["AlarmName"] for alarm in alarms)
    ]
    assert "2 found, the stack's template declares 2" in line(lines, "schedules")
    dead_letter_lines = [text for text in lines if "dead-letter queue " in text]
    assert len(dead_letter_lines) >= 4 and all(text.endswith(": empty") for text in dead_letter_lines)
    assert line(lines, "schedule kauto-local-sweep").endswith("ENABLED")
    assert line(lines, "automation config").endswith("is valid")
    assert product.depth("EventsQueueUrl") == 0  # the signed notification was answered, not enqueued


def test_every_broken_part_fails_its_own_line(product: LocalProduct) -> None:
    aws = product.aws
    aws.client("sqs").send_message(QueueUrl=aws.outputs["EventsDeadLetterQueueUrl"], MessageBody="{}")
    scheduler = aws.client("scheduler")
    sweep = scheduler.get_schedule(Name=f"{STACK_NAME}-sweep")
    scheduler.update_schedule(
        Name=sweep["Name"],
        ScheduleExpression=sweep["ScheduleExpression"],
        FlexibleTimeWindow=sweep["FlexibleTimeWindow"],
        Target=sweep["Target"],
        State="DISABLED",
    )
    alarm = f"{STACK_NAME}-EventsDeadLetterQueueAlarm"
    aws.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    aws.client("ssm").put_parameter(
        Name=aws.outputs["AutomationConfigParameterName"], Value='{"captionz": {}}', Type="String", Overwrite=True
    )

    status, lines, _ = smoke(product)

    assert status == 1
    assert lines[-1] == "4 check(s) failed."
    assert failed(lines) == [
        f"alarm {alarm}: ALARM",
        "dead-letter queue EventsDeadLetterQueue: 1 message(s) waiting (kauto-backfill replay-dlq, after a fix)",
        f"schedule {STACK_NAME}-sweep: DISABLED",
        failed(lines)[3],
    ]
    assert failed(lines)[3].startswith("automation config: ") and "captionz" in failed(lines)[3]


def test_a_broken_partner_entry_fails_the_smoke_with_its_setting_path(product: LocalProduct) -> None:
    # At run time this partner is only disabled (the others keep working); before shipping it is a failure.
    broken = {"admin_secret": "x" * 32, "webhook_hash_algorithms": ["md5"], "sevice_url": "https://www.kaltura.com"}
    secret = {"partners": {**SECRETS["partners"], "7654321": broken}}
    arn = product.aws.partner_secrets_arn
    product.aws.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(secret))
    clear_all_kauto_caches()

    status, lines, _ = smoke(product, "--partner", str(PARTNER_ID))

    assert status == 1
    (problem,) = failed(lines)
    assert problem.startswith("partner secret: 2 problem(s): ")
    assert "partners.7654321.webhook_hash_algorithms" in problem and "partners.7654321.sevice_url" in problem
    assert "did you mean `service_url`" in problem
    assert "HTTP 200" in line(lines, "signed notification")  # the good partner still signs and is accepted


def test_a_url_that_is_not_the_webhook_fails_both_notification_checks(product: LocalProduct) -> None:
    status, lines, _ = smoke(product, webhook_url=f"{product.endpoint.url}/kaltura/elsewhere/{{partnerId}}")

    assert status == 1
    assert failed(lines) == [
        "signed notification: HTTP 404, outcome - (expected 200, ignored: nothing enqueued)",
        "wrongly signed notification: HTTP 404 (expected 401)",
    ]


def test_an_unreachable_endpoint_and_an_unknown_partner_are_failures_not_crashes(product: LocalProduct) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]

    unreachable = smoke(product, webhook_url=f"http://127.0.0.1:{closed_port}")
    unknown = smoke(product, "--partner", "999")

    assert unreachable[0] == 1
    assert [text.split(":", 1)[0] for text in failed(unreachable[1])] == [
        "signed notification",
        "wrongly signed notification",
    ]
    assert unknown[0] == 1 and failed(unknown[1]) == ["partner secret: no partner 999 in the secret"]


def test_a_stack_that_does_not_exist_is_a_clear_error(product: LocalProduct) -> None:
    out, err = io.StringIO(), io.StringIO()

    status = main(["--stack", "nope", "--endpoint-url", product.aws.endpoint_url], out=out, err=err)

    assert status == 1
    assert err.getvalue() == "kauto-ops smoke: error: stack nope does not exist in this account and region\n"
