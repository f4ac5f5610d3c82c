"""DynamoDB adapter for delivery dedupe: a claim row per dedupe key (table ``DEDUPE_TABLE``, key ``pk``).

Protocol (driven by :mod:`kauto.intake.service`): a delivery *claims* the key with a conditional write (state
``pending`` with a lease), sends the message, then marks the row ``enqueued``. A concurrent delivery of the same key
sees ``pending`` and waits or gets a 503; a later one sees ``enqueued`` and is a duplicate. A claim whose lease has
run out (its claimer died mid-way) can be taken over. If the send fails the claimer deletes its own claim so that
Kaltura's retry gets through. Rows expire through DynamoDB TTL (``expires_at``) after the retention period, which
exceeds Kaltura's retry horizon (PROTOCOL.md §2.3).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.clients import dynamodb_client
from kauto.errors import DedupeStoreUnavailableError

RETENTION_SECONDS = 8 * 24 * 3600
"""Keep dedupe rows 8 days: at least a week beyond any redelivery Kaltura would still make."""

_CONDITION_FAILED = "ConditionalCheckFailedException"


class ClaimState(StrEnum):
    """State of a dedupe row."""

    PENDING = "pending"
    ENQUEUED = "enqueued"


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """Outcome of :meth:`DynamoDedupeStore.try_claim`.

    ``token`` is set when this caller now owns the claim; otherwise ``existing`` is the state of the row that
    prevented it (``pending`` with a live lease, or ``enqueued``).
    """

    token: str | None
    existing: ClaimState | None

    @property
    def acquired(self) -> bool:
        """Whether the caller owns the claim and must send, then mark or release it."""
        return self.token is not None


class DynamoDedupeStore:
    """Claim rows in the dedupe table, written only with conditional writes."""

    def __init__(
        self,
        table_name: str,
        client: Callable[[], Any] = dynamodb_client,
        retention_seconds: int = RETENTION_SECONDS,
    ) -> None:
        self._table = table_name
        self._client = client
        self._retention = retention_seconds

    def try_claim(self, key: str, *, now: float, lease_seconds: float) -> ClaimResult:
        """Claim ``key`` unless another delivery holds it with a live lease or has already enqueued it.

        ``now`` is wall-clock unix time; the lease should cover the caller's remaining run time so that only a dead
        claimer's row is ever taken over. Rows past their TTL but not yet deleted by DynamoDB count as absent.
        """
        token = uuid.uuid4().hex
        try:
            self._client().put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": key},
                    "state": {"S": ClaimState.PENDING.value},
                    "claim_token": {"S": token},
                    "claimed_at": {"N": _number(now)},
                    "lease_until": {"N": _number(now + lease_seconds)},
                    "expires_at": {"N": str(int(now) + self._retention)},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at < :now OR (#state = :pending AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":now": {"N": _number(now)},
                    ":pending": {"S": ClaimState.PENDING.value},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise DedupeStoreUnavailableError("dynamodb", "PutItem", _error_code(exc)) from exc
            existing = exc.response.get("Item", {}).get("state", {}).get("S")
            state = ClaimState.ENQUEUED if existing == ClaimState.ENQUEUED.value else ClaimState.PENDING
            return ClaimResult(token=None, existing=state)
        except BotoCoreError as exc:
            raise DedupeStoreUnavailableError("dynamodb", "PutItem", type(exc).__name__) from exc
        return ClaimResult(token=token, existing=None)

    def mark_enqueued(self, key: str, token: str, *, message_id: str, now: float) -> bool:
        """Record that the claimed message is in the queue. Returns ``False`` if the claim is no longer ours."""
        try:
            self._client().update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #state = :enqueued, enqueued_at = :now, message_id = :message_id",
                ConditionExpression="claim_token = :token",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":enqueued": {"S": ClaimState.ENQUEUED.value},
                    ":now": {"N": _number(now)},
                    ":message_id": {"S": message_id},
                    ":token": {"S": token},
                },
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise DedupeStoreUnavailableError("dynamodb", "UpdateItem", _error_code(exc)) from exc
        except BotoCoreError as exc:
            raise DedupeStoreUnavailableError("dynamodb", "UpdateItem", type(exc).__name__) from exc
        return True

    def release(self, key: str, token: str) -> bool:
        """Delete our own pending claim (after a failed send). Returns ``False`` if the row is not ours any more."""
        try:
            self._client().delete_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                ConditionExpression="claim_token = :token AND #state = :pending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":pending": {"S": ClaimState.PENDING.value},
                },
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise DedupeStoreUnavailableError("dynamodb", "DeleteItem", _error_code(exc)) from exc
        except BotoCoreError as exc:
            raise DedupeStoreUnavailableError("dynamodb", "DeleteItem", type(exc).__name__) from exc
        return True


def _number(value: float) -> str:
    return f"{value:.3f}"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))
