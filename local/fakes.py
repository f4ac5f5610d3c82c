"""In-memory fakes of the ports (ledger, object store, alerts, queues, digest sources): test and local doubles.

Not shipped in the Lambda layer; unit tests of the automations use them (no AWS, no network).

Each fake has the semantics of its real adapter (conditional claims, final states, at-most-once alerts, abort leaves
nothing behind, checkpoint/resume) and records what it was asked to do in ``calls`` (and ``published`` for alerts).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from kauto.aws.alerts import CLAIM_LEASE_SECONDS, Alert, AlertOutcome, AlertPeriod, SnsAlertPublisher
from kauto.aws.ledger import (
    OWNER_ATTRIBUTE,
    PK,
    SK,
    STATE_ATTRIBUTE,
    TTL_ATTRIBUTE,
    ClaimResult,
    Item,
    LedgerConflictError,
    TransitionResult,
    check_attribute_names,
    check_transition,
    expires_at,
    from_dynamo,
    is_live,
    resolve_transition_conflict,
    to_dynamo,
)
from kauto.aws.object_store import (
    CSV_CONTENT_TYPE,
    CheckpointError,
    ReportStoreError,
    WriterBase,
    WriteResult,
    check_object_key,
)
from kauto.aws.queue import check_delay
from kauto.models import KalturaEvent
from kauto.weekly.messages import WeeklyMessage, parse_message


class InMemoryLedger:
    """:class:`kauto.aws.ledger.Ledger` in a dict, atomic under a lock; ``calls`` lists ``(operation, pk, sk)``.

    Values go through the same DynamoDB type conversion as the real adapter (tuples come back as lists, floats
    survive as floats, unsupported types are refused).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.items: dict[tuple[str, str], Item] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._clock = clock
        self._lock = threading.Lock()

    def claim(
        self, pk: str, sk: str, attrs: Mapping[str, Any] | None = None, *, ttl_seconds: int | None = None
    ) -> ClaimResult:
        attrs = dict(attrs or {})
        check_attribute_names(attrs)
        with self._lock:
            self.calls.append(("claim", pk, sk))
            now = self._clock()
            existing = self._live(pk, sk, now)
            if existing is not None:
                return ClaimResult(claimed=False, item=copy.deepcopy(existing))
            item = self._store(pk, sk, attrs, now, ttl_seconds)
            return ClaimResult(claimed=True, item=copy.deepcopy(item))

    def get(self, pk: str, sk: str) -> Item | None:
        with self._lock:
            self.calls.append(("get", pk, sk))
            item = self._live(pk, sk, self._clock())
            return copy.deepcopy(item) if item is not None else None

    def put(self, pk: str, sk: str, attrs: Mapping[str, Any], *, ttl_seconds: int | None = None) -> None:
        check_attribute_names(attrs)
        with self._lock:
            self.calls.append(("put", pk, sk))
            self._store(pk, sk, dict(attrs), self._clock(), ttl_seconds)

    def update(
        self,
        pk: str,
        sk: str,
        attrs: Mapping[str, Any],
        *,
        expect: Mapping[str, Any] | None = None,
        remove: Collection[str] = (),
        ttl_seconds: int | None = None,
    ) -> Item:
        check_attribute_names(attrs)
        check_attribute_names(dict.fromkeys(remove))
        if not attrs and not remove and ttl_seconds is None:
            raise ValueError("update needs at least one attribute to set or remove")
        with self._lock:
            self.calls.append(("update", pk, sk))
            now = self._clock()
            item = self._live(pk, sk, now)
            if item is None:
                raise LedgerConflictError(pk, sk, "expectation not met", None)
            for attribute, expected in (expect or {}).items():
                matches = attribute not in item if expected is None else item.get(attribute) == _stored(expected)
                if not matches:
                    raise LedgerConflictError(pk, sk, "expectation not met", copy.deepcopy(item))
            return copy.deepcopy(self._apply(item, attrs, remove, now, ttl_seconds))

    def transition(
        self,
        pk: str,
        sk: str,
        *,
        from_states: Collection[str],
        to_state: str,
        final_states: Collection[str] = (),
        attrs: Mapping[str, Any] | None = None,
    ) -> TransitionResult:
        check_transition(from_states, to_state, final_states)
        attrs = dict(attrs or {})
        check_attribute_names(attrs)
        if STATE_ATTRIBUTE in attrs:
            raise ValueError("pass the new state as to_state, not in attrs")
        with self._lock:
            self.calls.append(("transition", pk, sk))
            now = self._clock()
            item = self._live(pk, sk, now)
            if item is None or item.get(STATE_ATTRIBUTE) not in from_states:
                conflict = LedgerConflictError(pk, sk, "wrong state", copy.deepcopy(item))
                return resolve_transition_conflict(conflict, to_state, final_states)
            updated = self._apply(item, {**attrs, STATE_ATTRIBUTE: to_state}, (), now, None)
            return TransitionResult(changed=True, item=copy.deepcopy(updated))

    def query(self, pk: str, sk_prefix: str = "", *, limit: int | None = None) -> Iterator[Item]:
        with self._lock:
            self.calls.append(("query", pk, sk_prefix))
            now = self._clock()
            found = [
                copy.deepcopy(item)
                for (item_pk, item_sk), item in sorted(self.items.items())
                if item_pk == pk and item_sk.startswith(sk_prefix) and is_live(item, now)
            ]
        return iter(found if limit is None else found[:limit])

    def delete_if(self, pk: str, sk: str, owner_token: str) -> bool:
        with self._lock:
            self.calls.append(("delete_if", pk, sk))
            item = self.items.get((pk, sk))
            if item is None or item.get(OWNER_ATTRIBUTE) != owner_token:
                return False
            del self.items[(pk, sk)]
            return True

    def _live(self, pk: str, sk: str, now: float) -> Item | None:
        item = self.items.get((pk, sk))
        return item if item is not None and is_live(item, now) else None

    def _store(self, pk: str, sk: str, attrs: Item, now: float, ttl_seconds: int | None) -> Item:
        if not pk or not sk:
            raise ValueError("pk and sk must be non-empty")
        item: Item = {PK: pk, SK: sk, **{name: _stored(value) for name, value in attrs.items()}}
        expiry = expires_at(now, ttl_seconds)
        if expiry is not None:
            item[TTL_ATTRIBUTE] = expiry
        self.items[(pk, sk)] = item
        return item

    @staticmethod
    def _apply(
        item: Item, attrs: Mapping[str, Any], remove: Collection[str], now: float, ttl_seconds: int | None
    ) -> Item:
        item.update({name: _stored(value) for name, value in attrs.items()})
        for attribute in remove:
            item.pop(attribute, None)
        expiry = expires_at(now, ttl_seconds)
        if expiry is not None:
            item[TTL_ATTRIBUTE] = expiry
        return item


def _stored(value: Any) -> Any:
    """``value`` as it would come back from DynamoDB."""
    return from_dynamo(to_dynamo(value))


class InMemoryObjectWriter(WriterBase):
    """:class:`kauto.aws.object_store.ObjectWriter` that lands in an :class:`InMemoryObjectStore` on ``complete()``."""

    def __init__(self, store: InMemoryObjectStore, key: str, content_type: str, prefix: bytes = b"", rows: int = 0):
        super().__init__(key, rows)
        self._store = store
        self._content_type = content_type
        self._data = bytearray(prefix)

    @property
    def location(self) -> str:
        return f"in-memory {self._key}"

    @property
    def bytes_written(self) -> int:
        return len(self._data)

    def write(self, data: bytes | str, *, rows: int = 0) -> None:
        self._require_open()
        self._data += data.encode("utf-8") if isinstance(data, str) else data
        self._rows += rows

    def complete(self) -> WriteResult:
        self._require_open()
        self._status = "completed"
        self._store.calls.append(("complete", self._key))
        return self._store.land(self._key, bytes(self._data), self._content_type, self._rows)

    def checkpoint(self) -> dict[str, Any]:
        self._require_open()
        self._status = "checkpointed"
        self._store.calls.append(("checkpoint", self._key))
        checkpoint_id = uuid.uuid4().hex
        self._store.checkpoints[checkpoint_id] = bytes(self._data)
        return {
            "version": 1,
            "checkpoint_id": checkpoint_id,
            "key": self._key,
            "content_type": self._content_type,
            "rows": self._rows,
            "bytes": len(self._data),
        }

    def abort(self) -> None:
        if self._end("aborted"):
            self._store.calls.append(("abort", self._key))


class InMemoryObjectStore:
    """:class:`kauto.aws.object_store.ObjectStore` in a dict: ``objects`` (key -> bytes), ``content_types``,
    ``checkpoints``; ``calls`` lists ``(operation, key)``. Nothing lands in ``objects`` before ``complete()``."""

    def __init__(self, bucket: str = "in-memory-reports") -> None:
        self._bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.checkpoints: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []

    @property
    def bucket(self) -> str:
        return self._bucket

    def open_writer(self, key: str, *, content_type: str = CSV_CONTENT_TYPE) -> InMemoryObjectWriter:
        check_object_key(key)
        self.calls.append(("open_writer", key))
        return InMemoryObjectWriter(self, key, content_type)

    def resume_writer(self, state: Mapping[str, Any]) -> InMemoryObjectWriter:
        checkpoint_id = state.get("checkpoint_id")
        if not isinstance(checkpoint_id, str) or checkpoint_id not in self.checkpoints:
            raise CheckpointError("unknown in-memory checkpoint")
        key = str(state["key"])
        self.calls.append(("resume_writer", key))
        return InMemoryObjectWriter(
            self, key, str(state["content_type"]), self.checkpoints.pop(checkpoint_id), int(state["rows"])
        )

    def put_bytes(self, key: str, body: bytes, *, content_type: str) -> WriteResult:
        check_object_key(key)
        self.calls.append(("put_bytes", key))
        return self.land(key, body, content_type, 0)

    def stream_object(self, key: str) -> Iterator[bytes]:
        check_object_key(key)
        self.calls.append(("stream_object", key))
        body = self.objects[key]
        for offset in range(0, len(body), 7):  # odd-sized chunks, like a network read
            yield body[offset : offset + 7]

    def land(self, key: str, body: bytes, content_type: str, rows: int) -> WriteResult:
        """Store a completed object and describe it like S3 would."""
        self.objects[key] = body
        self.content_types[key] = content_type
        digest = hashlib.sha256(body).hexdigest()
        return WriteResult(self._bucket, key, len(body), rows, digest, 0, f'"{digest[:32]}"')


@dataclass(frozen=True, slots=True)
class PublishedAlert:
    """What reached the (fake) topic: the SNS ``subject``, the ``message`` JSON text and the ``attributes``."""

    subject: str
    message: str
    attributes: dict[str, dict[str, str]]


class SimulatedCrash(BaseException):
    """The worker "dies" between claiming an alert and publishing it (a ``BaseException``: no handler catches it)."""


class _RecordingTopic:
    """Stands in for the SNS client inside :class:`InMemoryAlertPublisher`."""

    def __init__(self, owner: InMemoryAlertPublisher) -> None:
        self._owner = owner

    def publish(
        self, *, TopicArn: str, Subject: str, Message: str, MessageAttributes: dict[str, dict[str, str]]
    ) -> dict[str, str]:
        if self._owner.crashes_to_inject:
            self._owner.crashes_to_inject -= 1
            raise SimulatedCrash
        if self._owner.failures_to_inject:
            self._owner.failures_to_inject -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "Publish")
        self._owner.published.append(PublishedAlert(Subject, Message, MessageAttributes))
        return {"MessageId": uuid.uuid4().hex}


class InMemoryAlertPublisher:
    """:class:`kauto.aws.alerts.AlertPublisher` with the real dedupe, subject and message rules, recording instead of
    publishing: ``published`` holds what reached the topic, ``calls`` every ``(rule, dedupe_key, outcome)``.

    ``failures_to_inject = n`` makes the next ``n`` publishes fail with ``AlertPublishError`` (claim released).
    ``crashes_to_inject = n`` makes the next ``n`` publishes raise :class:`SimulatedCrash` after the claim, as a
    worker dying there would; claims carry the real lease (``lease_seconds``), so a later publish takes the claim
    over once it expires.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        ledger: InMemoryLedger | None = None,
        lease_seconds: int = CLAIM_LEASE_SECONDS,
    ) -> None:
        self.ledger = ledger or InMemoryLedger(clock=clock)
        self.published: list[PublishedAlert] = []
        self.calls: list[tuple[str, str, AlertOutcome | None]] = []
        self.failures_to_inject = 0
        self.crashes_to_inject = 0
        self._publisher = SnsAlertPublisher(
            _RecordingTopic(self),
            "arn:aws:sns:us-east-1:000000000000:in-memory-alerts",
            self.ledger,
            clock=clock,
            lease_seconds=lease_seconds,
        )

    def publish(self, alert: Alert, *, dedupe_key: str, period: AlertPeriod | None = None) -> AlertOutcome:
        try:
            outcome = self._publisher.publish(alert, dedupe_key=dedupe_key, period=period)
        except Exception:
            self.calls.append((alert.rule, dedupe_key, None))
            raise
        self.calls.append((alert.rule, dedupe_key, outcome))
        return outcome


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """What :class:`InMemoryEventQueue` was asked to send."""

    message_id: str
    event: KalturaEvent
    delay_seconds: int


class InMemoryEventQueue:
    """Fake of :class:`SqsEventQueue` for unit tests: ``sent`` lists every event in order (thread-safe)."""

    def __init__(self) -> None:
        self.sent: list[QueuedEvent] = []
        self._lock = threading.Lock()

    def send(self, event: KalturaEvent, delay_seconds: int = 0) -> str:
        check_delay(delay_seconds)
        # Round-trip through the message body, as SQS would: an event that does not serialize fails here too.
        copy = KalturaEvent.from_json(event.to_json())
        message_id = uuid.uuid4().hex
        with self._lock:
            self.sent.append(QueuedEvent(message_id, copy, delay_seconds))
        return message_id


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """What :class:`InMemoryJobQueue` was asked to send."""

    message_id: str
    message: WeeklyMessage
    delay_seconds: int


class InMemoryJobQueue:
    """Fake :class:`JobQueue` for unit tests: ``sent`` lists every message in order (thread-safe).

    Messages go through their JSON body and back, as SQS would carry them.
    """

    def __init__(self) -> None:
        self.sent: list[QueuedMessage] = []
        self._lock = threading.Lock()

    def send(self, message: WeeklyMessage, delay_seconds: int = 0) -> str:
        check_delay(delay_seconds)
        copy = parse_message(message.to_json())
        message_id = uuid.uuid4().hex
        with self._lock:
            self.sent.append(QueuedMessage(message_id, copy, delay_seconds))
        return message_id

    def take(self) -> list[QueuedMessage]:
        """Everything sent so far, removed from the fake (what a consumer would receive next)."""
        with self._lock:
            taken, self.sent = self.sent, []
        return taken


class InMemoryDigestSources:
    """:class:`DigestSources` over the in-memory fakes; objects are streamed in ``chunk_bytes`` pieces."""

    def __init__(
        self,
        store: InMemoryObjectStore,
        ledger: InMemoryLedger,
        *,
        clock: Callable[[], float] = time.time,
        chunk_bytes: int = 7,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._clock = clock
        self._chunk_bytes = chunk_bytes

    def get_object(self, key: str) -> bytes | None:
        return self._store.objects.get(key)

    def stream_object(self, key: str) -> Iterator[bytes]:
        body = self._store.objects.get(key)
        if body is None:
            raise ReportStoreError("GetObject", self._store.bucket, key, "NoSuchKey")
        for start in range(0, len(body), self._chunk_bytes):
            yield body[start : start + self._chunk_bytes]

    def scan_ledger(self, pk_prefix: str) -> Iterator[Item]:
        now = self._clock()
        items = [
            dict(item)
            for (pk, _), item in sorted(self._ledger.items.items())
            if pk.startswith(pk_prefix) and is_live(item, now)
        ]
        return iter(items)
