"""Each caption rule proven end to end: one stack, a partner with every rule configured, one qualifying entry and one
entry per rule that breaks only that rule, all notified through the real webhook and handled by the worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kauto.models import BodyFormat, EventKind, KalturaEvent
from kauto_local.simulator.entries import add_caption_asset
from product_stack import PARTNER_ID, ProductStack, captions_config, without_kaltura_backoff, worker_stack

pytestmark = pytest.mark.integration

RULES = captions_config(
    media_types=[1],
    min_duration_seconds=60,
    max_duration_seconds=3600,
    include_categories=["Lectures"],
    exclude_categories=["Lectures>Private"],
    include_tags=["captions"],
    exclude_tags=["no-captions"],
    include_admin_tags=["reach"],
    exclude_admin_tags=["skip-reach"],
    skip_if_caption_exists=True,
)
QUALIFYING = {
    "media_type": 1,
    "duration": 300,
    "categories": "Lectures>Physics",
    "categories_ids": "301",
    "tags": "captions, physics",
    "admin_tags": "reach",
}
# Entry name -> (what differs from the qualifying entry, the skip reason recorded).
BREAKS_ONE_RULE: dict[str, tuple[dict[str, Any], str]] = {
    "audio podcast": ({"media_type": 5}, "media_type"),
    "short clip": ({"duration": 30}, "too_short"),
    "all-day stream": ({"duration": 4000}, "too_long"),
    "sales pitch": ({"categories": "Sales", "categories_ids": "400"}, "category_not_included"),
    "private lecture": ({"categories": "Lectures>Private>HR", "categories_ids": "302"}, "category_excluded"),
    "untagged": ({"tags": "physics"}, "tag_not_included"),
    "opted out": ({"tags": "captions, no-captions"}, "tag_excluded"),
    "no admin tag": ({"admin_tags": ""}, "admin_tag_not_included"),
    "admin opted out": ({"admin_tags": "reach,skip-reach"}, "admin_tag_excluded"),
}


@pytest.fixture(autouse=True)
def fresh_aws(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto keeps its state per process: moto_aws resets it, so every test creates a fresh stack.
    without_kaltura_backoff(monkeypatch)


@pytest.fixture
def stack() -> Iterator[ProductStack]:
    with worker_stack(RULES) as stack:
        yield stack


def decisions(stack: ProductStack, entry_id: str) -> list[dict[str, Any]]:
    rows = stack.ledger_items(f"caption#{PARTNER_ID}#{entry_id}")
    return [row for (_, sk), row in rows.items() if sk.startswith("decision#")]


def test_each_rule_skips_only_the_entry_that_breaks_it(stack: ProductStack) -> None:
    qualifying = stack.sim.add_entry(PARTNER_ID, name="qualifying", **QUALIFYING)
    breaking = {
        name: (stack.sim.add_entry(PARTNER_ID, name=name, **{**QUALIFYING, **changes}), reason)
        for name, (changes, reason) in BREAKS_ONE_RULE.items()
    }
    for entry_id in [qualifying.id, *(entry.id for entry, _ in breaking.values())]:
        stack.entry_ready(entry_id)

    report = stack.poller.drain()

    (task,) = stack.tasks()
    assert report.failed == 0 and report.empty
    assert task.entry_id == qualifying.id
    for name, (entry, reason) in breaking.items():
        (decision,) = decisions(stack, entry.id)
        assert (decision["outcome"], decision["reason"]) == ("skipped", reason), name


@pytest.mark.parametrize(("language", "ordered"), [("English", False), ("Spanish", True)])
def test_an_existing_caption_skips_only_in_the_wanted_language(
    stack: ProductStack, language: str, ordered: bool
) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="captioned", **QUALIFYING)
    add_caption_asset(
        stack.sim.core, stack.sim.entry(entry.id), language=language, caption_format="1", at=int(time.time())
    )

    stack.entry_ready(entry.id)
    stack.poller.drain()

    (decision,) = decisions(stack, entry.id)
    assert len(stack.tasks()) == (1 if ordered else 0)
    assert decision["outcome"] == ("ordered" if ordered else "skipped")
    assert decision["reason"] == (None if ordered else "caption_exists")


def test_a_temporary_replacement_entry_is_never_captioned(stack: ProductStack) -> None:
    original = stack.sim.add_entry(PARTNER_ID, name="original", **QUALIFYING)
    replacement = stack.sim.add_entry(PARTNER_ID, name="replacement", replaced_entry_id=original.id, **QUALIFYING)
    # Through the webhook (which already refuses it as an entry-ready event, docs/kaltura.md#recognising-events) ...
    stack.entry_ready(replacement.id)
    # ... and as the sweep would enqueue it, straight to the worker, which re-reads the entry and skips it.
    sweep_built = KalturaEvent(
        kind=EventKind.ENTRY_READY,
        partner_id=PARTNER_ID,
        dedupe_key=f"sweep:{PARTNER_ID}:entry:{replacement.id}",
        job_id=None,
        template_id=None,
        template_system_name=None,
        event_type=None,
        event_object_type=None,
        object_type="KalturaMediaEntry",
        object_id=replacement.id,
        entry_id=replacement.id,
        status="2",
        fields={"id": replacement.id, "status": 2},
        body_format=BodyFormat.SWEEP,
        received_at=int(time.time()),
    )
    stack.send_raw(sweep_built.to_json())

    report = stack.poller.drain()

    (decision,) = decisions(stack, replacement.id)
    assert report.failed == 0
    assert stack.tasks() == []
    assert (decision["outcome"], decision["reason"]) == ("skipped", "replacement_entry")


def test_a_repeated_ready_of_the_same_content_is_decided_once(stack: ProductStack) -> None:
    skipped = stack.sim.add_entry(PARTNER_ID, name="short", **{**QUALIFYING, "duration": 30})
    ordered = stack.sim.add_entry(PARTNER_ID, name="lecture", **QUALIFYING)
    stack.entry_ready(skipped.id, times=2)
    stack.entry_ready(ordered.id, times=2)
    stack.poller.drain()
    calls_before = len(stack.sim.calls)

    stack.entry_ready(skipped.id)
    stack.entry_ready(ordered.id)
    stack.poller.drain()

    api_calls = [(call.service.lower(), call.action) for call in stack.sim.calls[calls_before:]]
    assert [d["reason"] for d in decisions(stack, skipped.id)] == ["too_short"]
    assert [d["outcome"] for d in decisions(stack, ordered.id)] == ["ordered"]
    assert len(stack.tasks()) == 1
    # Only the re-reads of the entries: no catalog, caption or task lookups, no order.
    assert api_calls == [("baseentry", "get"), ("baseentry", "get")]


def test_a_new_version_of_ordered_content_is_not_ordered_again(stack: ProductStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="lecture", **QUALIFYING)
    stack.entry_ready(entry.id)
    stack.poller.drain()
    stack.sim.update_entry(entry.id, version=1, updated_at=int(time.time()) + 60)

    stack.entry_ready(entry.id)
    stack.poller.drain()

    outcomes = sorted(d["outcome"] for d in decisions(stack, entry.id))
    assert outcomes == ["already_ordered", "ordered"]
    assert len(stack.tasks()) == 1
