"""Kaltura's event-notification dispatcher, simulated (docs/kaltura.md#webhook-bodies through #delivery-and-retries).

It POSTs a ``KalturaHttpNotification`` envelope in one of the wire formats of docs/kaltura.md#webhook-bodies, signed
with ``X-KALTURA-SIGNATURE = hex(HASH(admin secret + body))`` and ``X-KALTURA-HASH-ALGO``, with Kaltura's constant
Mozilla User-Agent (docs/kaltura.md#headers). Only 200 and 204 count as delivered; anything else (or a transport error)
is retried at a fixed interval on the simulator clock, 3 attempts in total by default
(docs/kaltura.md#delivery-and-retries), with the same body and the same ``eventNotificationJobId`` each time.
Subscriptions turn simulator events (entry ready, vendor task status, session ended) into deliveries automatically.
"""

from __future__ import annotations

import enum
import hashlib
import http.client
import ssl
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlsplit

from .events import ALL_KINDS, ENTRY_READY, VENDOR_TASK_STATUS, SimEvent
from .serialize import kaltura_json, kaltura_object, kaltura_xml_fragment
from .state import TASK_READY

if TYPE_CHECKING:
    from .core import SimulatorCore

USER_AGENT = "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.0.6) Gecko/2009011913 Firefox/3.0.6"
HASH_ALGORITHMS = ("sha1", "sha256", "sha512")
FIRST_JOB_ID = 33578094492


class BodyFormat(enum.Enum):
    """How the envelope is put on the wire (docs/kaltura.md#webhook-bodies)."""

    OBJECT_JSON = "json"  # raw JSON, Content-Type application/json (templates since 2016)
    LEGACY_JSON = "json_urlencoded"  # "data=" + urlencode(JSON), still labelled application/json
    XML = "xml"  # "data=<notification>...</notification>", not url-encoded, application/xml
    FIELDS = "fields"  # DataFields: http_build_query of the content parameters, form content type


@dataclass(frozen=True, slots=True)
class Template:
    """The event-notification template a delivery claims to come from."""

    id: int
    name: str
    system_name: str
    event_type: int
    event_object_type: int | str


ENTRY_STATUS_EQUALS = Template(26970222, "Entry Status Equals", "HTTP_ENTRY_STATUS_EQUALS", 3, 1)
TASK_FINISHED_PROCESSING = Template(
    26970231, "Task Finished Processing", "Http_Entry_Vendor_Task_Finished_Processing", 3, 42
)
# No stock HTTP template exists for these (docs/kaltura.md#partner-configuration, #room-session-end); they stand for
# partner templates Kaltura would create.
TASK_STATUS_CHANGED = Template(26970240, "Task Status Changed", "MY_REACH_TASK_STATUS_CHANGED", 3, 42)
SESSION_CUE_POINT_ENDED = Template(
    26970250, "Session Ended", "SESSION_CUE_POINT_ENDED", 3, "cuePointEventNotifications.CuePoint"
)


def php_urlencode(text: str) -> str:
    """PHP ``urlencode``: like ``quote_plus`` with nothing safe, and ``~`` encoded too."""
    return quote_plus(text, safe="").replace("~", "%7E")


def http_build_query(fields: Mapping[str, Any]) -> str:
    """PHP ``http_build_query`` for flat scalar fields (booleans as 1/0, nulls skipped)."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        parts.append(f"{php_urlencode(str(key))}={php_urlencode(text)}")
    return "&".join(parts)


def signature(secret: str, body: bytes, algorithm: str = "sha1") -> str:
    """``hex(HASH(secret + body))``: a plain hash of the concatenation, not an HMAC (docs/kaltura.md#signature)."""
    return hashlib.new(algorithm, secret.encode() + body).hexdigest()


def build_envelope(obj: Mapping[str, Any], template: Template, job_id: int) -> dict[str, Any]:
    """The ``KalturaHttpNotification`` envelope (docs/kaltura.md#notification-envelope)."""
    return kaltura_object(
        "KalturaHttpNotification",
        {
            "object": dict(obj),
            "eventObjectType": template.event_object_type,
            "eventNotificationJobId": job_id,
            "templateId": template.id,
            "templateName": template.name,
            "templateSystemName": template.system_name,
            "eventType": template.event_type,
        },
    )


def data_fields(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Content parameters a DataFields template would post (the entry templates' set; scalars for other objects)."""
    obj = envelope.get("object") or {}
    if str(obj.get("objectType", "")).endswith("Entry"):
        return {
            "entry_id": obj.get("id"),
            "entry_name": obj.get("name"),
            "entry_status": obj.get("status"),
            "entry_reference_id": obj.get("referenceId", ""),
            "trigger_status": 2,
        }
    return {key: value for key, value in obj.items() if not isinstance(value, dict | list)}


def encode_body(envelope: Mapping[str, Any], body_format: BodyFormat) -> tuple[bytes, str]:
    """Body bytes and Content-Type of a delivery in ``body_format``."""
    if body_format is BodyFormat.OBJECT_JSON:
        return kaltura_json(envelope), "application/json"
    if body_format is BodyFormat.LEGACY_JSON:
        return b"data=" + php_urlencode(kaltura_json(envelope).decode("ascii")).encode("ascii"), "application/json"
    if body_format is BodyFormat.XML:
        xml = "<notification>" + kaltura_xml_fragment(envelope) + "</notification>"
        return b"data=" + xml.encode("utf-8"), "application/xml"
    return http_build_query(data_fields(envelope)).encode("ascii"), "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of a delivery."""

    number: int
    at: int
    status: int | None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """Kaltura counts only 200 and 204 (docs/kaltura.md#delivery-and-retries)."""
        return self.status in (200, 204)


@dataclass(slots=True)
class Delivery:
    """A notification job: the same body, headers and job id for every attempt."""

    job_id: int
    url: str
    body: bytes
    headers: dict[str, str]
    max_attempts: int
    next_attempt_at: int | None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """True once an attempt got 200/204."""
        return any(attempt.succeeded for attempt in self.attempts)

    @property
    def state(self) -> str:
        """``delivered``, ``retrying`` or ``failed``."""
        if self.delivered:
            return "delivered"
        return "failed" if len(self.attempts) >= self.max_attempts else "retrying"


@dataclass(frozen=True, slots=True)
class Subscription:
    """Automatic deliveries of simulator events to ``url``."""

    url: str
    kinds: frozenset[str]
    partner_id: int | None
    body_format: BodyFormat
    hash_algorithm: str
    task_statuses: frozenset[int] | None

    def wants(self, event: SimEvent) -> bool:
        """True when this subscription delivers ``event``."""
        if event.kind not in self.kinds or (self.partner_id is not None and event.partner_id != self.partner_id):
            return False
        if event.kind == VENDOR_TASK_STATUS and self.task_statuses is not None:
            return int(event.object.get("status", -1)) in self.task_statuses
        return True


class Dispatcher:
    """Sends signed notifications and retries them on the simulator clock."""

    def __init__(
        self, core: SimulatorCore, *, max_attempts: int = 3, retry_interval: int = 60, timeout: float = 5.0
    ) -> None:
        self._core = core
        self.max_attempts = max_attempts
        self.retry_interval = retry_interval
        self.timeout = timeout
        self._lock = threading.Lock()
        self._next_job_id = FIRST_JOB_ID
        self._deliveries: list[Delivery] = []
        self._subscriptions: list[Subscription] = []
        # Kaltura's curl does not verify the receiver's certificate (docs/kaltura.md#headers).
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def next_job_id(self) -> int:
        """A new ``eventNotificationJobId``."""
        with self._lock:
            job_id = self._next_job_id
            self._next_job_id += 1
            return job_id

    # ---- envelopes ---------------------------------------------------------------------------------------------

    def entry_ready_envelope(self, entry_id: str, *, job_id: int | None = None) -> dict[str, Any]:
        """Envelope of the cloned ``HTTP_ENTRY_STATUS_EQUALS`` template for a simulator entry as it is now."""
        with self._core.state.lock:
            obj = self._core.state.entries[entry_id].to_api(self._core.cdn_url)
        return build_envelope(obj, ENTRY_STATUS_EQUALS, job_id or self.next_job_id())

    def vendor_task_envelope(self, task_id: int, *, job_id: int | None = None) -> dict[str, Any]:
        """Envelope for a simulator task: the stock READY template, or a custom status template otherwise."""
        with self._core.state.lock:
            obj = self._core.state.tasks[task_id].to_api()
        template = TASK_FINISHED_PROCESSING if obj["status"] == TASK_READY else TASK_STATUS_CHANGED
        return build_envelope(obj, template, job_id or self.next_job_id())

    def session_ended_envelope(self, cue_point_id: str, *, job_id: int | None = None) -> dict[str, Any]:
        """Envelope of a ``KalturaSessionCuePoint`` ending (custom cue-point template,
        docs/kaltura.md#room-session-end)."""
        with self._core.state.lock:
            obj = self._core.state.room_sessions[cue_point_id].to_api()
        return build_envelope(obj, SESSION_CUE_POINT_ENDED, job_id or self.next_job_id())

    def envelope_for(self, event: SimEvent) -> dict[str, Any]:
        """Envelope of a simulator event, with the object as it was when the event happened."""
        if event.kind == ENTRY_READY:
            template = ENTRY_STATUS_EQUALS
        elif event.kind == VENDOR_TASK_STATUS:
            template = TASK_FINISHED_PROCESSING if event.object.get("status") == TASK_READY else TASK_STATUS_CHANGED
        else:
            template = SESSION_CUE_POINT_ENDED
        return build_envelope(event.object, template, self.next_job_id())

    # ---- sending -----------------------------------------------------------------------------------------------

    def send(
        self,
        url: str,
        envelope: Mapping[str, Any],
        *,
        partner_id: int | None = None,
        body_format: BodyFormat | str = BodyFormat.OBJECT_JSON,
        hash_algorithm: str = "sha1",
        signed: bool = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Delivery:
        """POST ``envelope`` to ``url`` now; failures are retried on the clock (at once if the interval is 0).

        The signing key is the primary admin secret of ``partner_id`` (default: the envelope object's partnerId).
        """
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("notification URLs must be http or https")
        if hash_algorithm not in HASH_ALGORITHMS:
            raise ValueError(f"hash algorithm must be one of {HASH_ALGORITHMS}")
        body_format = BodyFormat(body_format)
        body, content_type = encode_body(envelope, body_format)
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Content-Type": content_type}
        if signed:
            pid = partner_id if partner_id is not None else int(envelope["object"]["partnerId"])
            secret = self._core.state.partners[pid].admin_secret
            headers["X-KALTURA-SIGNATURE"] = signature(secret, body, hash_algorithm)
            headers["X-KALTURA-HASH-ALGO"] = hash_algorithm
        headers.update(extra_headers or {})
        delivery = Delivery(
            job_id=int(envelope.get("eventNotificationJobId", 0)),
            url=url,
            body=body,
            headers=headers,
            max_attempts=self.max_attempts,
            next_attempt_at=self._core.clock.now(),
        )
        with self._lock:
            self._deliveries.append(delivery)
        self._attempt(delivery)
        while self.retry_interval <= 0 and delivery.state == "retrying":
            self._attempt(delivery)
        return delivery

    def _post(self, delivery: Delivery) -> int:
        """One POST with exactly Kaltura's headers (http.client keeps their case; urllib would rewrite it)."""
        target = urlsplit(delivery.url)
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = http.client.HTTPSConnection(
                target.hostname or "", target.port, timeout=self.timeout, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=self.timeout)
        try:
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            connection.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in delivery.headers.items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(delivery.body)))
            connection.endheaders(delivery.body)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def _attempt(self, delivery: Delivery) -> None:
        now = self._core.clock.now()
        status: int | None = None
        error: str | None = None
        try:
            status = self._post(delivery)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery.attempts.append(Attempt(len(delivery.attempts) + 1, now, status, error))
        delivery.next_attempt_at = now + self.retry_interval if delivery.state == "retrying" else None

    def run_due(self, now: int) -> None:
        """Retry every delivery whose next attempt is due (registered as a clock listener)."""
        for delivery in self.deliveries:
            if delivery.next_attempt_at is not None and delivery.next_attempt_at <= now and delivery.attempts:
                self._attempt(delivery)

    # ---- subscriptions -------------------------------------------------------------------------------------------

    def subscribe(
        self,
        url: str,
        *,
        kinds: Collection[str] = ALL_KINDS,
        partner_id: int | None = None,
        body_format: BodyFormat | str = BodyFormat.OBJECT_JSON,
        hash_algorithm: str = "sha1",
        task_statuses: Collection[int] | None = None,
    ) -> Subscription:
        """Deliver future simulator events of ``kinds`` (``entry_ready``, ``vendor_task_status``, ``session_ended``).

        ``task_statuses`` limits task events, e.g. ``{2}`` for the stock READY-only template.
        """
        unknown = set(kinds) - ALL_KINDS
        if unknown:
            raise ValueError(f"unknown event kinds {sorted(unknown)}")
        subscription = Subscription(
            url=url,
            kinds=frozenset(kinds),
            partner_id=partner_id,
            body_format=BodyFormat(body_format),
            hash_algorithm=hash_algorithm,
            task_statuses=frozenset(task_statuses) if task_statuses is not None else None,
        )
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription."""
        with self._lock:
            self._subscriptions = [existing for existing in self._subscriptions if existing is not subscription]

    def on_event(self, event: SimEvent) -> None:
        """Deliver ``event`` to every subscription that wants it (registered as a core event listener)."""
        with self._lock:
            subscriptions = [subscription for subscription in self._subscriptions if subscription.wants(event)]
        for subscription in subscriptions:
            self.send(
                subscription.url,
                self.envelope_for(event),
                partner_id=event.partner_id,
                body_format=subscription.body_format,
                hash_algorithm=subscription.hash_algorithm,
            )
