"""The worker's sample events (events/worker): up to date with their generator, valid messages, and handled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import REPO_ROOT, FakeLambdaContext, load_handler, load_module
from kauto.automations import router
from kauto.models import BodyFormat, EventKind, KalturaEvent
from reach_fakes import build_harness

EVENTS_DIR = REPO_ROOT / "events" / "worker"
generator = load_module(EVENTS_DIR / "build_events.py", "kauto_worker_samples")


def test_committed_samples_are_what_the_generator_builds() -> None:
    built = generator.build()

    assert sorted(path.name for path in EVENTS_DIR.glob("*.event.json")) == sorted(built)
    for name, content in built.items():
        assert (EVENTS_DIR / name).read_text(encoding="utf-8") == generator.render(content), name


@pytest.mark.parametrize(
    ("name", "kind", "body_format"),
    [
        ("entry_ready", EventKind.ENTRY_READY, BodyFormat.OBJECT_JSON),
        ("vendor_task_ready", EventKind.VENDOR_TASK_STATUS, BodyFormat.OBJECT_XML),
        ("vendor_task_error", EventKind.VENDOR_TASK_STATUS, BodyFormat.OBJECT_JSON),
        ("session_ended", EventKind.SESSION_ENDED, BodyFormat.OBJECT_JSON),
        ("sweep_entry_ready", EventKind.ENTRY_READY, BodyFormat.SWEEP),
    ],
)
def test_each_sample_carries_one_valid_event(name: str, kind: EventKind, body_format: BodyFormat) -> None:
    (record,) = json.loads((EVENTS_DIR / f"{name}.event.json").read_text())["Records"]

    event = KalturaEvent.from_json(record["body"])

    assert (event.kind, event.body_format) == (kind, body_format)
    assert event.to_json() == record["body"]


def test_worker_handles_every_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = build_harness()
    harness.kaltura.add_catalog_item(445566)
    harness.kaltura.add_entry("1_x4b9c2kq", name="Quarterly all-hands recording")
    sessions: list[Any] = []
    monkeypatch.setattr(router.sessions, "pull_session_reports", lambda event, deps: sessions.append(event))
    worker = load_handler("worker")
    monkeypatch.setattr(worker, "build_deps", lambda context: harness.deps)

    responses = [
        worker.lambda_handler(json.loads(path.read_text()), FakeLambdaContext())
        for path in sorted(EVENTS_DIR.glob("*.event.json"))
    ]

    alerts = [json.loads(alert.message)["alert"] for alert in harness.alerts.published]
    assert responses == [{"batchItemFailures": []}] * 5
    assert len(harness.kaltura.adds()) == 1  # the webhook's and the sweep's entry-ready order once
    assert [event.object_id for event in sessions] == ["1_s3ss10n7"]
    assert alerts == ["reach_task_error"]
