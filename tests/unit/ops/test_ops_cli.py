"""kauto-ops on fakes: the commands it is built from, explain's next steps for stuck, refused and failed work, and the
grouping of failures with the command that replays each."""

from __future__ import annotations

import argparse
import io

import pytest
from kauto_local.fakes import InMemoryLedger
from kauto_ops import backfill
from kauto_ops.cli import build_parser, main
from kauto_ops.dlq import DeadLetter
from kauto_ops.explain import Context, explain_entry, explain_session, explain_task
from kauto_ops.failures import DEAD_LETTER_QUEUES, dead_letter_groups, duration, failed_tasks, permanent_failures

PARTNER = 1234567
NOW = 1_767_254_400.0  # 2026-01-01T08:00:00Z


@pytest.fixture
def ledger() -> InMemoryLedger:
    return InMemoryLedger(clock=lambda: NOW)


def context(ledger: InMemoryLedger, facts: list[dict[str, object]] | None = None) -> Context:
    return Context(PARTNER, ledger, facts or [], "kauto", NOW)


def test_kauto_ops_has_the_operator_commands_and_the_backfill_ones() -> None:
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))

    assert set(commands.choices) == {
        "explain",
        "failures",
        "replay",
        "weekly",
        "sessions",
        "replay-dlq",
        "replay-failed-invocations",
        "smoke",
    }
    assert set(commands.choices) >= set(
        next(a for a in backfill.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    )


def test_bad_arguments_exit_2_with_the_usage() -> None:
    err = io.StringIO()
    assert main(["explain", "entry", "1_abc"], out=io.StringIO(), err=err) == 2  # --partner is required


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("24h", 86400), ("7d", 604800)])
def test_since_takes_minutes_hours_and_days(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["24", "0h", "1w", "-3d", ""])
def test_since_refuses_other_ages(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_a_claim_older_than_the_worker_timeout_is_explained_as_stuck_with_its_replay(ledger: InMemoryLedger) -> None:
    ledger.claim(f"caption#{PARTNER}#1_abc", "item#55", {"state": "claimed", "owner": "x", "claimed_at": NOW - 3600})

    steps = explain_entry(context(ledger), "1_abc").next_steps

    assert any(step.startswith("Stuck: the order was claimed 3600 s ago") for step in steps)
    assert any(f"kauto-ops replay entry 1_abc --partner {PARTNER} --stack kauto" in step for step in steps)


def test_a_credit_refusal_says_to_renew_the_credit(ledger: InMemoryLedger) -> None:
    ledger.put(
        f"caption#{PARTNER}#1_abc",
        "decision#v0",
        {"outcome": "credit", "reason": "EXCEEDED_MAX_CREDIT_ALLOWED", "decided_at": int(NOW), "event": "k"},
    )

    explanation = explain_entry(context(ledger), "1_abc")

    assert explanation.state == [
        "decision v0: credit because EXCEEDED_MAX_CREDIT_ALLOWED at 2026-01-01T08:00:00Z, event k"
    ]
    assert explanation.next_steps[0].startswith("REACH refused for credit (EXCEEDED_MAX_CREDIT_ALLOWED): renew")


def test_an_errored_task_is_never_reordered_and_says_so(ledger: InMemoryLedger) -> None:
    ledger.put(
        f"task#{PARTNER}#77",
        "task",
        {"state": "error", "task_id": 77, "entry_id": "1_abc", "catalog_item_id": 55, "updated_at": int(NOW)},
    )
    facts: list[dict[str, object]] = [
        {"fact_id": "a", "at": "2026-01-01T08:00:00.000Z", "kind": "task_status", "subject_type": "task",
         "subject_id": "77", "task_id": 77, "state": "error"},
        {"fact_id": "b", "at": "2026-01-01T08:00:00.100Z", "kind": "alert_published", "subject_type": "task",
         "subject_id": "77", "task_id": 77, "alert": "reach_task_error"},
    ]  # fmt: skip

    explanation = explain_task(context(ledger, facts), "77")

    assert [fact["kind"] for fact in explanation.facts] == ["task_status", "alert_published"]
    assert explanation.next_steps[0].startswith("REACH task 77 ended ERROR: the automation never orders it again")


def test_a_failed_session_pull_names_its_error_and_the_replay(ledger: InMemoryLedger) -> None:
    ledger.put(f"session#{PARTNER}#1_room", "cp1", {"state": "failed", "error": "ReportStoreError", "trigger": "k"})

    explanation = explain_session(context(ledger), "cp1", "1_room")

    assert explanation.state == ["session cp1 of room 1_room: failed, trigger k, error ReportStoreError"]
    assert explanation.next_steps == [
        "The last pull failed (ReportStoreError); the queue retries it. To pull again now: "
        f"kauto-ops replay session cp1 --room 1_room --partner {PARTNER} --stack kauto"
    ]


def test_permanent_failures_are_grouped_by_kind_and_code_within_the_window(ledger: InMemoryLedger) -> None:
    for entry, failed_at in (("1_a", NOW - 60), ("1_b", NOW - 120), ("1_old", NOW - 90_000)):
        ledger.put(
            f"failure#{PARTNER}",
            f"entry_ready#{entry}#{PARTNER}:job:{entry}",
            {"kind": "entry_ready", "object_id": entry, "code": "SERVICE_FORBIDDEN", "failed_at": int(failed_at)},
        )
    ledger.put(
        f"failure#{PARTNER}",
        f"vendor_task_status#9#{PARTNER}:job:9",
        {"kind": "vendor_task_status", "object_id": "9", "code": "INVALID_KS", "failed_at": int(NOW)},
    )

    groups = permanent_failures(ledger, PARTNER, NOW - 86_400, "")

    assert {group.heading: [command for _, command in group.items] for group in groups} == {
        f"partner {PARTNER}: entry_ready failed permanently with SERVICE_FORBIDDEN": [
            f"kauto-ops replay entry 1_a --partner {PARTNER}",
            f"kauto-ops replay entry 1_b --partner {PARTNER}",
        ],
        f"partner {PARTNER}: vendor_task_status failed permanently with INVALID_KS": [
            f"kauto-ops replay task 9 --partner {PARTNER}"
        ],
    }


def test_errored_tasks_of_the_window_are_listed_with_their_explain_command() -> None:
    facts: list[dict[str, object]] = [
        {"kind": "task_status", "subject_id": "7", "entry_id": "1_a", "state": "error", "at": "2026-01-01T07:00:00Z"},
        {"kind": "task_status", "subject_id": "8", "entry_id": "1_b", "state": "ready", "at": "2026-01-01T07:00:00Z"},
        {"kind": "task_status", "subject_id": "9", "entry_id": "1_c", "state": "error", "at": "2025-12-01T07:00:00Z"},
    ]

    [group] = failed_tasks(facts, PARTNER, NOW - 86_400, "")

    assert group.heading == f"partner {PARTNER}: REACH tasks ended ERROR"
    assert [command for _, command in group.items] == [f"kauto-ops explain task 7 --partner {PARTNER}"]


def test_dead_letters_are_grouped_by_content_each_with_its_own_replay_command() -> None:
    letters = [
        DeadLetter("m1", 5, "kind=entry_ready partner_id=1", ("entry_ready", 1, "1_a")),
        DeadLetter("m2", 5, "kind=entry_ready partner_id=1", ("entry_ready", 1, "1_b")),
        DeadLetter("m3", 5, "<12 bytes>"),
    ]

    groups = dead_letter_groups(
        letters, DEAD_LETTER_QUEUES["EventsDeadLetterQueue"], "EventsDeadLetterQueue", " --stack s"
    )

    assert [(group.heading.strip(), len(group.items)) for group in groups] == [
        ("kind=entry_ready partner_id=1", 2),
        ("<12 bytes>", 1),
    ]
    assert groups[0].items[1] == (
        "message m2, received 5x; kauto-ops explain entry 1_b --partner 1 --stack s",
        "kauto-ops replay-dlq --queue events --message-id m2 --stack s",
    )
