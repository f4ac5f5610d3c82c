"""Routing by event kind and the one place errors are classified: retry, record-and-succeed, or done."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from kauto.automations import router
from kauto.automations.errors import MalformedEventError, RetryLaterError
from kauto.automations.router import RouteOutcome, handle_event
from kauto.errors import ConfigError
from kauto.kaltura import KalturaConfigurationError, KalturaTransportError
from kauto.models import EventKind
from reach_fakes import PARTNER_ID, Harness, api_error, catalog_harness, entry_ready_event, task_event


@pytest.fixture
def harness() -> Harness:
    return catalog_harness()


@pytest.fixture
def session_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        router.recordings,
        "handle_meeting_recording_ready",
        lambda event, entry, deps: calls.append(("recording", entry)),
    )
    monkeypatch.setattr(router.sessions, "pull_session_reports", lambda event, deps: calls.append(("session", event)))
    return calls


def changed(event: Any, **changes: Any) -> Any:
    return dataclasses.replace(event, **changes)


def test_entry_ready_orders_captions_from_the_re_read_entry(harness: Harness, session_calls: list[Any]) -> None:
    outcome = handle_event(entry_ready_event(), harness.deps)

    assert outcome is RouteOutcome.HANDLED
    assert harness.kaltura.calls[0] == ("entries.get", ("1_entry",))
    assert len(harness.kaltura.adds()) == 1
    assert session_calls == []


def test_a_meeting_recording_also_goes_to_the_session_reports(harness: Harness, session_calls: list[Any]) -> None:
    harness.kaltura.entries["1_entry"]["adminTags"] = "recorded, KalturaMeeting"

    handle_event(entry_ready_event(), harness.deps)

    ((what, entry),) = session_calls
    assert (what, entry.id) == ("recording", "1_entry")


def test_session_ended_goes_to_the_session_reports(harness: Harness, session_calls: list[Any]) -> None:
    event = changed(entry_ready_event(), kind=EventKind.SESSION_ENDED)

    assert handle_event(event, harness.deps) is RouteOutcome.HANDLED
    assert [what for what, _ in session_calls] == ["session"]


def test_vendor_task_status_updates_the_task_row(harness: Harness) -> None:
    handle_event(task_event(42, 3, updated_at=1), harness.deps)

    assert harness.ledger.items[(f"task#{PARTNER_ID}#42", "task")]["state"] == "processing"


def test_other_events_are_ignored(harness: Harness) -> None:
    outcome = handle_event(changed(entry_ready_event(), kind=EventKind.OTHER), harness.deps)

    assert outcome is RouteOutcome.IGNORED
    assert harness.kaltura.calls == []


def test_an_entry_deleted_before_handling_is_done(harness: Harness) -> None:
    outcome = handle_event(entry_ready_event("1_gone"), harness.deps)

    assert outcome is RouteOutcome.HANDLED
    assert harness.kaltura.adds() == []


def test_entry_ready_without_an_entry_id_is_malformed(harness: Harness) -> None:
    with pytest.raises(MalformedEventError):
        handle_event(changed(entry_ready_event(), entry_id=None, object_id=None), harness.deps)


def test_permanent_kaltura_error_is_recorded_alerted_once_and_not_retried(harness: Harness) -> None:
    failing = api_error("FEATURE_FORBIDDEN")
    harness.kaltura.list_caption_catalog_items = _raise(failing)
    harness = harness.with_config()  # rebuild the client view over the patched fake

    outcomes = [handle_event(entry_ready_event(dedupe_key=f"k{n}"), harness.deps) for n in range(2)]

    failures = harness.rows(f"failure#{PARTNER_ID}")
    (alert,) = [json.loads(a.message) for a in harness.alerts.published]
    assert outcomes == [RouteOutcome.FAILED_PERMANENTLY] * 2
    assert len(failures) == 2
    assert {row["code"] for row in failures.values()} == {"FEATURE_FORBIDDEN"}
    assert alert["alert"] == "automation_failed"
    assert alert["details"]["code"] == "FEATURE_FORBIDDEN"


@pytest.mark.parametrize(
    "error",
    [
        KalturaTransportError("HTTP 503"),
        api_error("ACTION_BLOCKED"),
        RetryLaterError("in flight"),
        ConfigError("partners.1", "missing"),
        KalturaConfigurationError("admin_secret", "required"),
    ],
    ids=["transport", "rate-limited", "retry-later", "config", "kaltura-config"],
)
def test_retryable_and_configuration_errors_propagate(harness: Harness, error: Exception) -> None:
    harness.kaltura.get_entry = _raise(error)
    harness = harness.with_config()

    with pytest.raises(type(error)):
        handle_event(entry_ready_event(), harness.deps)
    assert harness.rows("failure#") == {}


def test_already_done_kaltura_error_counts_as_done(harness: Harness) -> None:
    harness.kaltura.get_entry = _raise(api_error("ENTRY_VENDOR_TASK_DUPLICATION"))
    harness = harness.with_config()

    assert handle_event(entry_ready_event(), harness.deps) is RouteOutcome.ALREADY_DONE


def _raise(error: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail
