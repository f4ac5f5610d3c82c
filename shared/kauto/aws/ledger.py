"""DynamoDB ledger primitives over ``LedgerTable`` (keys ``pk`` S + ``sk`` S, TTL attribute ``expires_at``).

The ledger holds the durable facts that make side effects happen once: REACH orders, report runs, alert claims. Every
write that decides something is conditional, so concurrent workers and redelivered messages agree on one winner.

Semantics shared by :class:`DynamoLedger` and the in-memory fake (``kauto_local.fakes.InMemoryLedger``):

- Items are plain dicts; numbers come back as ``int`` or ``float`` (never ``Decimal``), binary as ``bytes``.
- An item whose ``expires_at`` has passed counts as absent everywhere (DynamoDB deletes expired items lazily, up to
  days later): it can be claimed again and ``get``/``query``/``update`` ignore it.
- ``transition`` moves a ``state`` attribute between named states and never out of a final state; re-applying the
  transition that already happened is a no-op (redeliveries are harmless).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from kauto.errors import DependencyUnavailableError, KautoError

logger = logging.getLogger(__name__)

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires_at"
STATE_ATTRIBUTE = "state"
OWNER_ATTRIBUTE = "owner"
RESERVED_ATTRIBUTES = frozenset({PK, SK, TTL_ATTRIBUTE})

Item = dict[str, Any]

_CONDITION_FAILED = "ConditionalCheckFailedException"
_NOT_EXPIRED = "(attribute_not_exists(#ttl) OR #ttl > :now)"


class LedgerConflictError(KautoError):
    """A conditional write lost: the item is not in the state the caller expected.

    ``current`` is the item as DynamoDB saw it when the condition failed (``None`` if it does not exist), so the caller
    can decide whether the work is already done, owned by someone else, or must be retried.
    """

    def __init__(self, pk: str, sk: str, reason: str, current: Item | None) -> None:
        super().__init__(f"ledger item {pk} / {sk}: {reason}")
        self.pk = pk
        self.sk = sk
        self.reason = reason
        self.current = current

    @property
    def current_state(self) -> str | None:
        """The ``state`` attribute of the current item, if any."""
        if self.current is None:
            return None
        state = self.current.get(STATE_ATTRIBUTE)
        return state if isinstance(state, str) else None


class LedgerFinalStateError(LedgerConflictError):
    """A transition was refused because the item is already in a (different) final state."""


class LedgerUnavailableError(DependencyUnavailableError):
    """The ledger table could not be read or written (throttling, network, service error); retry later."""


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """Outcome of :meth:`Ledger.claim`: ``claimed`` is True when this call created the item.

    ``item`` is the stored item: the new one when claimed, otherwise the one that already existed.
    """

    claimed: bool
    item: Item


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """Outcome of :meth:`Ledger.transition`: ``changed`` is False when the item was already in ``to_state``."""

    changed: bool
    item: Item


class Ledger(Protocol):
    """Port for the ledger table. Implemented by :class:`DynamoLedger` and ``kauto_local.fakes.InMemoryLedger``."""

    def claim(
        self, pk: str, sk: str, attrs: Mapping[str, Any] | None = None, *, ttl_seconds: int | None = None
    ) -> ClaimResult:
        """Create the item unless a live one exists; never overwrites."""
        ...

    def get(self, pk: str, sk: str) -> Item | None:
        """The live item (strongly consistent read), or None."""
        ...

    def put(self, pk: str, sk: str, attrs: Mapping[str, Any], *, ttl_seconds: int | None = None) -> None:
        """Unconditionally write the whole item."""
        ...

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
        """Set ``attrs`` on an existing live item whose attributes equal ``expect``; returns the new item."""
        ...

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
        """Move ``state`` from one of ``from_states`` to ``to_state``."""
        ...

    def query(self, pk: str, sk_prefix: str = "", *, limit: int | None = None) -> Iterator[Item]:
        """Live items of partition ``pk`` whose ``sk`` starts with ``sk_prefix``, in ``sk`` order."""
        ...

    def delete_if(self, pk: str, sk: str, owner_token: str) -> bool:
        """Delete the item only if its ``owner`` attribute equals ``owner_token``; True if deleted."""
        ...


def check_attribute_names(attrs: Mapping[str, Any]) -> None:
    """Refuse attributes that would overwrite the key or the TTL (those are set by the ledger itself)."""
    clash = RESERVED_ATTRIBUTES.intersection(attrs)
    if clash:
        raise ValueError(f"attributes {sorted(clash)} are managed by the ledger and cannot be set directly")


def check_transition(from_states: Collection[str], to_state: str, final_states: Collection[str]) -> None:
    """A transition may start only from non-final states: leaving a final state is a programming error."""
    if not from_states:
        raise ValueError("from_states must name at least one state")
    leaving_final = set(from_states) & set(final_states)
    if leaving_final:
        raise ValueError(f"cannot transition out of final states {sorted(leaving_final)}")
    if to_state in from_states:
        raise ValueError(f"to_state {to_state!r} is also a from_state")


def expires_at(now: float, ttl_seconds: int | None) -> int | None:
    """The TTL attribute value for an item written at ``now`` that should live ``ttl_seconds``."""
    if ttl_seconds is None:
        return None
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    return int(now) + ttl_seconds


def is_live(item: Mapping[str, Any], now: float) -> bool:
    """Whether ``item`` has not expired (items without ``expires_at`` never expire)."""
    expiry = item.get(TTL_ATTRIBUTE)
    return expiry is None or expiry > now


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamo(value: Any) -> dict[str, Any]:
    """Serialize a Python value to a DynamoDB AttributeValue (floats go through ``Decimal(str(x))``)."""
    return _serializer.serialize(_for_dynamo(value))


def from_dynamo(attribute_value: Mapping[str, Any]) -> Any:
    """Deserialize a DynamoDB AttributeValue to plain Python (``int``/``float`` instead of ``Decimal``)."""
    return _plain(_deserializer.deserialize(dict(attribute_value)))


def item_from_dynamo(raw: Mapping[str, Mapping[str, Any]]) -> Item:
    """Deserialize a whole DynamoDB item."""
    return {name: from_dynamo(value) for name, value in raw.items()}


def _for_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes | int | Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB cannot store NaN or infinity")
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(key): _for_dynamo(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_for_dynamo(inner) for inner in value]
    if isinstance(value, set | frozenset):
        return {_for_dynamo(inner) for inner in value}
    raise TypeError(f"cannot store a {type(value).__name__} in the ledger")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    if isinstance(value, set):
        return {_plain(inner) for inner in value}
    return value


class _Expression:
    """Collects ``#name`` / ``:value`` placeholders so attribute names never clash with DynamoDB reserved words."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, python_value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_dynamo(python_value)
        return placeholder

    def not_expired(self, now: float) -> str:
        self.names["#ttl"] = TTL_ATTRIBUTE
        self.values[":now"] = to_dynamo(int(now))
        return _NOT_EXPIRED

    def request_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.names:
            args["ExpressionAttributeNames"] = self.names
        if self.values:
            args["ExpressionAttributeValues"] = self.values
        return args


class DynamoLedger:
    """:class:`Ledger` over a DynamoDB table through an injected boto3 DynamoDB *client* (not a resource)."""

    def __init__(self, dynamodb_client: Any, table_name: str, *, clock: Callable[[], float] = time.time) -> None:
        if not table_name:
            raise ValueError("table_name is required")
        self._client = dynamodb_client
        self._table = table_name
        self._clock = clock

    def claim(
        self, pk: str, sk: str, attrs: Mapping[str, Any] | None = None, *, ttl_seconds: int | None = None
    ) -> ClaimResult:
        """Create ``(pk, sk)`` with ``attrs`` unless a live item exists (conditional put).

        Returns ``claimed=True`` with the new item, or ``claimed=False`` with the item that was already there.
        An expired item that DynamoDB has not deleted yet is overwritten.
        """
        attrs = dict(attrs or {})
        check_attribute_names(attrs)
        now = self._clock()
        item = self._new_item(pk, sk, attrs, now, ttl_seconds)
        expression = _Expression()
        condition = f"attribute_not_exists({PK}) OR NOT {expression.not_expired(now)}"
        try:
            self._call(
                "PutItem",
                self._client.put_item,
                TableName=self._table,
                Item={name: to_dynamo(value) for name, value in item.items()},
                ConditionExpression=condition,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.request_args(),
            )
        except _ConditionFailed as failed:
            existing = failed.item if failed.item is not None else self.get(pk, sk)
            if existing is None:
                # The existing item vanished between the put and the read (deleted or released): the caller lost
                # this race but can retry the claim.
                raise LedgerConflictError(pk, sk, "claimed concurrently, then released", None) from failed.cause
            return ClaimResult(claimed=False, item=existing)
        return ClaimResult(claimed=True, item=item)

    def get(self, pk: str, sk: str) -> Item | None:
        """Read the live item with a strongly consistent read."""
        response = self._call(
            "GetItem",
            self._client.get_item,
            TableName=self._table,
            Key=self._key(pk, sk),
            ConsistentRead=True,
        )
        raw = response.get("Item")
        if not raw:
            return None
        item = item_from_dynamo(raw)
        return item if is_live(item, self._clock()) else None

    def put(self, pk: str, sk: str, attrs: Mapping[str, Any], *, ttl_seconds: int | None = None) -> None:
        """Write the whole item unconditionally (for facts that are safe to overwrite, e.g. a run summary)."""
        check_attribute_names(attrs)
        item = self._new_item(pk, sk, dict(attrs), self._clock(), ttl_seconds)
        self._call(
            "PutItem",
            self._client.put_item,
            TableName=self._table,
            Item={name: to_dynamo(value) for name, value in item.items()},
        )

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
        """Set ``attrs`` (and drop ``remove``) on the live item, if its attributes equal ``expect``.

        In ``expect`` a value of ``None`` means "attribute absent". Raises :class:`LedgerConflictError` (with the
        current item) when the item is missing, expired or does not match. Returns the item after the update.
        """
        check_attribute_names(attrs)
        check_attribute_names(dict.fromkeys(remove))
        now = self._clock()
        expression = _Expression()
        conditions = [f"attribute_exists({PK})", expression.not_expired(now)]
        for attribute, expected in (expect or {}).items():
            name = expression.name(attribute)
            if expected is None:
                conditions.append(f"attribute_not_exists({name})")
            else:
                conditions.append(f"{name} = {expression.value(expected)}")
        return self._update(pk, sk, expression, conditions, attrs, remove, now, ttl_seconds, "expectation not met")

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
        """Move the item's ``state`` from one of ``from_states`` to ``to_state``, setting ``attrs`` too.

        - Already in ``to_state`` (a redelivery): no write, ``changed=False``.
        - In a final state other than ``to_state``: :class:`LedgerFinalStateError`.
        - Missing or in another state: :class:`LedgerConflictError`.
        ``from_states`` may not contain a final state, so nothing ever leaves one.
        """
        check_transition(from_states, to_state, final_states)
        attrs = dict(attrs or {})
        check_attribute_names(attrs)
        if STATE_ATTRIBUTE in attrs:
            raise ValueError("pass the new state as to_state, not in attrs")
        now = self._clock()
        expression = _Expression()
        state = expression.name(STATE_ATTRIBUTE)
        allowed = ", ".join(expression.value(name) for name in sorted(from_states))
        conditions = [f"attribute_exists({PK})", expression.not_expired(now), f"{state} IN ({allowed})"]
        try:
            item = self._update(
                pk, sk, expression, conditions, {**attrs, STATE_ATTRIBUTE: to_state}, (), now, None, "wrong state"
            )
        except LedgerConflictError as conflict:
            return resolve_transition_conflict(conflict, to_state, final_states)
        return TransitionResult(changed=True, item=item)

    def query(self, pk: str, sk_prefix: str = "", *, limit: int | None = None) -> Iterator[Item]:
        """Yield live items of ``pk`` whose ``sk`` starts with ``sk_prefix`` (all pages, at most ``limit``)."""
        expression = _Expression()
        key_condition = f"{expression.name(PK)} = {expression.value(pk)}"
        if sk_prefix:
            key_condition += f" AND begins_with({expression.name(SK)}, {expression.value(sk_prefix)})"
        filter_expression = expression.not_expired(self._clock())
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": key_condition,
            "FilterExpression": filter_expression,
            "ConsistentRead": True,
            **expression.request_args(),
        }
        yielded = 0
        while True:
            response = self._call("Query", self._client.query, **args)
            for raw in response.get("Items", []):
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield item_from_dynamo(raw)
            last_key = response.get("LastEvaluatedKey")
            if not last_key or (limit is not None and yielded >= limit):
                return
            args["ExclusiveStartKey"] = last_key

    def delete_if(self, pk: str, sk: str, owner_token: str) -> bool:
        """Delete the item only if its ``owner`` attribute equals ``owner_token`` (release one's own claim).

        Returns False when the item is gone or belongs to someone else.
        """
        expression = _Expression()
        condition = f"{expression.name(OWNER_ATTRIBUTE)} = {expression.value(owner_token)}"
        try:
            self._call(
                "DeleteItem",
                self._client.delete_item,
                TableName=self._table,
                Key=self._key(pk, sk),
                ConditionExpression=condition,
                **expression.request_args(),
            )
        except _ConditionFailed:
            return False
        return True

    def _update(
        self,
        pk: str,
        sk: str,
        expression: _Expression,
        conditions: list[str],
        attrs: Mapping[str, Any],
        remove: Collection[str],
        now: float,
        ttl_seconds: int | None,
        reason: str,
    ) -> Item:
        to_set = dict(attrs)
        expiry = expires_at(now, ttl_seconds)
        if expiry is not None:
            to_set[TTL_ATTRIBUTE] = expiry
        clauses = []
        if to_set:
            clauses.append(
                "SET " + ", ".join(f"{expression.name(k)} = {expression.value(v)}" for k, v in to_set.items())
            )
        if remove:
            clauses.append("REMOVE " + ", ".join(expression.name(attribute) for attribute in remove))
        if not clauses:
            raise ValueError("update needs at least one attribute to set or remove")
        try:
            response = self._call(
                "UpdateItem",
                self._client.update_item,
                TableName=self._table,
                Key=self._key(pk, sk),
                UpdateExpression=" ".join(clauses),
                ConditionExpression=" AND ".join(conditions),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.request_args(),
            )
        except _ConditionFailed as failed:
            current = failed.item if failed.item is not None and is_live(failed.item, now) else None
            raise LedgerConflictError(pk, sk, reason, current) from failed.cause
        return item_from_dynamo(response["Attributes"])

    def _new_item(self, pk: str, sk: str, attrs: Item, now: float, ttl_seconds: int | None) -> Item:
        if not pk or not sk:
            raise ValueError("pk and sk must be non-empty")
        item: Item = {PK: pk, SK: sk, **attrs}
        expiry = expires_at(now, ttl_seconds)
        if expiry is not None:
            item[TTL_ATTRIBUTE] = expiry
        return item

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {PK: {"S": pk}, SK: {"S": sk}}

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                raw = error.response.get("Item")
                raise _ConditionFailed(item_from_dynamo(raw) if raw else None, error) from error
            code = error.response.get("Error", {}).get("Code", "ClientError")
            raise LedgerUnavailableError("dynamodb", operation, f"{self._table}: {code}") from error
        except BotoCoreError as error:
            raise LedgerUnavailableError("dynamodb", operation, f"{self._table}: {type(error).__name__}") from error


class _ConditionFailed(Exception):
    """Internal: a condition check failed; carries the old item when DynamoDB returned it."""

    def __init__(self, item: Item | None, cause: ClientError) -> None:
        super().__init__("conditional check failed")
        self.item = item
        self.cause = cause


def resolve_transition_conflict(
    conflict: LedgerConflictError, to_state: str, final_states: Collection[str]
) -> TransitionResult:
    """Interpret a failed transition: already in ``to_state`` is a no-op, a final state or anything else raises."""
    current_state = conflict.current_state
    if conflict.current is not None and current_state == to_state:
        return TransitionResult(changed=False, item=conflict.current)
    if current_state is not None and current_state in final_states:
        raise LedgerFinalStateError(
            conflict.pk, conflict.sk, f"already final ({current_state}), not moving to {to_state}", conflict.current
        ) from conflict
    raise conflict
