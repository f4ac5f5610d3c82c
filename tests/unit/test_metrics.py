"""Counts collected per invocation and written once at its end (``kauto.metrics``), as CloudWatch reads them."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from helpers import FakeLambdaContext
from kauto.metrics import InvocationMetrics


def documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def counted(docs: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric, its dimensions and their values) -> value, read the way CloudWatch reads EMF."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Test"
            for dimension_set in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    assert metric["Unit"] == "Count"
                    key = (metric["Name"], tuple((name, doc[name]) for name in dimension_set))
                    assert key not in found, f"{key} twice"
                    found[key] = doc[metric["Name"]]
    return found


def test_an_invocation_writes_one_document_with_every_count_and_the_cold_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = InvocationMetrics(namespace="Test", service="svc")
    written_during: list[str] = []

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> str:
        metrics.count("NotificationAccepted", kind="entry_ready")
        metrics.count("NotificationAccepted", kind="entry_ready")
        metrics.count("ClaimTaken")
        written_during.append(capsys.readouterr().out)
        return "done"

    assert handler({}, FakeLambdaContext(function_name="webhook")) == "done"

    docs = documents(capsys.readouterr().out)
    assert written_during == [""]
    assert len(docs) == 1
    assert counted(docs) == {
        ("ColdStart", (("function_name", "webhook"), ("service", "svc"))): 1,
        ("NotificationAccepted", (("kind", "entry_ready"), ("service", "svc"))): 2,
        ("ClaimTaken", (("service", "svc"),)): 1,
    }

    handler({}, FakeLambdaContext(function_name="webhook"))
    assert [name for name, _ in counted(documents(capsys.readouterr().out))] == ["NotificationAccepted", "ClaimTaken"]


def test_counts_with_other_values_of_a_dimension_go_into_as_few_more_documents_as_needed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = InvocationMetrics(namespace="Test", service="")

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.count("CaptionDecision", outcome="ordered")
        metrics.count("CaptionDecision", outcome="skipped")
        metrics.count("CaptionDecision", outcome="ordered")
        metrics.count("RecordFailed", error="KalturaTransportError")
        metrics.count("SweepItemsEnqueued", 5, part="entries")

    handler({}, FakeLambdaContext(function_name="worker"))

    docs = documents(capsys.readouterr().out)
    assert len(docs) == 2  # ``outcome`` has two values: EMF holds one per document
    assert counted(docs) == {
        ("ColdStart", (("function_name", "worker"),)): 1,
        ("CaptionDecision", (("outcome", "ordered"),)): 2,
        ("CaptionDecision", (("outcome", "skipped"),)): 1,
        ("RecordFailed", (("error", "KalturaTransportError"),)): 1,
        ("SweepItemsEnqueued", (("part", "entries"),)): 5,
    }


def test_the_counts_are_written_when_the_handler_raises(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = InvocationMetrics(namespace="Test", service="")

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.count("RecordFailed", error="ValueError")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        handler({}, FakeLambdaContext())

    assert ("RecordFailed", (("error", "ValueError"),)) in counted(documents(capsys.readouterr().out))


def test_a_count_outside_an_invocation_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = InvocationMetrics(namespace="Test", service="svc")

    metrics.count("DedupeReleaseFailed")

    assert counted(documents(capsys.readouterr().out)) == {("DedupeReleaseFailed", (("service", "svc"),)): 1}


def test_concurrent_invocations_keep_their_own_counts(capsys: pytest.CaptureFixture[str]) -> None:
    # The local runner invokes handlers on threads of one process: no invocation's counts join another's document.
    metrics = InvocationMetrics(namespace="Test", service="")
    both_counting = threading.Barrier(2, timeout=10)

    @metrics.log_metrics
    def handler(event: dict[str, str], context: Any) -> None:
        metrics.count("Handled", kind=event["kind"])
        both_counting.wait()

    threads = [threading.Thread(target=handler, args=({"kind": kind}, FakeLambdaContext())) for kind in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    per_document = [counted([doc]) for doc in documents(capsys.readouterr().out)]
    handled = [
        {key: value for key, value in found.items() if key[0] == "Handled"}
        for found in per_document
        if any(key[0] == "Handled" for key in found)
    ]
    assert sorted(handled, key=str) == [
        {("Handled", (("kind", "a"),)): 1},
        {("Handled", (("kind", "b"),)): 1},
    ]
