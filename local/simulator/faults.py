"""Fault injection per route: latency, 5xx, redirects, ``ACTION_BLOCKED``, expired KS, connection reset, truncated
body.

A rule targets a route: ``"service/action"`` (case-insensitive, ``"report/*"`` for a whole service), ``"multirequest"``,
``"microservice/generate"`` / ``"microservice/serve"``, a path prefix starting with ``/`` (e.g. ``"/api/v1/"``), or
``"*"``. It fires for the next ``count`` matching calls, or with ``probability`` from a seeded RNG, or (neither)
on every matching call until removed.

Transport faults (latency, status, redirect, reset, truncated body) act once per HTTP request, so a multirequest is
matched as ``"multirequest"``; API faults (``ACTION_BLOCKED``, expired KS) act per call, including each call inside a
multirequest (the Reports Microservice answers them with HTTP 429 and 401). ``when="after"`` runs the action first and
then loses the response: the case that tests whether a client's retry of a non-idempotent call (e.g.
``entryVendorTask.add``) is handled.
"""

from __future__ import annotations

import enum
import random
import threading
from dataclasses import dataclass


class FaultKind(enum.Enum):
    """What a rule does."""

    LATENCY = "latency"
    HTTP_STATUS = "http_status"
    ACTION_BLOCKED = "action_blocked"
    EXPIRED_KS = "expired_ks"
    CONNECTION_RESET = "connection_reset"
    TRUNCATED_BODY = "truncated_body"
    REDIRECT = "redirect"


TRANSPORT_KINDS = frozenset(
    {
        FaultKind.LATENCY,
        FaultKind.HTTP_STATUS,
        FaultKind.CONNECTION_RESET,
        FaultKind.TRUNCATED_BODY,
        FaultKind.REDIRECT,
    }
)
API_KINDS = frozenset({FaultKind.ACTION_BLOCKED, FaultKind.EXPIRED_KS})


@dataclass(slots=True)
class FaultRule:
    """One fault rule; ``fired`` counts how often it acted."""

    route: str
    kind: FaultKind
    count: int | None = None
    probability: float | None = None
    latency_ms: int = 0
    status: int = 503
    when: str = "before"
    after_bytes: int | None = None
    location: str = ""
    fired: int = 0

    def matches(self, route_key: str, path: str) -> bool:
        """True when this rule targets the request/call identified by ``route_key`` and ``path``."""
        route = self.route.lower()
        if route == "*":
            return True
        if route.startswith("/"):
            return path.lower().startswith(route)
        if route.endswith("/*"):
            return route_key.lower().split("/", 1)[0] == route[:-2]
        return route_key.lower() == route

    def label(self) -> str:
        """Short description for the call log."""
        detail = {
            FaultKind.LATENCY: f":{self.latency_ms}ms",
            FaultKind.HTTP_STATUS: f":{self.status}:{self.when}",
            FaultKind.REDIRECT: f":{self.status}",
            FaultKind.CONNECTION_RESET: f":{self.when}",
        }.get(self.kind, "")
        return f"{self.kind.value}{detail}"


class Faults:
    """The fault rules of one simulator; thread-safe, decisions drawn from a seeded RNG."""

    def __init__(self, seed: int) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def add(
        self,
        route: str,
        kind: FaultKind,
        *,
        count: int | None = None,
        probability: float | None = None,
        latency_ms: int = 0,
        status: int = 503,
        when: str = "before",
        after_bytes: int | None = None,
        location: str = "",
    ) -> FaultRule:
        """Add a rule and return it (its ``fired`` counter can be asserted)."""
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if when not in {"before", "after"}:
            raise ValueError("when must be 'before' or 'after'")
        rule = FaultRule(route, kind, count, probability, latency_ms, status, when, after_bytes, location)
        with self._lock:
            self._rules.append(rule)
        return rule

    def latency(self, route: str, ms: int, *, count: int | None = None, probability: float | None = None) -> FaultRule:
        """Answer no earlier than ``ms`` milliseconds (real time) after the request arrived; the action runs
        meanwhile, so the knob sets the server's response time rather than adding to it."""
        return self.add(route, FaultKind.LATENCY, count=count, probability=probability, latency_ms=ms)

    def http_error(
        self,
        route: str,
        status: int = 503,
        *,
        count: int | None = None,
        probability: float | None = None,
        when: str = "before",
    ) -> FaultRule:
        """Answer with an infrastructure error status (HTML body, not a Kaltura error)."""
        return self.add(route, FaultKind.HTTP_STATUS, count=count, probability=probability, status=status, when=when)

    def redirect(
        self,
        route: str,
        location: str,
        *,
        status: int = 302,
        count: int | None = None,
        probability: float | None = None,
    ) -> FaultRule:
        """Answer with an HTTP redirect to ``location`` (any URL, e.g. another host) instead of running the call:
        a CDN or proxy in front of Kaltura sending a download elsewhere."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError("status must be a redirect (301, 302, 303, 307 or 308)")
        return self.add(
            route, FaultKind.REDIRECT, count=count, probability=probability, status=status, location=location
        )

    def action_blocked(self, route: str, *, count: int | None = None, probability: float | None = None) -> FaultRule:
        """Rate limiting: the call fails with ``ACTION_BLOCKED`` (docs/kaltura.md#api-errors)."""
        return self.add(route, FaultKind.ACTION_BLOCKED, count=count, probability=probability)

    def expired_ks(self, route: str, *, count: int | None = None, probability: float | None = None) -> FaultRule:
        """The call's KS is treated as expired (``INVALID_KS`` with KSID=EXPIRED)."""
        return self.add(route, FaultKind.EXPIRED_KS, count=count, probability=probability)

    def connection_reset(
        self, route: str, *, count: int | None = None, probability: float | None = None, when: str = "before"
    ) -> FaultRule:
        """Close the socket (RST) without sending a response."""
        return self.add(route, FaultKind.CONNECTION_RESET, count=count, probability=probability, when=when)

    def truncated_body(
        self,
        route: str,
        *,
        count: int | None = None,
        probability: float | None = None,
        after_bytes: int | None = None,
    ) -> FaultRule:
        """Send the headers (Content-Length of the full body, or chunked) and only part of the body, then close."""
        return self.add(route, FaultKind.TRUNCATED_BODY, count=count, probability=probability, after_bytes=after_bytes)

    def remove(self, rule: FaultRule) -> None:
        """Remove one rule."""
        with self._lock:
            self._rules = [existing for existing in self._rules if existing is not rule]

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def draw(self, kinds: frozenset[FaultKind], route_key: str, path: str) -> list[FaultRule]:
        """Rules of ``kinds`` that fire for this request/call, consuming their counts."""
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or not rule.matches(route_key, path):
                    continue
                if rule.count is not None and rule.count <= 0:
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                rule.fired += 1
                fired.append(rule)
        return fired
