"""Reading the audit trail (``audit/partner_id=<pid>/date=<YYYY-MM-DD>/*.jsonl``) and appending operator facts to it.

A fact can appear in several objects (a redelivered event states it again, with the same ``fact_id``): readers here
keep the first occurrence of each id, as the README's Athena queries do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kauto.aws.audit import AUDIT_PREFIX, AuditFact, AuditTrail, audit_partition
from kauto.aws.s3_writer import S3ObjectStore
from kauto_ops.stack import OpsError

Fact = dict[str, Any]


def days_back(days: int, today: date | None = None) -> list[date]:
    """The last ``days`` UTC days, oldest first, ending today."""
    last = today or datetime.now(UTC).date()
    return [last - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def read_facts(s3: Any, bucket: str, partner_id: int, days: Iterable[date]) -> list[Fact]:
    """Every fact of ``partner_id`` recorded on ``days``, deduplicated on ``fact_id``, oldest first."""
    keys = [key for day in days for key in _keys(s3, bucket, audit_partition(partner_id, day.isoformat()))]
    return dedupe(fact for key in keys for fact in _lines(s3, bucket, key))


def latest_facts(s3: Any, bucket: str, limit: int) -> list[Fact]:
    """The ``limit`` most recent facts of any partner (newest first), for a quick look (``GET /_local/status``)."""
    keys = sorted(_keys(s3, bucket, AUDIT_PREFIX), key=_recency, reverse=True)
    facts: list[Fact] = []
    for key in keys:
        facts.extend(_lines(s3, bucket, key))
        if len(dedupe(facts)) >= limit:
            break
    return sorted(dedupe(facts), key=lambda fact: str(fact.get("at")), reverse=True)[:limit]


def partners_in_trail(s3: Any, bucket: str) -> list[int]:
    """The partner ids that have an audit partition."""
    found = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=AUDIT_PREFIX, Delimiter="/")
        for page in pages:
            for prefix in page.get("CommonPrefixes", []):
                value = str(prefix["Prefix"]).removeprefix(AUDIT_PREFIX).removeprefix("partner_id=").rstrip("/")
                if value.isdigit():
                    found.append(int(value))
    except (ClientError, BotoCoreError) as error:
        raise OpsError(f"cannot list the audit trail in {bucket}: {_code(error)}") from error
    return sorted(found)


def dedupe(facts: Iterable[Fact]) -> list[Fact]:
    """Keep the first fact of each ``fact_id`` (the earliest recorded, once sorted by time)."""
    seen: dict[str, Fact] = {}
    for fact in sorted(facts, key=lambda fact: str(fact.get("at"))):
        seen.setdefault(str(fact.get("fact_id")), fact)
    return list(seen.values())


def record_operator_facts(s3: Any, bucket: str, facts: Iterable[AuditFact], command: str) -> list[str]:
    """Append what an operator command did (replays, backfills) to the trail; returns the keys written."""
    trail = AuditTrail(S3ObjectStore(s3, bucket), clock=time.time, invocation_id=f"ops-{command}-{int(time.time())}")
    trail.record_all(facts)
    return trail.flush()


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(".jsonl"):
                    yield str(item["Key"])
    except (ClientError, BotoCoreError) as error:
        raise OpsError(f"cannot list the audit trail in {bucket}: {_code(error)}") from error


def _lines(s3: Any, bucket: str, key: str) -> list[Fact]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except (ClientError, BotoCoreError) as error:
        raise OpsError(f"cannot read {key}: {_code(error)}") from error
    facts = []
    for line in body.splitlines():
        try:
            fact = json.loads(line)
        except ValueError:
            continue  # a damaged line hides nothing else
        if isinstance(fact, dict):
            facts.append(fact)
    return facts


def _recency(key: str) -> tuple[str, str]:
    """``(date, file name)``: file names start with the flush time (HHMMSS)."""
    parts = key.split("/")
    return parts[-2], parts[-1]


def _code(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
