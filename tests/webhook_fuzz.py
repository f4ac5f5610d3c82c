"""Hypothesis strategies for fuzzing the webhook (import as ``from webhook_fuzz import ...``): mutated sample
deliveries of every body format, signed correctly or not, and the statuses the README's webhook contract documents.

Seeds are the sample deliveries of ``events/webhook/`` (object JSON, legacy ``data=`` JSON, ObjectData XML,
DataFields forms, base64 from API Gateway, empty). :func:`deliveries` mutates one: bytes spliced anywhere, or up to
three JSON values replaced by arbitrary text (lone surrogates and control characters included, escaped as PHP's
``json_encode`` would) or dropped (the job id, the partner...), then signs the result correctly or leaves it with a
stale, missing or random signature, as base64 or plain text, under any content type.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from helpers import MemoryDedupe, webhook_samples
from hypothesis import strategies as st
from kauto.config import PartnerConfig
from kauto.intake.service import WebhookIntake
from kauto.models import KalturaEvent

SAMPLES = webhook_samples()
SECRET = SAMPLES.FAKE_ADMIN_SECRET
PARTNER_ID = SAMPLES.PARTNER_ID
# The contract's statuses when Secrets Manager, the queue and the dedupe table answer (500 and 503 are for a broken
# configuration or an unreachable dependency, which these fakes never are).
DOCUMENTED = frozenset({200, 400, 401, 403, 404, 413, 415})
TOKENS = ("\\ud800", "\\udfff", "\\u0000", '"', "\\", "<", ">", "&", "%", "%ZZ", "=", "{", "}", "[", "\x00", "\xff")


@dataclass
class Partners:
    def get(self, partner_id: int) -> PartnerConfig | None:
        if partner_id != PARTNER_ID:
            return None
        return PartnerConfig(
            partner_id=PARTNER_ID,
            admin_secret=SECRET,
            webhook_hash_algorithms=("sha1", "sha256", "sha512"),
            service_url="https://www.kaltura.com",
        )


@dataclass
class Queue:
    bodies: list[bytes] = field(default_factory=list)

    def send(self, event: KalturaEvent) -> str:
        # What SQS would be sent: valid UTF-8 (it refuses anything else) that reads back as the same event.
        body = event.to_json().encode("utf-8")
        assert KalturaEvent.from_json(body.decode("utf-8")) == event
        self.bodies.append(body)
        return f"message-{len(self.bodies)}"


def fake_intake(queue: Queue | None = None) -> WebhookIntake:
    """The intake on fakes that never fail: the partner of the samples, a queue and a dedupe table in memory."""
    return WebhookIntake(partners=Partners(), queue=queue or Queue(), dedupe=MemoryDedupe())


def _seed_body(sample: Any) -> bytes:
    event = sample.event
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")


SEEDS = [(sample.name, _seed_body(sample), sample.event["headers"]) for sample in SAMPLES.samples()]


def _json_document(body: bytes) -> tuple[Any, str] | None:
    """The JSON document of a JSON-bodied sample and how it is wrapped (``plain`` or ``legacy`` ``data=``)."""
    text = body.decode("utf-8", "replace")
    try:
        return json.loads(text), "plain"
    except ValueError:
        pass
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if set(fields) == {"data"} and fields["data"].startswith("{"):
        try:
            return json.loads(fields["data"]), "legacy"
        except ValueError:
            return None
    return None


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    if new is _DROP:
        del document[path[-1]]
    else:
        document[path[-1]] = new


_DROP = object()
any_text = st.text(st.characters(codec=None, categories=None), max_size=12) | st.sampled_from(["\ud800", "\udfff"])
json_values = st.one_of(any_text, st.integers(), st.none(), st.booleans(), st.just(_DROP), st.floats(allow_nan=False))


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    name, body, headers = draw(st.sampled_from(SEEDS))
    parsed = _json_document(body)
    kind = draw(st.sampled_from(["splice", "token", "json"] if parsed else ["splice", "token"]))
    if kind == "splice":
        start = draw(st.integers(0, len(body)))
        end = draw(st.integers(start, min(len(body), start + 16)))
        body = body[:start] + draw(st.binary(max_size=16)) + body[end:]
    elif kind == "token":
        position = draw(st.integers(0, len(body)))
        body = body[:position] + draw(st.sampled_from(TOKENS)).encode("utf-8") + body[position:]
    else:
        assert parsed is not None
        document, wrapping = parsed
        if isinstance(document, dict) and draw(st.booleans()):
            document.pop("eventNotificationJobId", None)  # the dedupe key then hashes the content
        for _ in range(draw(st.integers(1, 3))):  # e.g. drop the job id and put a lone surrogate in a name
            paths = _paths(document)
            if paths:
                _replace(document, draw(st.sampled_from(paths)), draw(json_values))
        text = SAMPLES.php_json(document)
        body = (f"data={SAMPLES.php_urlencode(text)}" if wrapping == "legacy" else text).encode("utf-8")
    return name, body, headers


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, Any], str, bytes]:
    """An API Gateway event for a mutated body, how it is signed (``signed``, ``stale``, ``missing``, ``random``)
    and the body."""
    _, body, headers = draw(mutated_bodies())
    signing = draw(st.sampled_from(["signed", "stale", "missing", "random"]))
    algorithm = draw(st.sampled_from(["sha1", "sha256", "sha512"]))
    content_type = draw(
        st.sampled_from([headers.get("content-type"), "application/json", "application/x-www-form-urlencoded", None])
    )
    base64_encoded = draw(st.booleans()) or _not_utf8(body)
    event = SAMPLES.http_api_event(
        body if not _not_utf8(body) else b"",
        content_type=content_type,
        algorithm=algorithm,
        base64_encoded=base64_encoded,
        partner_id=draw(st.sampled_from([str(PARTNER_ID), str(PARTNER_ID), "7654321", "x"])),
    )
    event["body"] = base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8")
    if signing == "stale":
        event["headers"]["x-kaltura-signature"] = headers.get("x-kaltura-signature", "")
    elif signing == "missing":
        del event["headers"]["x-kaltura-signature"]
    elif signing == "random":
        event["headers"]["x-kaltura-signature"] = random.Random(len(body)).randbytes(32).hex()
    return event, signing, body


def _not_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def envelope_without_job_id(name: str) -> bytes:
    """A signed-able entry-ready body named ``name``, without ``eventNotificationJobId`` (the key hashes content)."""
    document = SAMPLES.envelope({**SAMPLES.MEDIA_ENTRY, "name": name}, eventObjectType=1, **SAMPLES.ENTRY_STATUS_EQUALS)
    return SAMPLES.php_json(document).encode("utf-8")
