"""The run manifest (``manifest.json``): what a run wrote, from which Kaltura call, with secrets redacted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kauto.aws.object_store import CSV_CONTENT_TYPE, JSON_CONTENT_TYPE, ObjectStore, WriteResult
from kauto.aws.report_keys import manifest_key

MANIFEST_VERSION = 1
REDACTED = "[redacted]"
_SECRET_PARAM = re.compile(r"(^ks$|secret|token|password|passwd|signature|authorization|credential|privilege)", re.I)
# A KS v2 is "v2|..." base64-encoded: it always starts with "djJ8" (docs/kaltura.md#ks-v2).
_KS_V2_PREFIX = "djJ8"


@dataclass(frozen=True, slots=True)
class SourceCall:
    """The Kaltura call that produced a file, e.g. ``SourceCall("report", "getCsvFromStringParams", {"id": 6000})``.

    Parameters whose name looks secret (``ks``, ``*secret*``, ``*token*``, ...) or whose value is a KS are replaced
    by ``[redacted]`` when serialized, so a manifest never carries credentials.
    """

    service: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The redacted, JSON-ready form."""
        return {"service": self.service, "action": self.action, "params": redact_params(self.params)}


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with secret-looking names or KS-looking values replaced by ``[redacted]``."""
    redacted: dict[str, Any] = {}
    for name, value in params.items():
        if _SECRET_PARAM.search(str(name)) or (isinstance(value, str) and value.startswith(_KS_V2_PREFIX)):
            redacted[str(name)] = REDACTED
        elif isinstance(value, Mapping):
            redacted[str(name)] = redact_params(value)
        else:
            redacted[str(name)] = value
    return redacted


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One output file of a run."""

    report: str
    key: str
    rows: int
    columns: tuple[str, ...]
    bytes: int
    sha256: str
    source: SourceCall
    content_type: str = CSV_CONTENT_TYPE
    classification: tuple[str, ...] = ()
    """What the file holds that needs care, e.g. ``personal_data``, ``message_content``."""

    @classmethod
    def from_result(
        cls,
        report: str,
        result: WriteResult,
        columns: Iterable[str],
        source: SourceCall,
        classification: Iterable[str] = (),
    ) -> ManifestFile:
        """The entry for a completed write."""
        return cls(
            report,
            result.key,
            result.rows,
            tuple(columns),
            result.bytes,
            result.sha256,
            source,
            classification=tuple(classification),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready entry."""
        return {
            "report": self.report,
            "key": self.key,
            "rows": self.rows,
            "columns": list(self.columns),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "source": self.source.to_json(),
        } | ({"classification": list(self.classification)} if self.classification else {})


@dataclass(frozen=True, slots=True)
class Manifest:
    """``manifest.json`` of one run (a session pull or a weekly report set).

    ``kind`` is ``session`` or ``weekly``; ``window_start``/``window_end`` are the report time window
    (timezone-aware); ``scope`` holds the ids the run is about (e.g. ``{"entry_id": ..., "session_id": ...}``).
    """

    partner_id: int
    kind: str
    window_start: datetime
    window_end: datetime
    files: tuple[ManifestFile, ...]
    generated_at: datetime
    scope: Mapping[str, str] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    """Reports of the run that could not be produced: name -> why (listed as ``missing_reports``)."""
    pages: Mapping[str, str] = field(default_factory=dict)
    """Pages written beside the files: name -> key (e.g. the session summary page)."""

    def __post_init__(self) -> None:
        for moment in (self.window_start, self.window_end, self.generated_at):
            if moment.tzinfo is None:
                raise ValueError("manifest datetimes must be timezone-aware")
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        object.__setattr__(self, "files", tuple(self.files))

    def to_json(self) -> dict[str, Any]:
        """The JSON document written to S3."""
        return (
            {
                "manifest_version": MANIFEST_VERSION,
                "partner_id": self.partner_id,
                "kind": self.kind,
                "scope": dict(self.scope),
                "window": {
                    "start": _iso_utc(self.window_start),
                    "end": _iso_utc(self.window_end),
                    "start_unix": int(self.window_start.timestamp()),
                    "end_unix": int(self.window_end.timestamp()),
                },
                "generated_at": _iso_utc(self.generated_at),
                "rows": sum(entry.rows for entry in self.files),
                "bytes": sum(entry.bytes for entry in self.files),
                "files": [entry.to_json() for entry in self.files],
            }
            | (
                {"missing_reports": [{"report": name, "reason": why} for name, why in self.missing.items()]}
                if self.missing
                else {}
            )
            | ({"pages": dict(self.pages)} if self.pages else {})
        )


def write_manifest(store: ObjectStore, prefix: str, manifest: Manifest) -> WriteResult:
    """Write ``<prefix>manifest.json`` (overwriting a previous run's). Write it last: it marks the run complete."""
    body = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False).encode("utf-8")
    return store.put_bytes(manifest_key(prefix), body, content_type=JSON_CONTENT_TYPE)


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
