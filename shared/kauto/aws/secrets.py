"""Secrets Manager adapter: fetch a secret by ARN, parse it once, cache it for a bounded time.

The parser is supplied by the caller (``kauto.config`` validates the partner document), so this adapter stays below
the configuration layer. Secret values never appear in errors or logs.

Why not Powertools' Parameters (``get_secret(..., max_age=300, transform="json")``)? Its cache with a maximum age is
what :meth:`CachedSecret.get` does, but :class:`CachedSecret` does more, and the webhook depends on it:

- it caches the *validated* document: the partner secret (and the automation configuration, through
  :mod:`kauto.aws.parameters`) is validated once per fetch, not on every delivery;
- :meth:`CachedSecret.refresh` refetches on a lookup miss (a partner added, or one disabled by a broken entry and
  since fixed) at most once per ``min_refresh_interval_seconds``, failed attempts included. Powertools only offers
  ``force_fetch``, which would let a flood of deliveries for an unknown partner call Secrets Manager per request;
- failures are classified once: :class:`ConfigError` when an operator must act (wrong ARN, no permission: 500 and the
  error alarm) and :class:`SecretUnavailableError` when a retry can help (503, Kaltura retries);
- it costs no import on the webhook's cold start beyond botocore, which the webhook loads anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.clients import secretsmanager_client
from kauto.errors import ConfigError, SecretUnavailableError

T = TypeVar("T")

DEFAULT_TTL_SECONDS = 300.0
DEFAULT_MIN_REFRESH_INTERVAL_SECONDS = 30.0

# Errors that an operator must fix (wrong ARN, missing permission, deleted or undecryptable secret): retrying
# cannot help, so they surface as configuration errors rather than as "try again later".
_CONFIG_ERROR_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDeniedError",
        "InvalidRequestException",
        "InvalidParameterException",
        "DecryptionFailure",
        "ValidationException",
    }
)


def fetch_secret_string(secret_arn: str) -> str:
    """Return the ``SecretString`` of ``secret_arn``.

    Raises :class:`ConfigError` when the secret cannot be used at all and :class:`SecretUnavailableError` when the
    failure is transient.
    """
    try:
        response = secretsmanager_client().get_secret_value(SecretId=secret_arn)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        if code in _CONFIG_ERROR_CODES:
            raise ConfigError(secret_arn, f"secret cannot be read ({code})") from exc
        raise SecretUnavailableError("secretsmanager", "GetSecretValue", code) from exc
    except BotoCoreError as exc:
        raise SecretUnavailableError("secretsmanager", "GetSecretValue", type(exc).__name__) from exc
    secret = response.get("SecretString")
    if not isinstance(secret, str):
        raise ConfigError(secret_arn, "secret has no SecretString (binary secrets are not supported)")
    return secret


class CachedSecret(Generic[T]):
    """A parsed secret, refetched after ``ttl_seconds`` and refreshable on demand at a bounded rate.

    :meth:`get` serves the cached value while it is younger than the TTL. :meth:`refresh` refetches immediately, but
    at most once per ``min_refresh_interval_seconds``: callers use it when a lookup misses (e.g. a partner added
    since the last fetch) without letting a flood of misses hammer Secrets Manager.
    """

    def __init__(
        self,
        secret_arn: str,
        parse: Callable[[str], T],
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        min_refresh_interval_seconds: float = DEFAULT_MIN_REFRESH_INTERVAL_SECONDS,
        fetch: Callable[[str], str] = fetch_secret_string,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_arn = secret_arn
        self._parse = parse
        self._ttl = ttl_seconds
        self._min_refresh_interval = min_refresh_interval_seconds
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None

    def get(self) -> T:
        """Return the parsed secret, fetching it when nothing is cached or the cache is older than the TTL."""
        with self._lock:
            if self._value is None or self._clock() - self._fetched_at >= self._ttl:
                return self._load()
            return self._value

    def refresh(self) -> T:
        """Refetch now unless a fetch was attempted within the minimum refresh interval; return the value.

        The interval counts attempts, failed ones included, so misses cannot hammer a struggling Secrets Manager.
        """
        with self._lock:
            recently = (
                self._attempted_at is not None and self._clock() - self._attempted_at < self._min_refresh_interval
            )
            if self._value is None or not recently:
                return self._load()
            return self._value

    def _load(self) -> T:
        self._attempted_at = self._clock()
        value = self._parse(self._fetch(self._secret_arn))
        self._value = value
        self._fetched_at = self._clock()
        return value
