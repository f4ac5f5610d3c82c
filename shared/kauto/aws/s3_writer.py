"""Report output to S3: the streaming multipart writer with checkpoint/resume, behind the object store port.

The port and its errors are in :mod:`kauto.aws.object_store`, the keys in :mod:`kauto.aws.report_keys`, the
manifest in :mod:`kauto.aws.manifest`.

Writer (:class:`S3MultipartWriter`, created by :class:`S3ObjectStore`):

- Memory is one part buffer, a ``bytearray`` that grows to the current part size and is then reused for each part;
  nothing spills to /tmp.
- Part sizes follow :func:`part_size_for`: 8 MiB for parts 1-1000, doubling every 1000 parts (capped at S3's 5 GiB),
  so 10,000 parts hold about 8 TiB, beyond S3's 5 TiB object limit. Every part but the last is >= 5 MiB.
- Output smaller than one part goes up with a single PutObject; larger output with a multipart upload.
- SHA-256 of the whole object, bytes and rows are counted on the fly for the manifest.
- Any S3 error aborts the multipart upload (AbortMultipartUpload) before raising; the bucket's
  ``AbortIncompleteMultipartUpload`` lifecycle rule catches uploads of workers that died.
- Objects are ``text/csv; charset=utf-8`` by default; encryption is the bucket default (no SSE arguments).
- Re-running the same logical job writes the same key, overwriting the previous object.

Checkpoint/resume (a job that nears the Lambda time limit continues in a new SQS message):
:meth:`S3MultipartWriter.checkpoint` stores the buffered tail (less than one part) as a temporary object under
``_checkpoints/<writer id>/`` and returns a small JSON-serializable state (about 1 KB whatever the object size: the
completed parts are not listed in it but re-read with ListParts on resume and checked against a digest of their
ETags, so the state never approaches SQS's 256 KiB). :meth:`S3ObjectStore.resume_writer` continues so that the final
object is byte-identical to an uninterrupted run.

Hash across a resume: ``hashlib`` state cannot be serialized and a pure-Python SHA-256 with exportable state would be
far too slow. A writer resumed after parts were uploaded therefore computes the SHA-256 after completion by streaming
the completed object back (GetObject pinned to the new ETag with ``If-Match``; in-region reads are fast and free of
transfer charges). Only resumed jobs pay this read; when nothing but the tail had been written before the checkpoint,
the tail itself restores the hash and no read is needed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.object_store import (
    CHECKPOINT_PREFIX,
    CSV_CONTENT_TYPE,
    CheckpointError,
    ObjectTooLargeError,
    ReportStoreError,
    WriterBase,
    WriteResult,
    check_object_key,
)

__all__ = [
    "CHECKPOINT_STATE_VERSION",
    "DEFAULT_PART_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "S3MultipartWriter",
    "S3ObjectStore",
    "max_object_size",
    "part_size_for",
    "stream_s3_object",
]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
"""S3: every part except the last must be at least 5 MiB."""
MAX_PART_SIZE = 5 * 1024 * MIB
"""S3: a part is at most 5 GiB."""
MAX_PARTS = 10_000
"""S3: a multipart upload has at most 10,000 parts."""
DEFAULT_PART_SIZE = 8 * MIB
PARTS_PER_SIZE_STEP = 1_000
CHECKPOINT_STATE_VERSION = 1
_READ_CHUNK = MIB
_NOT_FOUND_CODES = frozenset({"NoSuchUpload", "NoSuchKey", "404"})


def part_size_for(part_number: int, base_part_size: int = DEFAULT_PART_SIZE) -> int:
    """Size of part ``part_number`` (1-based): ``base`` for parts 1-1000, doubling every 1000 parts, at most 5 GiB."""
    if not 1 <= part_number <= MAX_PARTS:
        raise ValueError(f"part_number must be within 1..{MAX_PARTS}")
    return min(base_part_size << ((part_number - 1) // PARTS_PER_SIZE_STEP), MAX_PART_SIZE)


def max_object_size(base_part_size: int = DEFAULT_PART_SIZE) -> int:
    """The largest object the part-size schedule can write in 10,000 parts."""
    return sum(
        part_size_for(first, base_part_size) * PARTS_PER_SIZE_STEP
        for first in range(1, MAX_PARTS + 1, PARTS_PER_SIZE_STEP)
    )


class S3MultipartWriter(WriterBase):
    """Stream bytes to one S3 object. Create with :meth:`S3ObjectStore.open_writer` / :meth:`resume_writer`."""

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        key: str,
        *,
        content_type: str = CSV_CONTENT_TYPE,
        base_part_size: int = DEFAULT_PART_SIZE,
        checkpoint_prefix: str = CHECKPOINT_PREFIX,
        writer_id: str | None = None,
    ) -> None:
        if not MIN_PART_SIZE <= base_part_size <= MAX_PART_SIZE:
            raise ValueError(f"base_part_size must be within {MIN_PART_SIZE}..{MAX_PART_SIZE} bytes")
        check_object_key(key, checkpoint_prefix)
        super().__init__(key)
        self._s3 = s3_client
        self._bucket = bucket
        self._content_type = content_type
        self._base_part_size = base_part_size
        self._checkpoint_prefix = checkpoint_prefix
        self._writer_id = writer_id or uuid.uuid4().hex
        # Grows up to the current part size as data arrives, then is overwritten in place for each further part.
        self._buffer = bytearray()
        self._filled = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._bytes = 0
        self._hasher = hashlib.sha256()
        self._hash_covers_all = True
        self._resumed = False

    @property
    def location(self) -> str:
        return f"s3://{self._bucket}/{self._key}"

    @property
    def bytes_written(self) -> int:
        return self._bytes

    def write(self, data: bytes | str, *, rows: int = 0) -> None:
        """Append ``data``; each time the buffer holds a full part it is uploaded (the first one starts the upload)."""
        self._require_open()
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self._bytes += len(payload)
        self._rows += rows
        view = memoryview(payload)
        part_size = self._current_part_size()
        while view:
            taken = min(part_size - self._filled, len(view))
            end = self._filled + taken
            # In place where the buffer is already that long; grows it (up to one part) where it is not yet.
            self._buffer[self._filled : end] = view[:taken]
            self._filled = end
            view = view[taken:]
            if self._filled == part_size:
                self._upload_buffer_as_part()
                part_size = self._current_part_size()

    def complete(self) -> WriteResult:
        """Upload what is buffered and finish the object; returns its key, size, rows, SHA-256, parts and ETag."""
        self._require_open()
        try:
            etag = self._put_single_object() if self._upload_id is None else self._complete_multipart_upload()
            sha256 = self._hasher.hexdigest() if self._hash_covers_all else self._hash_stored_object(etag)
        except Exception:
            self.abort()
            raise
        self._status = "completed"
        if self._resumed:
            self._delete_checkpoint_objects()
        return WriteResult(self._bucket, self._key, self._bytes, self._rows, sha256, len(self._parts), etag)

    def checkpoint(self) -> dict[str, Any]:
        """Store the buffered tail as a temporary object and return the state to resume from; closes this writer.

        The state is small (about 1 KB) and JSON-serializable: put it in the continuation message.
        """
        self._require_open()
        tail_key: str | None = None
        tail = self._take_filled()
        if tail:
            tail_key = f"{self._checkpoint_prefix}{self._writer_id}/{len(self._parts) + 1:05d}-{self._bytes}.tail"
            self._call("PutObject", self._s3.put_object, Bucket=self._bucket, Key=tail_key, Body=tail)
        state = {
            "version": CHECKPOINT_STATE_VERSION,
            "bucket": self._bucket,
            "key": self._key,
            "writer_id": self._writer_id,
            "content_type": self._content_type,
            "base_part_size": self._base_part_size,
            "checkpoint_prefix": self._checkpoint_prefix,
            "upload_id": self._upload_id,
            "part_count": len(self._parts),
            "parts_digest": _parts_digest(self._parts),
            "bytes": self._bytes,
            "rows": self._rows,
            "tail_key": tail_key,
            "tail_bytes": len(tail),
            "tail_sha256": hashlib.sha256(tail).hexdigest(),
        }
        self._status = "checkpointed"
        self._release_buffer()
        return state

    def abort(self) -> None:
        """Abort the multipart upload (if one is in progress) and drop checkpoint objects; idempotent.

        Best effort: if S3 refuses, the failure is logged and the bucket's lifecycle rules remove the leftovers.
        """
        if not self._end("aborted"):
            return
        self._release_buffer()
        if self._upload_id is not None:
            try:
                self._call_raw(
                    "AbortMultipartUpload",
                    self._s3.abort_multipart_upload,
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                )
            except ReportStoreError as error:
                logger.warning("could not abort multipart upload", extra={"key": self._key, "code": error.code})
        if self._resumed:
            self._delete_checkpoint_objects()

    @classmethod
    def resume(
        cls, s3_client: Any, state: Mapping[str, Any], *, expected_bucket: str | None = None
    ) -> S3MultipartWriter:
        """Rebuild a writer from :meth:`checkpoint` state: re-read the uploaded parts (ListParts, checked against the
        state's digest) and the tail object, then continue writing where the previous run stopped.

        Raises :class:`CheckpointError` when the state does not match what is in S3 (restart the job), or
        :class:`ReportStoreError` when S3 could not be read (retry).
        """
        fields = _validated_state(state)
        if expected_bucket is not None and fields["bucket"] != expected_bucket:
            raise CheckpointError(f"checkpoint is for bucket {fields['bucket']!r}, not {expected_bucket!r}")
        writer = cls(
            s3_client,
            fields["bucket"],
            fields["key"],
            content_type=fields["content_type"],
            base_part_size=fields["base_part_size"],
            checkpoint_prefix=fields["checkpoint_prefix"],
            writer_id=fields["writer_id"],
        )
        writer._resumed = True
        writer._bytes = fields["bytes"]
        writer._rows = fields["rows"]
        uploaded = 0
        if fields["upload_id"] is not None:
            writer._upload_id = fields["upload_id"]
            writer._parts, uploaded = writer._list_uploaded_parts(fields["part_count"], fields["parts_digest"])
            # The running hash of the uploaded parts is gone with the previous process: hash after completion.
            writer._hash_covers_all = not writer._parts
        elif fields["part_count"]:
            raise CheckpointError("checkpoint lists parts but no upload id")
        tail = writer._read_tail(fields)
        if uploaded + len(tail) != writer._bytes:
            raise CheckpointError("uploaded parts and tail do not add up to the checkpointed size")
        writer._buffer = bytearray(tail)
        writer._filled = len(tail)
        return writer

    def _current_part_size(self) -> int:
        return part_size_for(min(len(self._parts) + 1, MAX_PARTS), self._base_part_size)

    def _upload_buffer_as_part(self) -> None:
        """Upload the buffer as the next part: a full one while writing, or the shorter last one on completion."""
        if len(self._parts) >= MAX_PARTS:
            self.abort()
            raise ObjectTooLargeError(f"s3://{self._bucket}/{self._key} needs more than {MAX_PARTS} parts")
        if self._upload_id is None:
            response = self._call(
                "CreateMultipartUpload",
                self._s3.create_multipart_upload,
                Bucket=self._bucket,
                Key=self._key,
                ContentType=self._content_type,
            )
            self._upload_id = str(response["UploadId"])
        last_part = self._filled < self._current_part_size()
        body = self._take_filled()
        if self._hash_covers_all:
            self._hasher.update(body)
        number = len(self._parts) + 1
        response = self._call(
            "UploadPart",
            self._s3.upload_part,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        if last_part:
            self._release_buffer()
        else:
            self._filled = 0

    def _put_single_object(self) -> str:
        body = self._take_filled()
        self._hasher.update(body)
        response = self._call(
            "PutObject",
            self._s3.put_object,
            Bucket=self._bucket,
            Key=self._key,
            Body=body,
            ContentType=self._content_type,
        )
        return str(response["ETag"])

    def _complete_multipart_upload(self) -> str:
        if self._filled:
            self._upload_buffer_as_part()
        response = self._call(
            "CompleteMultipartUpload",
            self._s3.complete_multipart_upload,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        # Completed: nothing is left to abort if hashing the stored object fails afterwards.
        self._upload_id = None
        return str(response["ETag"])

    def _hash_stored_object(self, etag: str) -> str:
        response = self._call("GetObject", self._s3.get_object, Bucket=self._bucket, Key=self._key, IfMatch=etag)
        hasher = hashlib.sha256()
        size = 0
        for chunk in response["Body"].iter_chunks(_READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
        if size != self._bytes:
            raise CheckpointError(f"s3://{self._bucket}/{self._key} holds {size} bytes, expected {self._bytes}")
        return hasher.hexdigest()

    def _list_uploaded_parts(self, part_count: int, digest: str) -> tuple[list[dict[str, Any]], int]:
        parts: list[dict[str, Any]] = []
        size = 0
        marker = 0
        while True:
            page_start = {"PartNumberMarker": marker} if marker else {}
            response = self._call(
                "ListParts",
                self._s3.list_parts,
                reading_checkpoint=True,
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MaxParts=1000,
                **page_start,
            )
            for part in response.get("Parts", []):
                # Parts past the checkpoint come from a run that died later; they are re-uploaded identically.
                if part["PartNumber"] <= part_count:
                    parts.append({"PartNumber": part["PartNumber"], "ETag": part["ETag"]})
                    size += int(part["Size"])
            if not response.get("IsTruncated"):
                break
            marker = int(response["NextPartNumberMarker"])
        if [part["PartNumber"] for part in parts] != list(range(1, part_count + 1)) or _parts_digest(parts) != digest:
            raise CheckpointError(f"uploaded parts of s3://{self._bucket}/{self._key} do not match the checkpoint")
        return parts, size

    def _read_tail(self, fields: Mapping[str, Any]) -> bytes:
        if fields["tail_key"] is None:
            if fields["tail_bytes"]:
                raise CheckpointError("checkpoint has tail bytes but no tail key")
            return b""
        response = self._call(
            "GetObject", self._s3.get_object, reading_checkpoint=True, Bucket=self._bucket, Key=fields["tail_key"]
        )
        tail = response["Body"].read()
        if len(tail) != fields["tail_bytes"] or hashlib.sha256(tail).hexdigest() != fields["tail_sha256"]:
            raise CheckpointError("checkpoint tail object does not match the checkpoint")
        if len(tail) >= self._current_part_size():
            raise CheckpointError("checkpoint tail is larger than a part")
        return bytes(tail)

    def _delete_checkpoint_objects(self) -> None:
        prefix = f"{self._checkpoint_prefix}{self._writer_id}/"
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})
        except (ClientError, BotoCoreError):
            # Only temporary objects are left behind; the bucket's lifecycle rule on the prefix expires them.
            logger.warning("could not delete checkpoint objects", extra={"prefix": prefix})

    def _take_filled(self) -> bytearray:
        """The filled part of the buffer, truncated in place (no copy)."""
        if self._filled < len(self._buffer):
            del self._buffer[self._filled :]
        return self._buffer

    def _release_buffer(self) -> None:
        self._buffer = bytearray()
        self._filled = 0

    def _call(self, operation: str, method: Any, *, reading_checkpoint: bool = False, **kwargs: Any) -> Any:
        """Call S3 and raise a typed error on failure: aborting the upload, or, while resuming, reporting a
        checkpoint whose upload or tail is gone as a :class:`CheckpointError`."""
        try:
            return self._call_raw(operation, method, **kwargs)
        except ReportStoreError as error:
            if not reading_checkpoint:
                self.abort()
            elif error.code in _NOT_FOUND_CODES:
                raise CheckpointError(f"checkpoint of s3://{self._bucket}/{self._key} is gone ({error.code})") from (
                    error
                )
            raise

    def _call_raw(self, operation: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "ClientError"))
            raise ReportStoreError(operation, self._bucket, self._key, code) from error
        except BotoCoreError as error:
            raise ReportStoreError(operation, self._bucket, self._key, type(error).__name__) from error


def stream_s3_object(s3: Any, bucket: str, key: str, chunk_size: int) -> Iterator[bytes]:
    """GetObject as a stream of ``chunk_size`` chunks; AWS failures raise :class:`ReportStoreError` (retryable)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "ClientError"))
        raise ReportStoreError("GetObject", bucket, key, code) from error
    except BotoCoreError as error:
        raise ReportStoreError("GetObject", bucket, key, type(error).__name__) from error


class S3ObjectStore:
    """:class:`ObjectStore` over one bucket through an injected boto3 S3 client."""

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        *,
        base_part_size: int = DEFAULT_PART_SIZE,
        checkpoint_prefix: str = CHECKPOINT_PREFIX,
    ) -> None:
        if not bucket:
            raise ValueError("bucket is required")
        self._s3 = s3_client
        self._bucket = bucket
        self._base_part_size = base_part_size
        self._checkpoint_prefix = checkpoint_prefix

    @property
    def bucket(self) -> str:
        return self._bucket

    def open_writer(self, key: str, *, content_type: str = CSV_CONTENT_TYPE) -> S3MultipartWriter:
        """A streaming writer for ``key`` (see :class:`S3MultipartWriter`)."""
        return S3MultipartWriter(
            self._s3,
            self._bucket,
            key,
            content_type=content_type,
            base_part_size=self._base_part_size,
            checkpoint_prefix=self._checkpoint_prefix,
        )

    def resume_writer(self, state: Mapping[str, Any]) -> S3MultipartWriter:
        """Continue a writer from checkpoint state (see :meth:`S3MultipartWriter.resume`)."""
        return S3MultipartWriter.resume(self._s3, state, expected_bucket=self._bucket)

    def put_bytes(self, key: str, body: bytes, *, content_type: str) -> WriteResult:
        """Write a small object (e.g. a manifest) in one PutObject."""
        with self.open_writer(key, content_type=content_type) as writer:
            writer.write(body)
            return writer.complete()

    def stream_object(self, key: str, *, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """GetObject in chunks; AWS failures raise :class:`ReportStoreError` (retryable)."""
        check_object_key(key, self._checkpoint_prefix)
        yield from stream_s3_object(self._s3, self._bucket, key, chunk_size)


def _parts_digest(parts: Iterable[Mapping[str, Any]]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(f"{part['PartNumber']}:{part['ETag']}\n".encode())
    return hasher.hexdigest()


_STATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "version": int,
    "bucket": str,
    "key": str,
    "writer_id": str,
    "content_type": str,
    "base_part_size": int,
    "checkpoint_prefix": str,
    "upload_id": (str, type(None)),
    "part_count": int,
    "parts_digest": str,
    "bytes": int,
    "rows": int,
    "tail_key": (str, type(None)),
    "tail_bytes": int,
    "tail_sha256": str,
}


def _validated_state(state: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, expected in _STATE_FIELDS.items():
        if name not in state or not isinstance(state[name], expected) or isinstance(state[name], bool):
            raise CheckpointError(f"checkpoint state field {name!r} is missing or malformed")
        fields[name] = state[name]
    if fields["version"] != CHECKPOINT_STATE_VERSION:
        raise CheckpointError(f"checkpoint state version {fields['version']} is not supported")
    if not _WRITER_ID.fullmatch(fields["writer_id"]):
        raise CheckpointError("checkpoint writer id is malformed")
    tail_key = fields["tail_key"]
    if tail_key is not None and not tail_key.startswith(f"{fields['checkpoint_prefix']}{fields['writer_id']}/"):
        raise CheckpointError("checkpoint tail key is outside the checkpoint prefix")
    if min(fields["part_count"], fields["bytes"], fields["rows"], fields["tail_bytes"]) < 0:
        raise CheckpointError("checkpoint counters must not be negative")
    return fields


_WRITER_ID = re.compile(r"[0-9a-f]{32}")
