"""Caption ordering on fakes: exactly once (repeats, races, crashes, stale claims), credit, dry run, outcomes."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kauto.automations.captions import ClaimState, Outcome, caption_pk, item_sk, order_captions
from kauto.automations.errors import RetryLaterError
from kauto.kaltura import Entry, KalturaTransportError
from reach_fakes import ITEM_ID, PARTNER_ID, Harness, api_error, build_harness, catalog_harness, entry_ready_event

PK = caption_pk(PARTNER_ID, "1_entry")
SK = item_sk(ITEM_ID)


@pytest.fixture
def harness() -> Harness:
    return catalog_harness()


def decide(harness: Harness, entry_id: str = "1_entry", dedupe_key: str = "1234567:job:1") -> Any:
    entry = Entry.from_api(harness.kaltura.entries[entry_id])
    return order_captions(entry_ready_event(entry_id, dedupe_key=dedupe_key), entry, harness.deps)


def decisions(harness: Harness, entry_id: str = "1_entry") -> list[dict[str, Any]]:
    pk = caption_pk(PARTNER_ID, entry_id)
    return [item for (p, s), item in harness.ledger.items.items() if p == pk and s.startswith("decision#")]


def published(harness: Harness) -> list[dict[str, Any]]:
    return [json.loads(alert.message) for alert in harness.alerts.published]


def test_qualifying_entry_is_ordered_and_recorded(harness: Harness) -> None:
    decision = decide(harness)

    (add,) = harness.kaltura.adds()
    row = harness.ledger.items[(PK, SK)]
    (recorded,) = decisions(harness)
    task_row = harness.ledger.items[(f"task#{PARTNER_ID}#{decision.task_id}", "task")]
    assert add == ("1_entry", ITEM_ID, None)
    assert decision.outcome is Outcome.ORDERED
    assert row["state"] == ClaimState.ORDERED
    assert row["task_id"] == decision.task_id
    assert recorded["outcome"] == "ordered"
    assert recorded["task_id"] == decision.task_id
    assert task_row["state"] == "pending"
    assert task_row["entry_name"] == "Quarterly all-hands"


def test_the_same_entry_ready_three_times_orders_once(harness: Harness) -> None:
    outcomes = [decide(harness, dedupe_key=f"1234567:job:{n}").outcome for n in range(3)]

    assert outcomes == [Outcome.ORDERED, Outcome.REPEATED, Outcome.REPEATED]
    assert len(harness.kaltura.adds()) == 1


def test_a_new_version_of_the_content_is_decided_again_but_not_ordered_twice(harness: Harness) -> None:
    decide(harness)
    harness.kaltura.entries["1_entry"]["version"] = 1

    decision = decide(harness)

    assert decision.outcome is Outcome.ALREADY_ORDERED
    assert len(harness.kaltura.adds()) == 1
    assert {d["outcome"] for d in decisions(harness)} == {"ordered", "already_ordered"}


def test_concurrent_deliveries_order_once(harness: Harness) -> None:
    workers = 3
    barrier = threading.Barrier(workers)
    results: list[Any] = []
    lock = threading.Lock()

    def deliver(n: int) -> None:
        barrier.wait()
        try:
            outcome: Any = decide(harness, dedupe_key=f"1234567:job:{n}").outcome
        except RetryLaterError as error:
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whoever had to wait retries later: by then the order is recorded.
    retried = [decide(harness).outcome for result in results if isinstance(result, RetryLaterError)]

    assert len(harness.kaltura.adds()) == 1
    assert results.count(Outcome.ORDERED) == 1
    others = [r for r in results if r is not Outcome.ORDERED and not isinstance(r, RetryLaterError)]
    assert set(others) <= {Outcome.ADOPTED, Outcome.ALREADY_ORDERED, Outcome.REPEATED}
    assert set(retried) <= {Outcome.REPEATED, Outcome.ALREADY_ORDERED}


def test_a_fresh_claim_of_another_worker_without_a_task_retries_later(harness: Harness) -> None:
    harness.ledger.claim(PK, SK, {"state": "claimed", "owner": "other", "claimed_at": int(harness.clock())})

    with pytest.raises(RetryLaterError, match="in flight"):
        decide(harness)

    assert harness.kaltura.adds() == []
    assert harness.ledger.items[(PK, SK)]["owner"] == "other"


def test_a_stale_claim_without_a_task_is_taken_over_and_ordered_once(harness: Harness) -> None:
    harness.ledger.claim(PK, SK, {"state": "claimed", "owner": "dead", "claimed_at": int(harness.clock())})
    harness.clock.advance(121)  # past the worker timeout: the owner is certainly gone

    decision = decide(harness)

    row = harness.ledger.items[(PK, SK)]
    assert decision.outcome is Outcome.ORDERED
    assert len(harness.kaltura.adds()) == 1
    assert row["state"] == "ordered"
    assert row["owner"] != "dead"


def test_worker_that_died_after_add_does_not_order_again(harness: Harness) -> None:
    harness.kaltura.lose_add_response = KalturaTransportError("entryVendorTask.add timed out")

    with pytest.raises(KalturaTransportError):
        decide(harness)
    assert harness.ledger.items[(PK, SK)]["state"] == "claimed"  # the task exists, the ledger doesn't know yet
    retry = decide(harness)

    assert retry.outcome is Outcome.ADOPTED
    assert len(harness.kaltura.adds()) == 1
    assert harness.ledger.items[(PK, SK)]["task_id"] == retry.task_id == next(iter(harness.kaltura.tasks))


def test_an_existing_task_ordered_outside_the_automation_is_adopted(harness: Harness) -> None:
    task_id = harness.kaltura.add_task("1_entry", status=3)

    decision = decide(harness)

    assert decision.outcome is Outcome.ADOPTED
    assert decision.task_id == task_id
    assert harness.kaltura.adds() == []
    assert harness.ledger.items[(PK, SK)]["ordered_via"] == "existing"


def test_duplication_error_records_the_existing_task(harness: Harness) -> None:
    def create_elsewhere() -> None:
        harness.kaltura.before_add = None
        harness.kaltura.add_task("1_entry", status=1)

    harness.kaltura.before_add = create_elsewhere
    harness.kaltura.add_failures.append(api_error("ENTRY_VENDOR_TASK_DUPLICATION"))

    decision = decide(harness)

    assert decision.outcome is Outcome.ADOPTED
    assert harness.ledger.items[(PK, SK)]["state"] == "ordered"


def test_dry_run_orders_nothing_and_records_what_it_would_do(harness: Harness) -> None:
    dry = harness.with_config(captions={"dry_run": True})

    decision = decide(dry)

    (recorded,) = decisions(dry)
    assert decision.outcome is Outcome.DRY_RUN
    assert harness.kaltura.adds() == []
    assert (PK, SK) not in harness.ledger.items
    assert recorded["outcome"] == "dry_run"
    assert recorded["catalog_item_id"] == ITEM_ID
    assert recorded["dry_run"] is True


def test_leaving_dry_run_orders_the_content_decided_in_dry_run(harness: Harness) -> None:
    decide(harness.with_config(captions={"dry_run": True}))

    decision = decide(harness)

    assert decision.outcome is Outcome.ORDERED


def test_disabled_captions_touch_nothing() -> None:
    harness = build_harness({"captions": {"enabled": False}})
    harness.kaltura.add_entry()

    decision = decide(harness)

    assert decision.outcome is Outcome.DISABLED
    assert harness.kaltura.calls == []
    assert harness.ledger.items == {}


def test_credit_exhausted_alerts_once_for_many_entries_and_does_not_retry(harness: Harness) -> None:
    for n in range(4):
        harness.kaltura.add_entry(f"1_e{n}")
        harness.kaltura.add_failures.append(api_error("EXCEEDED_MAX_CREDIT_ALLOWED"))

    outcomes = [decide(harness, f"1_e{n}").outcome for n in range(4)]

    (alert,) = published(harness)
    assert outcomes == [Outcome.CREDIT] * 4
    assert alert["alert"] == "reach_credit"
    assert alert["details"]["code"] == "EXCEEDED_MAX_CREDIT_ALLOWED"
    assert alert["period"] == "2026-01-01"
    # Claims are released: once the credit is renewed, the next event orders.
    assert harness.rows("caption#") and all(k[1].startswith("decision#") for k in harness.rows("caption#"))
    assert decide(harness, "1_e0").outcome is Outcome.ORDERED


def test_credit_alert_comes_again_in_the_next_period(harness: Harness) -> None:
    harness.kaltura.add_failures.append(api_error("CREDIT_EXPIRED"))
    decide(harness)
    harness.clock.advance(24 * 3600)
    harness.kaltura.add_entry("1_other")
    harness.kaltura.add_failures.append(api_error("CREDIT_EXPIRED"))

    decide(harness, "1_other")

    assert [alert["period"] for alert in published(harness)] == ["2026-01-01", "2026-01-02"]


def test_entry_not_ready_for_reach_retries_later_and_releases_the_claim(harness: Harness) -> None:
    harness.kaltura.add_failures.append(api_error("ENTRY_NOT_READY"))

    with pytest.raises(RetryLaterError):
        decide(harness)

    assert (PK, SK) not in harness.ledger.items
    assert decide(harness).outcome is Outcome.ORDERED


def test_an_entry_still_converting_retries_later(harness: Harness) -> None:
    harness.kaltura.entries["1_entry"]["status"] = 1

    with pytest.raises(RetryLaterError, match="converting"):
        decide(harness)

    assert harness.kaltura.adds() == []
    assert decisions(harness) == []


def test_a_deleted_entry_is_skipped(harness: Harness) -> None:
    harness.kaltura.entries["1_entry"]["status"] = 3

    decision = decide(harness)

    assert (decision.outcome, decision.reason) == (Outcome.SKIPPED, "entry_not_ready")


def test_an_entry_kaltura_refuses_is_recorded_without_an_alert(harness: Harness) -> None:
    harness.kaltura.add_failures.append(api_error("ENTRY_TOO_SHORT"))

    decision = decide(harness)

    assert (decision.outcome, decision.reason) == (Outcome.REJECTED, "ENTRY_TOO_SHORT")
    assert published(harness) == []
    assert (PK, SK) not in harness.ledger.items


def test_a_catalog_item_not_enabled_alerts_a_person(harness: Harness) -> None:
    harness.kaltura.add_failures.append(api_error("CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT"))

    decision = decide(harness)

    (alert,) = published(harness)
    assert decision.outcome is Outcome.REJECTED
    assert alert["alert"] == "reach_order_setup"
    assert alert["details"]["code"] == "CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT"


def test_rate_limited_add_keeps_the_claim_and_propagates(harness: Harness) -> None:
    harness.kaltura.add_failures.append(api_error("ACTION_BLOCKED"))

    with pytest.raises(Exception, match="ACTION_BLOCKED"):
        decide(harness)

    assert harness.ledger.items[(PK, SK)]["state"] == "claimed"


def test_catalog_item_selected_by_the_configured_criteria_lowest_id_first() -> None:
    harness = build_harness(
        {"captions": {"catalog_item": {"service_type": 1, "source_language": "Spanish", "turn_around_time": 2}}}
    )
    harness.kaltura.add_entry()
    harness.kaltura.add_catalog_item(10, serviceType=2, sourceLanguage="Spanish", turnAroundTime=2)
    harness.kaltura.add_catalog_item(30, serviceType=1, sourceLanguage="Spanish", turnAroundTime=2)
    harness.kaltura.add_catalog_item(20, serviceType=1, sourceLanguage="Spanish", turnAroundTime=2)
    harness.kaltura.add_catalog_item(5, serviceType=1, sourceLanguage="English", turnAroundTime=2)

    decision = decide(harness)

    assert decision.catalog_item_id == 20
    assert harness.kaltura.adds() == [("1_entry", 20, None)]


def test_catalog_items_are_listed_once_per_invocation(harness: Harness) -> None:
    harness.kaltura.add_entry("1_second")

    decide(harness)
    decide(harness, "1_second")

    assert harness.kaltura.count("reach.list_caption_catalog_items") == 1


def test_configured_catalog_item_id_and_reach_profile_are_used() -> None:
    harness = build_harness({"captions": {"catalog_item_id": 77, "reach_profile_id": 9}})
    harness.kaltura.add_entry()
    harness.kaltura.add_catalog_item(77)

    decide(harness)

    assert harness.kaltura.adds() == [("1_entry", 77, 9)]


def test_no_enabled_catalog_item_skips_and_alerts_once_per_period() -> None:
    harness = build_harness({"captions": {"catalog_item_id": 77}})
    harness.kaltura.add_entry()
    harness.kaltura.add_entry("1_second")

    first = decide(harness)
    decide(harness, "1_second")

    (alert,) = published(harness)
    assert (first.outcome, first.reason) == (Outcome.SKIPPED, "no_catalog_item")
    assert alert["alert"] == "reach_order_setup"
    assert harness.kaltura.adds() == []


def test_order_recorded_in_the_ledger_short_circuits_a_new_content_version(harness: Harness) -> None:
    harness.ledger.claim(PK, SK, {"state": "done", "task_id": 5, "caption_asset_id": "1_cap"})

    decision = decide(harness)

    assert (decision.outcome, decision.task_id) == (Outcome.ALREADY_ORDERED, 5)
    assert harness.kaltura.count("reach.list_tasks") == 0
