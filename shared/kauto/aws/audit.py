"""The audit trail (docs/architecture.md#audit-trail): every decision and side effect as JSON Lines in the reports
bucket, one object per invocation and partner/day.

Layout (Hive partitions, the ``AuditTable`` Glue table projects them)::

    audit/partner_id=<pid>/date=<YYYY-MM-DD>/<HHMMSS>-<invocation id>.jsonl

Each line is one :class:`AuditFact` with the columns of :data:`FACT_COLUMNS`. Facts are collected in memory during an
invocation by an :class:`AuditTrail` and written by :meth:`AuditTrail.flush`, which the handlers call once at the end
(never one object per event). They are captured at the ports rather than in the domain code:

- :class:`AuditingLedger` wraps the :class:`~kauto.aws.ledger.Ledger`: every write that lands (a claim won, a put, an
  update, a transition that changed something) is handed to an interpreter that turns the resulting row into facts
  (the domain's interpreter lives in :mod:`kauto.automations.audit`);
- :class:`AuditingAlertPublisher` records each alert that was published;
- :class:`AuditingObjectStore` records each object written (key, bytes, rows).

**Safe under redelivery.** A fact's ``fact_id`` is derived from what it states (e.g. the ledger key, the outcome, the
reason and the task id of a caption decision), never from the invocation: a redelivered event that makes the same
decision again yields a fact with the same id. Readers deduplicate on ``fact_id`` (``kauto-ops`` does; the README's
Athena queries show how); one trail never holds an id twice.

**Ids and reasons only.** The interpreters copy whitelisted id, state and reason attributes, never names, titles,
descriptions or e-mail addresses; :meth:`AuditTrail.record` refuses a fact whose text holds an e-mail address.

A trail that cannot be written is logged and counted (``AuditFlushFailed``) but does not fail the invocation: its side
effects already happened and the ledger still holds every decision.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from kauto.aws.alerts import Alert, AlertOutcome, AlertPeriod, AlertPublisher
from kauto.aws.ledger import ClaimResult, Item, Ledger, TransitionResult
from kauto.aws.object_store import CSV_CONTENT_TYPE, ObjectStore, ObjectWriter, WriteResult

logger = logging.getLogger(__name__)

AUDIT_PREFIX = "audit/"
AUDIT_CONTENT_TYPE = "application/x-ndjson"

FACT_COLUMNS: tuple[str, ...] = (
    "fact_id",
    "at",
    "invocation",
    "kind",
    "subject_type",
    "subject_id",
    "entry_id",
    "task_id",
    "catalog_item_id",
    "room_entry_id",
    "session_id",
    "event",
    "outcome",
    "reason",
    "state",
    "code",
    "alert",
    "s3_key",
    "bytes",
    "rows",
    "attempt",
)
"""The columns of every line, in order (``partner_id`` and ``date`` are the partitions); absent values are null."""

_INT_COLUMNS = frozenset({"task_id", "catalog_item_id", "bytes", "rows", "attempt"})
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def fact_id(*parts: object) -> str:
    """A stable id for the fact stated by ``parts`` (32 hex characters of their SHA-256)."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AuditFact:
    """One decision or side effect. ``identity`` are the parts :func:`fact_id` hashes; ``fields`` are the other
    columns of :data:`FACT_COLUMNS` (ids, states, reasons)."""

    partner_id: int
    kind: str
    subject_type: str
    subject_id: str
    identity: tuple[object, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fact_id(self) -> str:
        """Stable across redeliveries: the same decision has the same id."""
        return fact_id(self.partner_id, self.kind, *self.identity)

    def row(self, at: float, invocation: str) -> dict[str, Any]:
        """The JSON line (every column, in order)."""
        values: dict[str, Any] = {
            "fact_id": self.fact_id,
            "at": datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "invocation": invocation,
            "kind": self.kind,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
        }
        for column in FACT_COLUMNS[len(values) :]:
            value = self.fields.get(column)
            if column in _INT_COLUMNS:
                values[column] = value if isinstance(value, int) and not isinstance(value, bool) else None
            else:
                values[column] = None if value is None else str(value)
        return values


LedgerInterpreter = Callable[[str, str, Item], Iterable[AuditFact]]
"""``(pk, sk, the row as written) -> facts``: what one ledger write means."""


class AuditTrail:
    """The facts of one invocation, deduplicated by ``fact_id``, written by :meth:`flush` (thread-safe).

    ``store`` is the raw (not audited) report store; ``None`` collects without writing (tests, tools that only read).
    """

    def __init__(
        self,
        store: ObjectStore | None,
        *,
        clock: Callable[[], float],
        invocation_id: str | None = None,
        metrics: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.invocation_id = invocation_id or uuid.uuid4().hex
        self._metrics = metrics
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[int, dict[str, Any]]] = {}
        self.written: list[str] = []
        """Keys written by :meth:`flush` so far."""

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The facts collected and not flushed yet, as JSON lines (with ``partner_id``)."""
        with self._lock:
            return [{**row, "partner_id": partner} for partner, row in self._rows.values()]

    def record(self, fact: AuditFact) -> None:
        """Collect ``fact`` (a second fact with the same id in this invocation is dropped). A fact whose text holds an
        e-mail address is dropped with a warning: the trail carries ids and reasons only."""
        row = fact.row(self._clock(), self.invocation_id)
        for column, value in row.items():
            if isinstance(value, str) and _EMAIL.search(value):
                logger.warning("audit fact dropped: personal data", extra={"kind": fact.kind, "column": column})
                return
        with self._lock:
            self._rows.setdefault(row["fact_id"], (fact.partner_id, row))

    def record_all(self, facts: Iterable[AuditFact]) -> None:
        """Collect each of ``facts``."""
        for fact in facts:
            self.record(fact)

    def flush(self) -> list[str]:
        """Write the collected facts, one object per partner and day; returns the keys. Never raises: a failure is
        logged, counted and the facts are dropped (the ledger keeps the decisions)."""
        with self._lock:
            rows, self._rows = list(self._rows.values()), {}
        if not rows or self._store is None:
            return []
        groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for partner, row in rows:
            groups.setdefault((partner, row["at"][:10]), []).append(row)
        stamp = datetime.fromtimestamp(self._clock(), tz=UTC).strftime("%H%M%S")
        keys = []
        for (partner, day), lines in sorted(groups.items()):
            key = f"{audit_partition(partner, day)}{stamp}-{self.invocation_id}.jsonl"
            body = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines)
            try:
                self._store.put_bytes(key, body.encode("utf-8"), content_type=AUDIT_CONTENT_TYPE)
            except Exception:
                logger.exception("could not write the audit trail", extra={"partner_id": partner, "facts": len(lines)})
                if self._metrics is not None:
                    self._metrics("AuditFlushFailed")
                continue
            keys.append(key)
        self.written.extend(keys)
        return keys


def audit_partition(partner_id: int, day: str) -> str:
    """``audit/partner_id=<pid>/date=<YYYY-MM-DD>/``."""
    return f"{AUDIT_PREFIX}partner_id={partner_id}/date={day}/"


class AuditingLedger:
    """A :class:`~kauto.aws.ledger.Ledger` that hands every write that landed to ``interpret`` and records the facts.

    Reads pass through. A write that did not land (a lost claim, an unchanged transition, a conflict) states nothing.
    """

    def __init__(self, ledger: Ledger, trail: AuditTrail, interpret: LedgerInterpreter) -> None:
        self._ledger = ledger
        self._trail = trail
        self._interpret = interpret

    def _wrote(self, pk: str, sk: str, item: Mapping[str, Any]) -> None:
        try:
            facts = list(self._interpret(pk, sk, dict(item)))
        except Exception:
            # The write happened; a row the interpreter cannot read must not fail the automation.
            logger.exception("could not interpret a ledger write for the audit trail", extra={"ledger_pk": pk})
            return
        self._trail.record_all(facts)

    def claim(
        self, pk: str, sk: str, attrs: Mapping[str, Any] | None = None, *, ttl_seconds: int | None = None
    ) -> ClaimResult:
        result = self._ledger.claim(pk, sk, attrs, ttl_seconds=ttl_seconds)
        if result.claimed:
            self._wrote(pk, sk, result.item)
        return result

    def get(self, pk: str, sk: str) -> Item | None:
        return self._ledger.get(pk, sk)

    def put(self, pk: str, sk: str, attrs: Mapping[str, Any], *, ttl_seconds: int | None = None) -> None:
        self._ledger.put(pk, sk, attrs, ttl_seconds=ttl_seconds)
        self._wrote(pk, sk, attrs)

    def update(
        self,
        pk: str,
        sk: str,
        attrs: Mapping[str, Any],
        *,
        expect: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        ttl_seconds: int | None = None,
    ) -> Item:
        item = self._ledger.update(pk, sk, attrs, expect=expect, remove=tuple(remove), ttl_seconds=ttl_seconds)
        self._wrote(pk, sk, item)
        return item

    def transition(
        self,
        pk: str,
        sk: str,
        *,
        from_states: Iterable[str],
        to_state: str,
        final_states: Iterable[str] = (),
        attrs: Mapping[str, Any] | None = None,
    ) -> TransitionResult:
        result = self._ledger.transition(
            pk, sk, from_states=tuple(from_states), to_state=to_state, final_states=tuple(final_states), attrs=attrs
        )
        if result.changed:
            self._wrote(pk, sk, result.item)
        return result

    def query(self, pk: str, sk_prefix: str = "", *, limit: int | None = None) -> Any:
        return self._ledger.query(pk, sk_prefix, limit=limit)

    def delete_if(self, pk: str, sk: str, owner_token: str) -> bool:
        return self._ledger.delete_if(pk, sk, owner_token)


_ALERT_ID_FIELDS = ("entry_id", "task_id", "catalog_item_id", "room_entry_id", "session_id", "code")


class AuditingAlertPublisher:
    """An :class:`~kauto.aws.alerts.AlertPublisher` that records each alert actually published (``alert_published``:
    the rule, the dedupe key as ``reason``, the severity as ``state`` and the ids found in the alert's details)."""

    def __init__(self, publisher: AlertPublisher, trail: AuditTrail) -> None:
        self._publisher = publisher
        self._trail = trail

    def publish(self, alert: Alert, *, dedupe_key: str, period: AlertPeriod | None = None) -> AlertOutcome:
        outcome = self._publisher.publish(alert, dedupe_key=dedupe_key, period=period)
        if outcome.published:
            self._trail.record(alert_fact(alert, dedupe_key, outcome))
        return outcome


def alert_fact(alert: Alert, dedupe_key: str, outcome: AlertOutcome) -> AuditFact:
    """The ``alert_published`` fact; its subject is the most specific id the alert names."""
    ids = {name: alert.details.get(name) for name in _ALERT_ID_FIELDS if alert.details.get(name) is not None}
    if "session_id" in ids:
        subject_type, subject_id = "session", str(ids["session_id"])
    elif "task_id" in ids:
        subject_type, subject_id = "task", str(ids["task_id"])
    elif "entry_id" in ids:
        subject_type, subject_id = "entry", str(ids["entry_id"])
    else:
        subject_type, subject_id = "partner", str(alert.partner_id)
    return AuditFact(
        alert.partner_id,
        "alert_published",
        subject_type,
        subject_id,
        (outcome.ledger_pk, outcome.ledger_sk),
        {**ids, "alert": alert.rule, "reason": dedupe_key, "state": alert.severity.value, "event": outcome.message_id},
    )


_KEY_PARTITION = re.compile(r"(?:^|/)(partner_id|entry_id|session_id|week|date)=([^/]+)")


def object_fact(result: WriteResult) -> AuditFact | None:
    """The ``object_written`` fact of a report file (keys carry ``partner_id=``; others, e.g. checkpoints, state
    nothing). The subject is the session, else the weekly run (``week``), else the partner."""
    partitions = dict(_KEY_PARTITION.findall(result.key))
    partner = partitions.get("partner_id", "")
    if not partner.isdigit():
        return None
    if "session_id" in partitions:
        subject_type, subject_id = "session", partitions["session_id"]
    elif "week" in partitions:
        subject_type, subject_id = "run", partitions["week"]
    else:
        subject_type, subject_id = "partner", partner
    return AuditFact(
        int(partner),
        "object_written",
        subject_type,
        subject_id,
        (result.key, result.sha256),
        {
            "s3_key": result.key,
            "bytes": result.bytes,
            "rows": result.rows,
            "room_entry_id": partitions.get("entry_id") if "session_id" in partitions else None,
            "session_id": partitions.get("session_id"),
        },
    )


class AuditingObjectStore:
    """An :class:`~kauto.aws.object_store.ObjectStore` whose completed objects are recorded as ``object_written``."""

    def __init__(self, store: ObjectStore, trail: AuditTrail) -> None:
        self._store = store
        self._trail = trail

    @property
    def bucket(self) -> str:
        return self._store.bucket

    def open_writer(self, key: str, *, content_type: str = CSV_CONTENT_TYPE) -> ObjectWriter:
        return _AuditedWriter(self._store.open_writer(key, content_type=content_type), self._trail)

    def resume_writer(self, state: Mapping[str, Any]) -> ObjectWriter:
        return _AuditedWriter(self._store.resume_writer(state), self._trail)

    def put_bytes(self, key: str, body: bytes, *, content_type: str) -> WriteResult:
        result = self._store.put_bytes(key, body, content_type=content_type)
        self._written(result)
        return result

    def stream_object(self, key: str) -> Iterator[bytes]:
        # Reading back (a session's summary page) changes nothing: not a fact of the trail.
        return self._store.stream_object(key)

    def _written(self, result: WriteResult) -> None:
        fact = object_fact(result)
        if fact is not None:
            self._trail.record(fact)


class _AuditedWriter:
    """Delegates to the real writer; :meth:`complete` records the object."""

    def __init__(self, writer: ObjectWriter, trail: AuditTrail) -> None:
        self._writer = writer
        self._trail = trail

    @property
    def key(self) -> str:
        return self._writer.key

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written

    @property
    def rows_written(self) -> int:
        return self._writer.rows_written

    def write(self, data: bytes | str, *, rows: int = 0) -> None:
        self._writer.write(data, rows=rows)

    def write_records(self, records: Iterable[bytes | str], *, with_header: bool) -> None:
        self._writer.write_records(records, with_header=with_header)

    def checkpoint(self) -> dict[str, Any]:
        return self._writer.checkpoint()

    def complete(self) -> WriteResult:
        result = self._writer.complete()
        fact = object_fact(result)
        if fact is not None:
            self._trail.record(fact)
        return result

    def abort(self) -> None:
        self._writer.abort()

    def __enter__(self) -> Self:
        self._writer.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._writer.__exit__(exc_type, exc, traceback)
