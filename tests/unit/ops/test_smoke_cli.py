"""The smoke check's test notification is one the product verifies and ignores, and the command plugs into kauto-ops."""

from __future__ import annotations

import argparse

import pytest
from kauto.config import PartnerConfig, parse_partner_secrets
from kauto.intake.errors import SignatureError
from kauto.intake.normalize import normalize
from kauto.intake.parsing import parse_body
from kauto.intake.signature import verify_signature
from kauto.models import EventKind
from kauto_ops import smoke
from kauto_ops.cli import build_parser

SECRET_DOCUMENT = """{"partners": {"1234567": {"admin_secret": "0123456789abcdef0123456789abcdef",
  "webhook_hash_algorithms": ["sha512", "sha256"], "service_url": "https://www.kaltura.com"}}}"""


def partner() -> PartnerConfig:
    return parse_partner_secrets(SECRET_DOCUMENT).partners[1234567]


def test_the_signed_notification_verifies_and_is_a_kind_nothing_acts_on() -> None:
    body = smoke.smoke_notification(1234567)
    headers = smoke.signed_headers(body, partner())

    algorithm = verify_signature(body, headers, partner())
    event = normalize(parse_body(body), partner_id=1234567, received_at=0)

    assert algorithm == "sha512"
    assert event.kind is EventKind.OTHER
    assert event.partner_id == 1234567


def test_the_wrongly_signed_notification_is_refused() -> None:
    body = smoke.smoke_notification(1234567)

    with pytest.raises(SignatureError):
        verify_signature(body, smoke.signed_headers(body, partner(), secret="f" * 32), partner())


def test_each_run_sends_a_new_job_so_dedupe_never_hides_it() -> None:
    jobs = {normalize(parse_body(smoke.smoke_notification(1)), partner_id=1, received_at=0).job_id for _ in range(5)}

    assert len(jobs) == 5


def test_register_adds_the_smoke_subcommand_to_kauto_ops() -> None:
    parser = argparse.ArgumentParser(prog="kauto-ops")
    smoke.register(parser.add_subparsers(dest="name", required=True))

    args = parser.parse_args(["smoke", "--stack", "kaltura-automations", "--partner", "42"])

    assert args.command is smoke.run
    assert (args.stack, args.partner, args.webhook_url, args.endpoint_url) == ("kaltura-automations", 42, None, None)


def test_kauto_ops_runs_smoke_against_the_default_stack_and_refuses_a_bad_partner_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["smoke"])

    assert (args.command, args.stack) == (smoke.run, "kaltura-automations")
    assert smoke.main(["--partner", "abc"]) == 2
    assert "--partner" in capsys.readouterr().err


class RecordingCloudWatch:
    """Answers describe_alarms for the alarms it holds and records every call (stands in for CloudWatch)."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.calls: list[dict[str, object]] = []

    def describe_alarms(self, **kwargs: object) -> dict[str, object]:
        self.calls.append(kwargs)
        names = kwargs.get("AlarmNames")
        prefix = str(kwargs.get("AlarmNamePrefix", ""))
        chosen = [n for n in self.states if (n in names if isinstance(names, list) else n.startswith(prefix))]
        return {"MetricAlarms": [{"AlarmName": n, "StateValue": self.states[n]} for n in chosen]}

    def get_paginator(self, _name: str) -> RecordingCloudWatch:
        return self

    def paginate(self, **kwargs: object) -> list[dict[str, object]]:
        return [self.describe_alarms(**kwargs)]


def test_alarms_are_the_stacks_own_not_another_stacks_sharing_the_name_prefix() -> None:
    cloudwatch = RecordingCloudWatch(
        {"kaltura-automations-EventsAlarm-AB12": "OK", "kaltura-automations-staging-EventsAlarm-CD34": "ALARM"}
    )
    stack = smoke.Stack(
        name="kaltura-automations",
        status="UPDATE_COMPLETE",
        outputs={},
        parameters={},
        resources={"AWS::CloudWatch::Alarm": [("EventsAlarm", "kaltura-automations-EventsAlarm-AB12")]},
        declared={"AWS::CloudWatch::Alarm": 1},
    )

    checks = list(smoke._alarm_checks(cloudwatch, stack))

    assert [(c.name, c.ok) for c in checks] == [("alarms", True), ("alarm kaltura-automations-EventsAlarm-AB12", True)]
    assert all("AlarmNamePrefix" not in call for call in cloudwatch.calls)
