"""Port: where reports, manifests and pages go (``ObjectStore``, ``ObjectWriter``), its errors and key rules.

The S3 adapter is :mod:`kauto.aws.s3_writer` (:class:`~kauto.aws.s3_writer.S3ObjectStore`); the in-memory double
is ``kauto_local.fakes.InMemoryObjectStore``. Both share :class:`WriterBase` (record helpers, context-manager rules)
and :func:`check_object_key`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from kauto.errors import DependencyUnavailableError, KautoError

MAX_KEY_BYTES = 1_024
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
CHECKPOINT_PREFIX = "_checkpoints/"
"""Temporary tails of checkpointed writers live here; no report key may."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class ReportStoreError(DependencyUnavailableError):
    """An S3 call failed (the multipart upload, if any, was aborted). Retrying the job rewrites the same key."""

    def __init__(self, operation: str, bucket: str, key: str, code: str) -> None:
        super().__init__("s3", operation, f"s3://{bucket}/{key}: {code}")
        self.bucket = bucket
        self.key = key
        self.code = code


class ObjectTooLargeError(KautoError):
    """The output outgrew the part-size schedule (more than 10,000 parts); the upload was aborted."""


class CheckpointError(KautoError):
    """A checkpoint state cannot be resumed (malformed, or its upload/tail/parts no longer match).

    Permanent for that state: restart the job from the beginning (it overwrites the same key).
    """


class WriterClosedError(KautoError):
    """The writer was used after complete(), abort() or checkpoint()."""


class S3KeyError(KautoError, ValueError):
    """A key component is empty or unsafe (``/``, ``..``, control characters) or a key is malformed."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A completed object. ``parts`` is 0 for a single PutObject; ``etag`` is S3's ETag (quoted)."""

    bucket: str
    key: str
    bytes: int
    rows: int
    sha256: str
    parts: int
    etag: str

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


class ObjectWriter(Protocol):
    """Port: a streaming writer for one object (:class:`S3MultipartWriter`, ``fakes.InMemoryObjectWriter``)."""

    @property
    def key(self) -> str:
        """The object key."""
        ...

    @property
    def bytes_written(self) -> int:
        """Bytes accepted so far (including any resumed prefix)."""
        ...

    @property
    def rows_written(self) -> int:
        """Rows counted so far (including any resumed prefix)."""
        ...

    def write(self, data: bytes | str, *, rows: int = 0) -> None:
        """Append ``data`` (``str`` is encoded as UTF-8) holding ``rows`` data rows."""
        ...

    def write_records(self, records: Iterable[bytes | str], *, with_header: bool) -> None:
        """Append records, one row each; with ``with_header`` the first record is a header and not counted."""
        ...

    def checkpoint(self) -> dict[str, Any]:
        """Persist what is needed to continue elsewhere and close this writer; returns JSON-serializable state."""
        ...

    def complete(self) -> WriteResult:
        """Finish the object."""
        ...

    def abort(self) -> None:
        """Discard everything written (idempotent)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ObjectStore(Protocol):
    """Port: where reports and manifests go (:class:`S3ObjectStore`, ``fakes.InMemoryObjectStore``)."""

    @property
    def bucket(self) -> str:
        """The bucket name (used in ``s3://`` links)."""
        ...

    def open_writer(self, key: str, *, content_type: str = CSV_CONTENT_TYPE) -> ObjectWriter:
        """A new streaming writer for ``key``."""
        ...

    def resume_writer(self, state: Mapping[str, Any]) -> ObjectWriter:
        """Continue a writer from :meth:`ObjectWriter.checkpoint` state."""
        ...

    def put_bytes(self, key: str, body: bytes, *, content_type: str) -> WriteResult:
        """Write a small object in one call."""
        ...

    def stream_object(self, key: str) -> Iterator[bytes]:
        """Read a completed object back in chunks (e.g. a session's CSVs for its summary page)."""
        ...


class WriterBase(ABC):
    """The record-level helpers and context-manager behaviour every :class:`ObjectWriter` shares.

    Use as ``with store.open_writer(key) as writer: ...; result = writer.complete()``: leaving the block with an
    exception aborts the upload; leaving it normally without ``complete()`` or ``checkpoint()`` aborts and raises.
    A writer is ``open`` until it ends ``completed``, ``checkpointed`` or ``aborted`` (``_status``).
    """

    def __init__(self, key: str, rows: int = 0) -> None:
        self._key = key
        self._rows = rows
        self._status = "open"

    @abstractmethod
    def write(self, data: bytes | str, *, rows: int = 0) -> None:
        """Append ``data`` holding ``rows`` data rows."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written; best effort and idempotent."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the object goes, for error messages."""

    @property
    def key(self) -> str:
        return self._key

    @property
    def rows_written(self) -> int:
        return self._rows

    @property
    def is_open(self) -> bool:
        """Whether the writer still accepts data."""
        return self._status == "open"

    def _require_open(self) -> None:
        if self._status != "open":
            raise WriterClosedError(f"writer for {self.location} is {self._status}")

    def _end(self, status: str) -> bool:
        """Move an open or checkpointed writer to ``status``; False when it had already completed or aborted."""
        if self._status in ("aborted", "completed"):
            return False
        self._status = status
        return True

    def write_records(self, records: Iterable[bytes | str], *, with_header: bool) -> None:
        """Append each record as one row; with ``with_header`` the first record is written but not counted."""
        iterator = iter(records)
        if with_header:
            header = next(iterator, None)
            if header is None:
                return
            self.write(header)
        for record in iterator:
            self.write(record, rows=1)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.is_open:
            return
        self.abort()
        if exc_type is None:
            raise WriterClosedError("writer left open: call complete() or checkpoint() before leaving the block")


def check_object_key(key: str, checkpoint_prefix: str = CHECKPOINT_PREFIX) -> None:
    """Refuse keys S3 or our layout cannot take: empty, > 1024 bytes, leading ``/``, ``//``, ``.``/``..`` segments,
    control characters, or under the checkpoint prefix."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3KeyError(f"object key must be 1..{MAX_KEY_BYTES} bytes")
    if key.startswith("/") or "//" in key or any(segment in (".", "..") for segment in key.split("/")):
        raise S3KeyError(f"object key {key!r} has an empty, '.' or '..' segment")
    if CONTROL_CHARACTERS.search(key):
        raise S3KeyError("object key contains control characters")
    if key.startswith(checkpoint_prefix):
        raise S3KeyError(f"object key may not be under the checkpoint prefix {checkpoint_prefix!r}")
