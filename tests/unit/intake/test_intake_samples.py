"""The committed sample events (events/webhook/) are what the generator produces, and normalize as expected.

The end-to-end check (handler -> SQS message equals the expected event) is in tests/integration/test_webhook.py.
"""

from __future__ import annotations

import json

import pytest
from helpers import REPO_ROOT, webhook_samples
from kauto.config import PartnerConfig
from kauto.intake.normalize import normalize
from kauto.intake.parsing import parse_body
from kauto.intake.request import request_from_api_gateway
from kauto.intake.signature import verify_signature

EVENTS_DIR = REPO_ROOT / "events" / "webhook"


def test_committed_files_are_up_to_date_with_the_generator() -> None:
    generated = webhook_samples().render()
    committed = {
        path.name: path.read_text(encoding="utf-8")
        for pattern in ("*.event.json", "*.expected.json")
        for path in EVENTS_DIR.glob(pattern)
    }

    assert sorted(committed) == sorted(generated), "run: .venv/bin/python events/webhook/build_events.py"
    stale = [name for name, content in generated.items() if committed[name] != content]
    assert stale == [], "run: .venv/bin/python events/webhook/build_events.py"


@pytest.mark.parametrize("sample", webhook_samples().samples(), ids=lambda sample: sample.name)
def test_sample_is_signed_with_the_fake_secret_and_normalizes_to_its_expected_event(sample: object) -> None:
    samples = webhook_samples()
    request = request_from_api_gateway(sample.event, now=0)  # type: ignore[attr-defined]
    partner = PartnerConfig(
        partner_id=samples.PARTNER_ID,
        admin_secret=samples.FAKE_ADMIN_SECRET,
        webhook_hash_algorithms=("sha1", "sha256", "sha512"),
        service_url="https://www.kaltura.com",
    )

    verify_signature(request.body, request.headers, partner)
    event = normalize(parse_body(request.body), partner_id=request.partner_id, received_at=request.received_at)

    expected = sample.expected_event  # type: ignore[attr-defined]
    if expected is None:
        assert event.kind.value == "other"
    else:
        assert event.to_dict() == expected
        assert json.loads(event.to_json()) == expected
