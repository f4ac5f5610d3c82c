"""Typed errors for the Kaltura API client.

Kaltura reports API failures as HTTP 200 JSON bodies with ``objectType == "KalturaAPIException"``
(docs/kaltura.md#api-errors). Every error carries a :class:`Disposition` telling the caller what to do with it:

* ``RETRYABLE``: transient; the client already retried within its bounds, a later attempt may succeed.
* ``RETRY_LATER``: the request cannot succeed *now* (entry not ready, out of Lambda time); re-enqueue with a delay.
* ``PERMANENT``: retrying will not help; alert or drop.
* ``ALREADY_DONE``: the side effect already exists (e.g. a duplicate REACH order); treat as success.

Messages and arguments are scrubbed: no KS, admin secret or app token ever reaches an error's text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from kauto.errors import ConfigError, KautoError

REDACTED = "[REDACTED]"

# A v2 KS always starts with base64("v2|") == "djJ8" (docs/kaltura.md#ks-v2); long base64/hex runs containing a digit
# are KS v1, admin secrets (32 hex chars), app tokens or hashes. Entry ids and error codes are shorter or have no digit.
_SECRET_LIKE = re.compile(r"djJ8[A-Za-z0-9+/=_-]*|(?=[A-Za-z0-9+/=_-]*\d)[A-Za-z0-9+/=_-]{32,}")
# Download URLs embed a KS as a path segment: .../action/serve/ks/<KS>/id/... (docs/kaltura.md#report-csv-url).
_KS_IN_PATH = re.compile(r"(/ks/)[^/?#\s\"']+", re.IGNORECASE)
_KS_IN_QUERY = re.compile(r"((?:^|[?&\s])ks=)[^&\s\"']+", re.IGNORECASE)
# INVALID_KS puts a reason word (EXPIRED, LOGOUT, ...) in KSID, or the whole KS when it could not be parsed
# (docs/kaltura.md#api-errors).
_KS_REASON = re.compile(r"[A-Z_]{1,40}")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every known secret and anything shaped like a KS or secret replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _KS_IN_PATH.sub(r"\1" + REDACTED, text)
    text = _KS_IN_QUERY.sub(r"\1" + REDACTED, text)
    return _SECRET_LIKE.sub(REDACTED, text)


class Disposition(enum.Enum):
    """What a caller should do with a failed Kaltura call."""

    RETRYABLE = "retryable"
    RETRY_LATER = "retry_later"
    PERMANENT = "permanent"
    ALREADY_DONE = "already_done"


class KalturaError(KautoError):
    """Base class of every error raised by ``kauto.kaltura``."""

    default_disposition: ClassVar[Disposition] = Disposition.PERMANENT

    def __init__(self, message: str, *, disposition: Disposition | None = None) -> None:
        super().__init__(message)
        self.disposition = disposition or self.default_disposition

    @property
    def retryable(self) -> bool:
        """True when trying again (now or later) may succeed."""
        return self.disposition in (Disposition.RETRYABLE, Disposition.RETRY_LATER)


class KalturaConfigurationError(KalturaError, ConfigError):
    """Credentials or client settings are invalid; ``setting`` names the setting (never its value)."""

    def __init__(self, setting: str, problem: str) -> None:
        ConfigError.__init__(self, setting, problem)
        self.disposition = Disposition.PERMANENT


class KalturaTransportError(KalturaError):
    """The request did not produce a usable answer: connection error, timeout, HTTP 5xx, malformed or cut body."""

    default_disposition = Disposition.RETRYABLE

    def __init__(self, message: str, *, status: int | None = None, disposition: Disposition | None = None) -> None:
        super().__init__(message, disposition=disposition)
        self.status = status


class KalturaStreamInterruptedError(KalturaTransportError):
    """A streamed body broke off after bytes were handed to the sink; the caller must restart the whole object."""

    def __init__(self, message: str, *, bytes_written: int) -> None:
        super().__init__(message)
        self.bytes_written = bytes_written


class KalturaDeadlineError(KalturaError):
    """Not enough Lambda time (or retry budget) left to make the call; re-enqueue the work instead."""

    default_disposition = Disposition.RETRY_LATER


class KalturaProtocolError(KalturaError):
    """Kaltura answered with something that does not match the documented wire format."""


class KalturaURLRefusedError(KalturaError):
    """A URL failed the download policy (scheme, host, port, userinfo, IP literal or redirect target)."""


class KalturaDownloadTooLargeError(KalturaError):
    """A download exceeded the configured size cap."""


class ReportJobFailedError(KalturaError):
    """The Reports Microservice reported the job as failed."""


class ReportJobPendingError(KalturaError):
    """A Reports Microservice job is not finished yet; poll again later."""

    default_disposition = Disposition.RETRY_LATER


class KalturaAPIError(KalturaError):
    """A ``KalturaAPIException`` returned by the API. ``args`` maps argument names to (scrubbed) string values."""

    def __init__(
        self,
        code: str,
        message: str,
        args: Mapping[str, str] | None = None,
        *,
        disposition: Disposition | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}", disposition=disposition)
        self.code = code
        self.message = message
        self.api_args: dict[str, str] = dict(args or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, args={self.api_args!r})"


class KalturaRateLimitedError(KalturaAPIError):
    """``ACTION_BLOCKED``: Kaltura's per-action rate limit (docs/kaltura.md#api-errors)."""

    default_disposition = Disposition.RETRYABLE


class KalturaQueryTimeoutError(KalturaAPIError):
    """``DRUID_QUERY_TIMED_OUT``: the analytics back end timed out (docs/kaltura.md#report-gettable)."""

    default_disposition = Disposition.RETRYABLE


class KalturaServerError(KalturaAPIError):
    """``INTERNAL_SERVERL_ERROR`` (sic): an unmapped server exception (docs/kaltura.md#api-errors)."""

    default_disposition = Disposition.RETRYABLE


class KalturaResultLimitError(KalturaAPIError):
    """The query asks for more rows than Kaltura serves (12,000 for getTable, 60,000 for CSV;
    docs/kaltura.md#report-limits)."""


class KalturaInvalidSessionError(KalturaAPIError):
    """``INVALID_KS`` still returned after one transparent session refresh."""


class KalturaNotFoundError(KalturaAPIError):
    """The referenced object (entry, catalog item, profile, task, report) does not exist."""


class KalturaNotReadyError(KalturaAPIError):
    """The entry (or its source caption) is not ready yet; ordering may succeed later."""

    default_disposition = Disposition.RETRY_LATER


class KalturaRejectedError(KalturaAPIError):
    """Kaltura refused the order for this entry or catalog item (type, duration, feature)."""


class KalturaAlreadyDoneError(KalturaAPIError):
    """The side effect already exists, e.g. ``ENTRY_VENDOR_TASK_DUPLICATION``."""

    default_disposition = Disposition.ALREADY_DONE


class KalturaCreditError(KalturaAPIError):
    """REACH credit exhausted or expired; the automations alert on it."""


class KalturaPermissionError(KalturaAPIError):
    """The session or partner lacks a permission, plugin or enabled catalog item."""


class KalturaAppTokenError(KalturaPermissionError):
    """The app token is unknown, inactive, expired or its hash did not match (docs/kaltura.md#app-tokens)."""


class KalturaInvalidRequestError(KalturaAPIError):
    """The request itself is invalid (missing report parameter, bad partnerData, missing property)."""


ERROR_CLASSES: dict[str, type[KalturaAPIError]] = {
    "ACTION_BLOCKED": KalturaRateLimitedError,
    "DRUID_QUERY_TIMED_OUT": KalturaQueryTimeoutError,
    "INTERNAL_SERVERL_ERROR": KalturaServerError,
    "INVALID_KS": KalturaInvalidSessionError,
    "ENTRY_ID_NOT_FOUND": KalturaNotFoundError,
    "ENTRY_NOT_READY": KalturaNotReadyError,
    "REQUIRE_CAPTION": KalturaNotReadyError,
    "ENTRY_TYPE_NOT_SUPPORTED": KalturaRejectedError,
    "ENTRY_TOO_SHORT": KalturaRejectedError,
    "FEATURE_TYPE_NOT_SUPPORTED_FOR_ENTRY": KalturaRejectedError,
    "TASK_NOT_CREATED": KalturaRejectedError,
    "CATALOG_ITEM_NOT_FOUND": KalturaNotFoundError,
    "CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT": KalturaPermissionError,
    "REACH_PROFILE_NOT_FOUND": KalturaNotFoundError,
    "ENTRY_VENDOR_TASK_DUPLICATION": KalturaAlreadyDoneError,
    "EXCEEDED_MAX_CREDIT_ALLOWED": KalturaCreditError,
    "CREDIT_EXPIRED": KalturaCreditError,
    "ENTRY_VENDOR_TASK_NOT_FOUND": KalturaNotFoundError,
    "SERVICE_FORBIDDEN": KalturaPermissionError,
    "FEATURE_FORBIDDEN": KalturaPermissionError,
    "SEARCH_TOO_GENERAL": KalturaResultLimitError,
    "REPORT_NOT_FOUND": KalturaNotFoundError,
    "REPORT_PARAMETER_MISSING": KalturaInvalidRequestError,
    "PARTNER_DATA_NOT_VALID_JSON_STRING": KalturaInvalidRequestError,
    "PROPERTY_VALIDATION_CANNOT_BE_NULL": KalturaInvalidRequestError,
    "INVALID_APP_TOKEN_HASH": KalturaAppTokenError,
}
# APP_TOKEN_ID_NOT_FOUND, APP_TOKEN_NOT_ACTIVE, APP_TOKEN_EXPIRED, ... (docs/kaltura.md#app-tokens); an error-code
# prefix, not a secret.
_APP_TOKEN_PREFIX = "APP_TOKEN_"  # noqa: S105


def is_api_exception(body: Any) -> bool:
    """True when a decoded JSON value is a ``KalturaAPIException`` (docs/kaltura.md#api-errors)."""
    return isinstance(body, dict) and body.get("objectType") == "KalturaAPIException"


def error_from_body(body: Mapping[str, Any], secrets: Iterable[str] = ()) -> KalturaAPIError:
    """Build the typed error for a ``KalturaAPIException`` body, scrubbing message and args."""
    secrets = tuple(secrets)
    code = str(body.get("code") or "UNKNOWN")
    message = scrub(str(body.get("message") or ""), secrets)
    raw_args = body.get("args")
    # args is a dict of strings, or an empty JSON array when the error has no arguments (docs/kaltura.md#api-errors).
    args = {str(k): scrub(str(v), secrets) for k, v in raw_args.items()} if isinstance(raw_args, dict) else {}
    if "KSID" in args and not _KS_REASON.fullmatch(args["KSID"]):
        args["KSID"] = REDACTED
    if code == "INTERNAL_SERVERL_ERROR" and "result limit" in message.lower():
        # getTable past pageIndex x pageSize = 12,000 surfaces as this code (docs/kaltura.md#report-gettable): retrying
        # won't help.
        return KalturaResultLimitError(code, message, args)
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        cls = KalturaAppTokenError if code.startswith(_APP_TOKEN_PREFIX) else KalturaAPIError
    return cls(code, message, args)
