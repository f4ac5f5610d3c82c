"""Webhook rejection errors and the one table that maps every error to the HTTP status Kaltura sees.

Kaltura treats only 200/204 as delivered and retries anything else (docs/kaltura.md#delivery-and-retries), so a 4xx/5xx
here means "not taken": the statuses below decide whether a retry can help (5xx) or the request can never succeed (4xx).
"""

from __future__ import annotations

from kauto.errors import (
    ConfigError,
    DedupeStoreUnavailableError,
    DependencyUnavailableError,
    KautoError,
    PartnerConfigError,
    QueueUnavailableError,
    SecretUnavailableError,
)


class WebhookError(KautoError):
    """A delivery the intake will not accept. ``reason`` is a stable snake_case label (metrics, logs, response);
    ``message`` is safe to return to the caller (no secrets, no payload)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PayloadTooLargeError(WebhookError):
    """The body exceeds the size limit; nothing of it was parsed."""


class MalformedRequestError(WebhookError):
    """The request is malformed: control bytes, bad base64, invalid JSON/XML, trailing data, invalid field types."""


class UnsupportedBodyFormatError(WebhookError):
    """The body is authentic but in a format the intake does not read (PHP-serialized ObjectData, free text)."""


class SignatureError(WebhookError):
    """The ``X-KALTURA-SIGNATURE`` header is missing, wrong, or uses an algorithm the partner does not allow."""


class UnknownPartnerError(WebhookError):
    """The partner id in the path is not configured (or not a partner id at all)."""


class PartnerMismatchError(WebhookError):
    """The verified body names a different partner than the path whose secret signed it."""


# The only place where errors become HTTP statuses. Looked up along the exception's MRO, so the most specific
# class wins. Each entry: (status, reason used when the error carries none).
HTTP_STATUS_BY_ERROR: dict[type[KautoError], tuple[int, str]] = {
    PayloadTooLargeError: (413, "payload_too_large"),
    MalformedRequestError: (400, "malformed"),
    UnsupportedBodyFormatError: (415, "unsupported_format"),
    SignatureError: (401, "bad_signature"),
    UnknownPartnerError: (404, "unknown_partner"),
    # 403, not 400: the body is well-formed and authentic, but its signer may not speak for the partner it names.
    PartnerMismatchError: (403, "partner_mismatch"),
    QueueUnavailableError: (503, "queue_unavailable"),
    DedupeStoreUnavailableError: (503, "dedupe_unavailable"),
    SecretUnavailableError: (503, "secrets_unavailable"),
    DependencyUnavailableError: (503, "dependency_unavailable"),
    # A broken configuration is our fault and must never look like a delivery (no fail-open): 500, Kaltura retries.
    ConfigError: (500, "config_error"),
    # One partner's broken entry disables that partner alone: 503, so Kaltura keeps retrying until it is fixed.
    PartnerConfigError: (503, "partner_misconfigured"),
}


def status_for(error: KautoError) -> tuple[int, str] | None:
    """Return ``(http_status, reason)`` for ``error``, or ``None`` if the error is not a mapped type."""
    for cls in type(error).__mro__:
        entry = HTTP_STATUS_BY_ERROR.get(cls)
        if entry is not None:
            status, default_reason = entry
            return status, error.reason if isinstance(error, WebhookError) else default_reason
    return None
