"""Each caption rule, proven on fakes: the entry that fails it is skipped with the rule as the reason and nothing is
ordered; the entry that passes it is ordered."""

from __future__ import annotations

from typing import Any

import pytest
from kauto.automation_config import build_automation_config
from kauto.automations.captions import Outcome, caption_pk, order_captions, rule_violation, split_tags
from kauto.kaltura import Entry
from reach_fakes import PARTNER_ID, build_harness, entry_ready_event

RULE_CASES = [
    pytest.param({}, {"replacedEntryId": "1_original"}, {}, "replacement_entry", id="replacement-entry"),
    pytest.param({"media_types": [1]}, {"mediaType": 5}, {"mediaType": 1}, "media_type", id="media-type"),
    pytest.param({"media_types": [1, 5]}, {"mediaType": 2}, {"mediaType": 5}, "media_type", id="image-not-captioned"),
    pytest.param(
        {"min_duration_seconds": 60}, {"msDuration": 59_900}, {"msDuration": 60_000}, "too_short", id="min-duration"
    ),
    pytest.param(
        {"max_duration_seconds": 3600},
        {"msDuration": 3_600_500},
        {"msDuration": 3_600_000},
        "too_long",
        id="max-duration",
    ),
    pytest.param(
        {"include_categories": ["301"]},
        {"categoriesIds": "302", "categories": "Other"},
        {"categoriesIds": "302,301"},
        "category_not_included",
        id="include-category-id",
    ),
    pytest.param(
        {"include_categories": ["Company>Town halls"]},
        {"categories": "Company>Sales"},
        {"categories": "Company>Town halls>2026"},
        "category_not_included",
        id="include-category-name-covers-subcategories",
    ),
    pytest.param(
        {"exclude_categories": ["Private"]},
        {"categories": "Lectures,private>HR"},
        {"categories": "Lectures,Private-ish"},
        "category_excluded",
        id="exclude-category",
    ),
    pytest.param(
        {"include_tags": ["Lecture"]}, {"tags": "seminar"}, {"tags": "seminar, lecture"}, "tag_not_included", id="tags"
    ),
    pytest.param(
        {"exclude_tags": ["no-captions"]}, {"tags": "a,NO-CAPTIONS"}, {"tags": "a"}, "tag_excluded", id="exclude-tags"
    ),
    pytest.param(
        {"include_admin_tags": ["captions-auto"]},
        {"adminTags": "other"},
        {"adminTags": "captions-auto"},
        "admin_tag_not_included",
        id="admin-tags",
    ),
    pytest.param(
        {"exclude_admin_tags": ["kalturameeting"]},
        {"adminTags": "kalturameeting"},
        {"adminTags": "meetingish"},
        "admin_tag_excluded",
        id="exclude-admin-tags",
    ),
]


@pytest.mark.parametrize(("rules", "failing", "passing", "reason"), RULE_CASES)
def test_rule_skips_the_failing_entry_and_orders_the_passing_one(
    rules: dict[str, Any], failing: dict[str, Any], passing: dict[str, Any], reason: str
) -> None:
    harness = build_harness({"captions": {"min_duration_seconds": None, **rules}})
    harness.kaltura.add_catalog_item()
    harness.kaltura.add_entry("1_fails", **failing)
    harness.kaltura.add_entry("1_passes", **passing)

    skipped = order_captions(entry_ready_event("1_fails"), _entry(harness, "1_fails"), harness.deps)
    ordered = order_captions(entry_ready_event("1_passes"), _entry(harness, "1_passes"), harness.deps)

    (recorded,) = [
        item
        for (pk, sk), item in harness.ledger.items.items()
        if pk == caption_pk(PARTNER_ID, "1_fails") and sk.startswith("decision#")
    ]
    assert (skipped.outcome, skipped.reason) == (Outcome.SKIPPED, reason)
    assert (recorded["outcome"], recorded["reason"]) == ("skipped", reason)
    assert ordered.outcome is Outcome.ORDERED
    assert [add[0] for add in harness.kaltura.adds()] == ["1_passes"]


@pytest.mark.parametrize(
    ("configured_language", "captions", "skipped"),
    [
        (None, [("English", 2)], True),  # the catalog item's source language
        (None, [("Spanish", 2)], False),
        ("Spanish", [("Spanish", 2)], True),
        (None, [("English", 3)], False),  # a deleted caption does not count
        (None, [("English", -1)], False),  # nor one that failed
        (None, [("english", 0)], True),  # one still being processed does
    ],
)
def test_existing_caption_in_the_wanted_language_skips(
    configured_language: str | None, captions: list[tuple[str, int]], skipped: bool
) -> None:
    harness = build_harness({"captions": {"caption_language": configured_language}})
    harness.kaltura.add_catalog_item()
    harness.kaltura.add_entry()
    for language, status in captions:
        harness.kaltura.add_caption("1_entry", language, status)

    decision = order_captions(entry_ready_event(), _entry(harness, "1_entry"), harness.deps)

    if skipped:
        assert (decision.outcome, decision.reason) == (Outcome.SKIPPED, "caption_exists")
        assert harness.kaltura.adds() == []
    else:
        assert decision.outcome is Outcome.ORDERED


def test_existing_caption_is_ignored_when_the_rule_is_off() -> None:
    harness = build_harness({"captions": {"skip_if_caption_exists": False}})
    harness.kaltura.add_catalog_item()
    harness.kaltura.add_entry()
    harness.kaltura.add_caption("1_entry", "English")

    decision = order_captions(entry_ready_event(), _entry(harness, "1_entry"), harness.deps)

    assert decision.outcome is Outcome.ORDERED
    assert harness.kaltura.count("captions.list_for_entry") == 0


def test_repeated_ready_of_the_same_content_is_not_evaluated_again() -> None:
    harness = build_harness({"captions": {"min_duration_seconds": 600}})
    harness.kaltura.add_catalog_item()
    harness.kaltura.add_entry()

    first = order_captions(entry_ready_event(), _entry(harness, "1_entry"), harness.deps)
    calls = len(harness.kaltura.calls)
    again = order_captions(entry_ready_event(dedupe_key="1234567:job:2"), _entry(harness, "1_entry"), harness.deps)

    assert (first.outcome, first.reason) == (Outcome.SKIPPED, "too_short")
    assert (again.outcome, again.reason) == (Outcome.REPEATED, "too_short")
    assert len(harness.kaltura.calls) == calls


def test_rule_violation_on_a_clean_entry_is_none() -> None:
    rules = build_automation_config({}).defaults.captions
    entry = Entry.from_api({"id": "1_x", "mediaType": 1, "msDuration": 125_400, "status": 2})

    assert rule_violation(entry, rules) is None


def test_split_tags_normalizes_kaltura_tag_lists() -> None:
    assert split_tags(" Lecture, seminar ,,LECTURE") == frozenset({"lecture", "seminar"})
    assert split_tags(None) == frozenset()


def _entry(harness: Any, entry_id: str) -> Entry:
    return Entry.from_api(harness.kaltura.entries[entry_id])
