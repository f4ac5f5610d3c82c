"""The raw webhook request as the intake sees it, built from an API Gateway HTTP API (payload 2.0) event.

Only bounded work happens here: the size limit is enforced on the encoded body before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kauto.intake.errors import MalformedRequestError, PayloadTooLargeError, UnknownPartnerError

MAX_BODY_BYTES = 256 * 1024
"""Largest accepted body. Kaltura's notifications are a few KiB; anything bigger is not one of them."""

_MAX_BASE64_CHARS = 4 * ((MAX_BODY_BYTES + 2) // 3)

DEFAULT_REMAINING_SECONDS = 10.0
"""Run time assumed when the invocation's remaining time is unknown: the webhook function's timeout (template.yaml)."""

# Control bytes other than TAB, LF, CR. No Kaltura body contains them (JSON and form bodies are ASCII text, XML 1.0
# forbids them), while every hash length-extension forgery must: the appended Merkle-Damgard padding is 0x80,
# NUL bytes and the bit length. Kaltura signs with plain HASH(secret + body) (docs/kaltura.md#signature), so rejecting
# these bytes before the signature check is what stops "valid signature for body + padding + attacker data".
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PARTNER_ID = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook delivery: the path's partner id, lower-cased headers, exact body bytes and timing."""

    path_partner_id: str | None
    headers: Mapping[str, str]
    body: bytes
    received_at: int
    """Unix seconds when API Gateway received the request."""
    remaining_seconds: float
    """How long this invocation may still run when the request was built: the intake's time budget."""

    @property
    def partner_id(self) -> int:
        """The partner id from the path; :class:`UnknownPartnerError` if it is not a positive integer."""
        raw = self.path_partner_id or ""
        if not _PARTNER_ID.fullmatch(raw):
            raise UnknownPartnerError("unknown_partner", "unknown partner")
        return int(raw)

    def reject_control_bytes(self) -> None:
        """Raise :class:`MalformedRequestError` if the body holds control bytes other than TAB, LF and CR."""
        if _CONTROL_BYTES.search(self.body):
            raise MalformedRequestError("control_bytes", "body contains control bytes")


def request_from_api_gateway(
    event: Mapping[str, Any], *, now: float, remaining_seconds: float | None = None
) -> WebhookRequest:
    """Build a :class:`WebhookRequest` from an HTTP API payload-2.0 event.

    The body is base64-decoded when ``isBase64Encoded`` is set (docs/kaltura.md#signature: verify the raw bytes). Raises
    :class:`PayloadTooLargeError` for bodies over :data:`MAX_BODY_BYTES` (checked before decoding) and
    :class:`MalformedRequestError` for undecodable bodies.
    """
    raw_body = event.get("body") or ""
    if not isinstance(raw_body, str):
        raise MalformedRequestError("malformed_event", "body must be a string")
    if event.get("isBase64Encoded"):
        if len(raw_body) > _MAX_BASE64_CHARS:
            raise PayloadTooLargeError("payload_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
        try:
            body = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedRequestError("bad_base64", "body is not valid base64") from exc
    else:
        # A str never has more characters than its UTF-8 encoding has bytes: reject before encoding.
        if len(raw_body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError("payload_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
        try:
            body = raw_body.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedRequestError("bad_encoding", "body is not valid text") from exc
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError("payload_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")

    headers = event.get("headers") or {}
    path_parameters = event.get("pathParameters") or {}
    time_epoch_ms = (event.get("requestContext") or {}).get("timeEpoch")
    received_at = int(time_epoch_ms // 1000) if isinstance(time_epoch_ms, int) else int(now)
    return WebhookRequest(
        path_partner_id=path_parameters.get("partnerId"),
        headers={str(name).lower(): str(value) for name, value in headers.items()},
        body=body,
        received_at=received_at,
        remaining_seconds=DEFAULT_REMAINING_SECONDS if remaining_seconds is None else remaining_seconds,
    )
