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


def test_main_without_a_stack_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main([]) == 2
    assert "--stack" in capsys.readouterr().err
