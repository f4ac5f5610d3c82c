"""SNS alert publisher (docs/architecture.md#contracts): published at most once per (rule, subject key).

Message (JSON, UTF-8, at most 256 KB with its attributes)::

    {"alert": "<rule>", "severity": "info|warning|critical", "partner_id": 1234567, "subject": "...",
     "summary": "...", "details": {...}, "links": ["s3://bucket/key", ...], "generated_at": "2025-01-03T14:00:00Z",
     "dedupe_key": "<subject key>", "period": "2025-01-03" | null}

Message attributes ``alert``, ``severity`` and ``partner_id`` (all ``String``) let subscribers filter. The SNS
``Subject`` (used by e-mail subscriptions) is the alert subject made ASCII-printable, single-line and cut to 99
characters (SNS requires "less than 100"). Oversized ``details`` are replaced by a marker with a truncated preview.

**No personal data.** Callers pass ids and counts only (entry ids, task ids, partner ids, numbers), never user names
or e-mail addresses; Kaltura user ids are often e-mail addresses, so do not put user ids in alerts either. As a guard,
:class:`Alert` refuses any text that contains an e-mail address.

**At least once, duplicates only after a crash.** Before publishing, the publisher claims ledger item
``pk=alert#<partner>``, ``sk=<rule>#<subject key>[#<period bucket>]`` with state ``publishing``, an owner token and a
lease (``lease_until``, :data:`CLAIM_LEASE_SECONDS` ahead), publishes, then marks the claim ``published``. A later
publish of the same alert (a redelivery, a second notification, the sweep):

- finds it ``published``: does nothing;
- finds it ``publishing`` with a live lease: another worker is publishing right now, so it raises
  :class:`AlertInFlightError` (retryable: the record comes back after the visibility timeout, and if that worker died
  the lease has expired by then);
- finds it ``publishing`` with an expired lease: the worker that claimed it died between the claim and the mark, so
  it takes the claim over (a conditional update on the old owner token: one taker wins) and publishes.

If SNS refuses the publish, the claim is released so a retry can alert, and the error is raised. The only duplicate
left is a worker dying after SNS accepted the message but before the claim was marked ``published`` (or the mark
failing): its successor publishes again. Nothing is lost: at least once.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.ledger import OWNER_ATTRIBUTE, STATE_ATTRIBUTE, Ledger, LedgerConflictError, LedgerUnavailableError
from kauto.errors import DependencyUnavailableError, KautoError

logger = logging.getLogger(__name__)

SUBJECT_MAX_CHARS = 99
"""SNS: "Subjects must be ... less than 100 characters long"."""
MESSAGE_MAX_BYTES = 262_144
"""SNS: a message (with its attributes) is at most 256 KB, counted in UTF-8 bytes."""
SUMMARY_MAX_CHARS = 4_000
SUBJECT_IN_MESSAGE_MAX_CHARS = 1_000
MAX_LINKS = 50
LINK_MAX_CHARS = 1_024
DEDUPE_KEY_MAX_CHARS = 256
DEDUPE_TTL_SECONDS = 35 * 24 * 3600
"""Keep alert claims 35 days: longer than SQS's 14-day maximum retention plus a redrive from the DLQ."""
CLAIM_LEASE_SECONDS = 60
"""How long a ``publishing`` claim belongs to its worker. Longer than the slowest publish a live worker can make (SNS
client: 3 attempts of 2 s connect + 5 s read, plus backoff) and shorter than the events queue's visibility timeout
(390 s at least), so the redelivery of a record whose worker died always finds the lease expired."""

_RULE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]+")
_FALLBACK_SUBJECT = "Kaltura automations alert"
# Punctuation that NFKD does not reduce to ASCII but that carries meaning in a subject line.
_ASCII_PUNCTUATION = str.maketrans(
    {
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00ab": '"',
        "\u00bb": '"',
        "\u201c": '"',
        "\u201d": '"',
        "\u2018": "'",
        "\u2019": "'",
    }
)
_TRUNCATION_MARK = "..."
# Room left for SNS's own accounting of attribute names/types and JSON framing differences.
_SAFETY_BYTES = 1_024


class Severity(StrEnum):
    """Alert severity, also a message attribute for subscription filter policies."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertPeriod(StrEnum):
    """Dedupe period: with a period the alert may fire again once per period bucket (UTC)."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    def bucket(self, now: float) -> str:
        """The bucket label of unix time ``now``: ``2025-01-03T14``, ``2025-01-03`` or ``2025-W01`` (ISO week)."""
        moment = datetime.fromtimestamp(now, tz=UTC)
        if self is AlertPeriod.HOUR:
            return moment.strftime("%Y-%m-%dT%H")
        if self is AlertPeriod.DAY:
            return moment.strftime("%Y-%m-%d")
        iso_year, iso_week, _ = moment.isocalendar()
        return f"{iso_year:04d}-W{iso_week:02d}"


class AlertContentError(KautoError, ValueError):
    """An alert was built with invalid content (bad rule name, non-JSON details, personal data...)."""


class AlertPersonalDataError(AlertContentError):
    """An alert field contains an e-mail address. ``field`` names where; the value itself is never repeated."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"alert {field_name} contains an e-mail address; alerts carry ids and counts only")
        self.field = field_name


class AlertPublishError(DependencyUnavailableError):
    """SNS did not accept the alert; the dedupe claim was released, so retrying the job can alert again."""


class AlertInFlightError(AlertPublishError):
    """Another worker holds a live claim on this alert and is publishing it; retry after its lease expires."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. ``rule`` is the alert name (``[a-z0-9][a-z0-9_.-]*``, e.g. ``reach_task_error``).

    ``details`` must be JSON-serializable (datetimes, dates, Decimals and sets are converted); ``links`` are S3 URIs
    or keys of the outputs concerned. No field may contain personal data (see the module docstring).
    """

    rule: str
    severity: Severity
    partner_id: int
    subject: str
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _RULE_PATTERN.fullmatch(self.rule):
            raise AlertContentError(f"alert rule {self.rule!r} must match {_RULE_PATTERN.pattern}")
        try:
            object.__setattr__(self, "severity", Severity(self.severity))
        except ValueError as error:
            raise AlertContentError(f"severity must be one of {[s.value for s in Severity]}") from error
        if isinstance(self.partner_id, bool) or not isinstance(self.partner_id, int) or self.partner_id <= 0:
            raise AlertContentError("partner_id must be a positive integer")
        if not self.subject.strip():
            raise AlertContentError("subject must not be empty")
        object.__setattr__(self, "links", tuple(self.links))
        if any(not isinstance(link, str) or not link for link in self.links):
            raise AlertContentError("links must be non-empty strings")
        try:
            json.dumps(self.details, default=_json_default)
        except (TypeError, ValueError) as error:
            raise AlertContentError(f"details must be JSON-serializable: {error}") from error
        if not all(isinstance(key, str) for key in self.details):
            raise AlertContentError("details keys must be strings")
        _refuse_email("subject", self.subject)
        _refuse_email("summary", self.summary)
        _refuse_email_in("details", self.details)
        for link in self.links:
            _refuse_email("links", link)


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """Result of a publish: ``published`` is False when the alert was already sent (or claimed) before."""

    published: bool
    ledger_pk: str
    ledger_sk: str
    message_id: str | None


class AlertPublisher(Protocol):
    """Port for alerting. Implemented by :class:`SnsAlertPublisher` and ``kauto_local.fakes.InMemoryAlertPublisher``."""

    def publish(self, alert: Alert, *, dedupe_key: str, period: AlertPeriod | None = None) -> AlertOutcome:
        """Publish ``alert`` unless it was already published for ``dedupe_key`` (in the current ``period``)."""
        ...


def alert_ledger_key(alert: Alert, dedupe_key: str, period_bucket: str | None) -> tuple[str, str]:
    """The ledger ``(pk, sk)`` that makes ``alert`` at most once per (rule, subject key[, period bucket])."""
    if not dedupe_key or len(dedupe_key) > DEDUPE_KEY_MAX_CHARS or _CONTROL_CHARACTERS.search(dedupe_key):
        raise AlertContentError(f"dedupe_key must be 1..{DEDUPE_KEY_MAX_CHARS} characters without control characters")
    _refuse_email("dedupe_key", dedupe_key)
    sort_key = f"{alert.rule}#{dedupe_key}"
    if period_bucket is not None:
        sort_key += f"#{period_bucket}"
    return f"alert#{alert.partner_id}", sort_key


def sns_subject(text: str) -> str:
    """``text`` as a valid SNS Subject: ASCII printable, one line, at most 99 characters, cut on a word if possible."""
    ascii_text = unicodedata.normalize("NFKD", text.translate(_ASCII_PUNCTUATION)).encode("ascii", "ignore").decode()
    single_line = " ".join(_NOT_PRINTABLE_ASCII.sub(" ", ascii_text).split())
    if not single_line:
        return _FALLBACK_SUBJECT
    if len(single_line) <= SUBJECT_MAX_CHARS:
        return single_line
    cut = single_line[: SUBJECT_MAX_CHARS - len(_TRUNCATION_MARK)]
    word_end = cut.rfind(" ")
    if word_end >= SUBJECT_MAX_CHARS // 2:
        cut = cut[:word_end]
    return cut.rstrip() + _TRUNCATION_MARK


def message_attributes(alert: Alert) -> dict[str, dict[str, str]]:
    """SNS message attributes for subscription filter policies."""
    return {
        "alert": {"DataType": "String", "StringValue": alert.rule},
        "severity": {"DataType": "String", "StringValue": alert.severity.value},
        "partner_id": {"DataType": "String", "StringValue": str(alert.partner_id)},
    }


def build_alert_message(
    alert: Alert, *, generated_at: float, dedupe_key: str, period_bucket: str | None
) -> dict[str, Any]:
    """The JSON-ready message body of the contract (long summary/subject and surplus links are cut with a marker)."""
    links = list(alert.links[:MAX_LINKS])
    links = [_cut(link, LINK_MAX_CHARS) for link in links]
    message: dict[str, Any] = {
        "alert": alert.rule,
        "severity": alert.severity.value,
        "partner_id": alert.partner_id,
        "subject": _cut(alert.subject, SUBJECT_IN_MESSAGE_MAX_CHARS),
        "summary": _cut(alert.summary, SUMMARY_MAX_CHARS),
        "details": dict(alert.details),
        "links": links,
        "generated_at": datetime.fromtimestamp(generated_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dedupe_key": dedupe_key,
        "period": period_bucket,
    }
    if len(alert.links) > MAX_LINKS:
        message["links_omitted"] = len(alert.links) - MAX_LINKS
    return message


def encode_alert_message(message: Mapping[str, Any], max_bytes: int) -> str:
    """Serialize ``message``; if it exceeds ``max_bytes`` UTF-8 bytes, replace ``details`` by a truncation marker.

    The marker is ``{"_truncated": true, "_original_bytes": n, "_preview": "<start of the details JSON>"}`` with the
    longest preview that fits.
    """
    text = _dumps(message)
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    details_text = json.dumps(message["details"], default=_json_default, ensure_ascii=False, separators=(",", ":"))
    marker: dict[str, Any] = {"_truncated": True, "_original_bytes": len(details_text.encode("utf-8")), "_preview": ""}
    truncated = {**message, "details": marker}
    room = max_bytes - len(_dumps(truncated).encode("utf-8"))
    if room < 0:
        raise AlertContentError("alert does not fit in an SNS message even without details")
    preview = _cut_utf8(details_text, room)
    while preview:
        marker["_preview"] = preview
        text = _dumps(truncated)
        overflow = len(text.encode("utf-8")) - max_bytes
        if overflow <= 0:
            return text
        # JSON escaping made the preview longer than its raw bytes: shrink by at least the overflow.
        preview = _cut_utf8(preview, len(preview.encode("utf-8")) - overflow)
    marker["_preview"] = ""
    return _dumps(truncated)


def message_budget(attributes: Mapping[str, Mapping[str, str]]) -> int:
    """Bytes left for the message body once the attributes (which count toward SNS's limit) are accounted for."""
    attribute_bytes = sum(
        len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )
    return MESSAGE_MAX_BYTES - attribute_bytes - _SAFETY_BYTES


class SnsAlertPublisher:
    """:class:`AlertPublisher` over SNS (injected boto3 SNS client) with dedupe claims in the :class:`Ledger`."""

    def __init__(
        self,
        sns_client: Any,
        topic_arn: str,
        ledger: Ledger,
        *,
        clock: Callable[[], float] = time.time,
        dedupe_ttl_seconds: int = DEDUPE_TTL_SECONDS,
        lease_seconds: int = CLAIM_LEASE_SECONDS,
    ) -> None:
        if not topic_arn:
            raise ValueError("topic_arn is required")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._lease = lease_seconds
        self._sns = sns_client
        self._topic_arn = topic_arn
        self._ledger = ledger
        self._clock = clock
        self._ttl = dedupe_ttl_seconds

    def publish(self, alert: Alert, *, dedupe_key: str, period: AlertPeriod | None = None) -> AlertOutcome:
        """Publish ``alert`` at most once per (``alert.rule``, ``dedupe_key``) — per ``period`` bucket if given.

        ``dedupe_key`` identifies what the alert is about (e.g. a vendor task id, ``<room>/<session>``); with
        ``period=AlertPeriod.DAY`` and ``dedupe_key="credit"`` a partner gets at most one credit alert per UTC day.
        Raises :class:`AlertPublishError` (claim released) when SNS refuses, :class:`AlertInFlightError` while another
        worker's claim lease is live, ``LedgerUnavailableError`` when the claim cannot be made (nothing was
        published).
        """
        now = self._clock()
        period_bucket = period.bucket(now) if period is not None else None
        pk, sk = alert_ledger_key(alert, dedupe_key, period_bucket)
        # Everything that could refuse the alert happens before the claim, so a claim always leads to a publish.
        attributes = message_attributes(alert)
        body = encode_alert_message(
            build_alert_message(alert, generated_at=now, dedupe_key=dedupe_key, period_bucket=period_bucket),
            message_budget(attributes),
        )
        subject = sns_subject(alert.subject)
        token = uuid.uuid4().hex
        claim = self._ledger.claim(
            pk,
            sk,
            {
                STATE_ATTRIBUTE: "publishing",
                OWNER_ATTRIBUTE: token,
                "alert": alert.rule,
                "severity": alert.severity.value,
                "claimed_at": int(now),
                "lease_until": int(now) + self._lease,
            },
            ttl_seconds=self._ttl,
        )
        if not claim.claimed:
            if claim.item.get(STATE_ATTRIBUTE) != "publishing":
                logger.info("alert already sent", extra={"alert": alert.rule, "ledger_sk": sk})
                existing_id = claim.item.get("message_id")
                return AlertOutcome(False, pk, sk, existing_id if isinstance(existing_id, str) else None)
            self._take_over(pk, sk, claim.item, token, now)

        try:
            response = self._sns.publish(
                TopicArn=self._topic_arn,
                Subject=subject,
                Message=body,
                MessageAttributes=attributes,
            )
        except Exception as error:
            self._release(pk, sk, token)
            if isinstance(error, ClientError | BotoCoreError):
                raise AlertPublishError("sns", "Publish", _error_code(error)) from error
            raise
        message_id = str(response.get("MessageId", ""))
        self._mark_published(pk, sk, token, message_id, now)
        return AlertOutcome(True, pk, sk, message_id)

    def _take_over(self, pk: str, sk: str, current: Mapping[str, Any], token: str, now: float) -> None:
        """Take a ``publishing`` claim whose lease expired (its worker died before marking it); raise
        :class:`AlertInFlightError` while the lease is live or when another worker took it over first."""
        if now < _lease_end(current, self._lease):
            raise AlertInFlightError("sns", "Publish", f"alert claim {sk} is held by a live worker")
        try:
            self._ledger.update(
                pk,
                sk,
                {OWNER_ATTRIBUTE: token, "lease_until": int(now) + self._lease, "taken_over_at": int(now)},
                expect={STATE_ATTRIBUTE: "publishing", OWNER_ATTRIBUTE: current.get(OWNER_ATTRIBUTE)},
            )
        except LedgerConflictError as conflict:
            if conflict.current_state == "publishing" or conflict.current is None:
                raise AlertInFlightError("sns", "Publish", f"alert claim {sk} was taken over concurrently") from None
            raise AlertInFlightError("sns", "Publish", f"alert claim {sk} was published concurrently") from None
        logger.warning("took over an expired alert claim", extra={"ledger_sk": sk})

    def _release(self, pk: str, sk: str, token: str) -> None:
        try:
            self._ledger.delete_if(pk, sk, token)
        except LedgerUnavailableError:
            # The claim stays "publishing": once its lease expires, the retry of this job takes it over.
            logger.exception("could not release alert claim after a failed publish", extra={"ledger_sk": sk})

    def _mark_published(self, pk: str, sk: str, token: str, message_id: str, now: float) -> None:
        try:
            self._ledger.update(
                pk,
                sk,
                {STATE_ATTRIBUTE: "published", "message_id": message_id, "published_at": int(now)},
                expect={OWNER_ATTRIBUTE: token},
            )
        except (LedgerUnavailableError, LedgerConflictError):
            # The alert went out and the claim row still blocks repeats; only the bookkeeping is missing. Raising
            # here would fail the job after its side effect, so log instead.
            logger.warning("alert published but its claim could not be marked", extra={"ledger_sk": sk})


def _lease_end(claim: Mapping[str, Any], lease_seconds: int) -> float:
    """When a ``publishing`` claim's lease ends (claims written before leases existed: ``claimed_at`` + lease)."""
    lease_until = claim.get("lease_until")
    if isinstance(lease_until, int | float):
        return float(lease_until)
    claimed_at = claim.get("claimed_at")
    return float(claimed_at) + lease_seconds if isinstance(claimed_at, int | float) else 0.0


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def _refuse_email(field_name: str, text: str) -> None:
    if _EMAIL_PATTERN.search(text):
        raise AlertPersonalDataError(field_name)


def _refuse_email_in(path: str, value: Any) -> None:
    if isinstance(value, str):
        _refuse_email(path, value)
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _refuse_email(f"{path} key", str(key))
            _refuse_email_in(f"{path}.{key}", inner)
    elif isinstance(value, list | tuple | set | frozenset):
        for inner in value:
            _refuse_email_in(path, inner)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _dumps(message: Mapping[str, Any]) -> str:
    # Indented: e-mail subscribers read the raw message.
    return json.dumps(message, default=_json_default, ensure_ascii=False, indent=2)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max_chars - len(_TRUNCATION_MARK)] + _TRUNCATION_MARK


def _cut_utf8(text: str, max_bytes: int) -> str:
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
