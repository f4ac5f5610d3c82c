"""What the weekly digest reads: report objects in the bucket (streamed) and ledger rows (scanned).

The output ports (:class:`kauto.aws.object_store.ObjectStore`, :class:`kauto.aws.ledger.Ledger`) only write and read
single rows, so the digest has its own small read port, :class:`DigestSources`:

- :class:`AwsDigestSources`: S3 GetObject (streamed in 1 MiB chunks, never held whole) and a DynamoDB Scan of the
  ledger filtered server-side on a partition-key prefix. The scan reads the whole table once per digest; fine for a
  ledger of captions and tasks, and the place to switch to a GSI query if the table grows very large.
- ``kauto_local.fakes.InMemoryDigestSources``: the same over the in-memory object store and ledger (tests).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.clients import dynamodb_client, s3_client
from kauto.aws.ledger import PK, Item, LedgerUnavailableError, is_live, item_from_dynamo
from kauto.aws.object_store import ReportStoreError
from kauto.aws.s3_writer import stream_s3_object
from kauto.config import required_env

READ_CHUNK_BYTES = 1024 * 1024
# Without s3:ListBucket on the prefix, S3 answers 403 AccessDenied for a key that does not exist: for the digest,
# which only reads keys it may read (GetObject on weekly/*), that is a missing object (e.g. no digest.json yet).
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "AccessDenied", "403"})


class DigestSources(Protocol):
    """Port: read what a weekly run left behind."""

    def get_object(self, key: str) -> bytes | None:
        """A small object (manifest, previous digest data) whole; ``None`` when it does not exist."""
        ...

    def stream_object(self, key: str) -> Iterator[bytes]:
        """A report object as a stream of chunks (bounded memory whatever its size)."""
        ...

    def scan_ledger(self, pk_prefix: str) -> Iterator[Item]:
        """Every live ledger item whose partition key starts with ``pk_prefix``."""
        ...


class AwsDigestSources:
    """:class:`DigestSources` over an S3 bucket and the ledger table (boto3 low-level clients)."""

    def __init__(
        self, s3: Any, bucket: str, dynamodb: Any, table: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._dynamodb = dynamodb
        self._table = table
        self._clock = clock

    @classmethod
    def for_bucket(cls, bucket: str, environ: Mapping[str, str] | None = None) -> AwsDigestSources:
        """The shared clients, ``bucket`` (the report store's) and the ledger table named by ``LEDGER_TABLE``."""
        env = os.environ if environ is None else environ
        return cls(s3_client(), bucket, dynamodb_client(), required_env("LEDGER_TABLE", env))

    def get_object(self, key: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            body: bytes = response["Body"].read()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "ClientError"))
            if code in _MISSING:
                return None
            raise ReportStoreError("GetObject", self._bucket, key, code) from error
        except BotoCoreError as error:
            raise ReportStoreError("GetObject", self._bucket, key, type(error).__name__) from error
        return body

    def stream_object(self, key: str) -> Iterator[bytes]:
        return stream_s3_object(self._s3, self._bucket, key, READ_CHUNK_BYTES)

    def scan_ledger(self, pk_prefix: str) -> Iterator[Item]:
        now = self._clock()
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(#pk, :prefix)",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":prefix": {"S": pk_prefix}},
        }
        while True:
            try:
                response = self._dynamodb.scan(**request)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "ClientError")
                raise LedgerUnavailableError("dynamodb", "Scan", f"{self._table}: {code}") from error
            except BotoCoreError as error:
                raise LedgerUnavailableError("dynamodb", "Scan", f"{self._table}: {type(error).__name__}") from error
            for raw in response.get("Items", []):
                item = item_from_dynamo(raw)
                if is_live(item, now):
                    yield item
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key
