"""Counts collected over one invocation and written once at its end, as CloudWatch embedded metric format (EMF).

Why not Powertools' ``Metrics`` as is: it holds one set of dimension values per document, shared by every metric
and every thread, while our counts carry their own dimensions (``kind``, ``reason``, ``outcome``...) and a batch
mixes them (one record ``ordered``, the next ``skipped``). Its ``log_metrics`` shape is kept: :meth:`log_metrics`
wraps a handler, collects every :meth:`InvocationMetrics.count` made during the call (summed per metric and
dimension values), adds the ``ColdStart`` count on an instance's first invocation, and prints at the end, also when
the handler raises. One document holds every count whose dimension values agree with the others'; EMF keeps one
value per key in a document, so counts of the same name or dimension with different values go into as few further
documents as that takes. The webhook (one delivery, one outcome per invocation) writes one document.

A count made outside a wrapped handler (an operator command, a unit test calling the domain directly, a helper
thread: threads do not inherit the invocation's context) is written at once, in its own document. The collection is
per thread (a context variable): the local runner invokes handlers concurrently in one process, and no invocation's
counts may land in another's document.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

Handler = TypeVar("Handler", bound=Callable[..., Any])
Dimensions = tuple[tuple[str, str], ...]
Counts = dict[Dimensions, dict[str, float]]

_collecting: ContextVar[Counts | None] = ContextVar("kauto_metrics_collecting", default=None)


class InvocationMetrics:
    """EMF counts in ``namespace``, with the ``service`` dimension (``POWERTOOLS_SERVICE_NAME``) when it is set."""

    def __init__(self, namespace: str | None = None, service: str | None = None) -> None:
        self.namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "KalturaAutomations"
        self.service = service if service is not None else os.environ.get("POWERTOOLS_SERVICE_NAME", "")
        self._cold = True

    def count(self, metric: str, value: float = 1, /, **dimensions: str) -> None:
        """Add ``value`` to ``metric`` with ``dimensions``: written when the invocation ends (at once outside one)."""
        key = self._dimensions(dimensions)
        counts = _collecting.get()
        if counts is None:
            self.emit({key: {metric: value}})
            return
        metrics = counts.setdefault(key, {})
        metrics[metric] = metrics.get(metric, 0) + value

    def log_metrics(self, handler: Handler) -> Handler:
        """Wrap a handler ``(event, context)``: collect its counts, write them once when it returns or raises."""

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            counts: Counts = {}
            token = _collecting.set(counts)
            if self._cold:
                self._cold = False
                function_name = getattr(context, "function_name", "") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
                counts[self._dimensions({"function_name": str(function_name)})] = {"ColdStart": 1}
            try:
                return handler(event, context, *args, **kwargs)
            finally:
                _collecting.reset(token)
                self.emit(counts)

        return wrapper  # type: ignore[return-value]

    def emit(self, counts: Counts) -> None:
        """Print ``counts`` as EMF documents, one line each (CloudWatch Logs turns them into metrics)."""
        for document in self.documents(counts):
            sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def documents(self, counts: Counts) -> list[dict[str, Any]]:
        """As few EMF documents as hold ``counts``: a group joins the first one where none of its keys differ."""
        timestamp = int(time.time() * 1000)
        documents: list[dict[str, Any]] = []
        for dimensions, metrics in counts.items():
            if not metrics:
                continue
            root = dict(dimensions) | metrics
            document = next((doc for doc in documents if _fits(doc, root)), None)
            if document is None:
                document = {"_aws": {"Timestamp": timestamp, "CloudWatchMetrics": []}}
                documents.append(document)
            document.update(root)
            document["_aws"]["CloudWatchMetrics"].append(
                {
                    "Namespace": self.namespace,
                    "Dimensions": [[name for name, _ in dimensions]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
                }
            )
        return documents

    def _dimensions(self, dimensions: Mapping[str, str]) -> Dimensions:
        merged = {name: str(value) for name, value in dimensions.items()}
        if self.service:
            merged["service"] = self.service
        return tuple(sorted(merged.items()))


def _fits(document: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    for name, value in root.items():
        if name not in document:
            continue
        if isinstance(value, str) and document[name] == value:
            continue  # the same dimension value: shared
        return False  # another value of a dimension, or a metric already counted there for other dimension values
    return True
