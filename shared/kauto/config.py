"""Settings from the environment and the per-partner secret document, each validated once.

Environment variables hold resource names and ARNs only; secrets live in Secrets Manager (``PARTNER_SECRETS_ARN``).
Every validation error names the setting (never its value) so an operator knows what to fix.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kauto.aws.secrets import CachedSecret
from kauto.errors import ConfigError

WEBHOOK_HASH_ALGORITHMS = ("sha1", "sha256", "sha512")
"""Algorithms Kaltura can sign webhooks with (docs/kaltura.md#signature: secureHashingAlgo 1, 2, 3)."""

APP_TOKEN_HASH_TYPES = ("SHA1", "MD5", "SHA256", "SHA512")
"""``hashType`` values of a Kaltura app token (docs/kaltura.md#app-tokens)."""

DEFAULT_APP_TOKEN_HASH_TYPE = "SHA1"  # noqa: S105 - a hash algorithm name, not a secret
"""An app token's ``hashType`` when the secret names none: Kaltura's own default (docs/kaltura.md#app-tokens)."""

SESSION_MODES = ("auto", "app_token", "local", "session_start")
"""How workers obtain a KS: the values of ``kauto.kaltura.SessionMode`` (not imported here: that package loads the
HTTP client, which the webhook must not). ``local`` builds a KS v2 from the admin secret."""

_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def required_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Return the non-empty value of environment variable ``name`` or raise :class:`ConfigError` naming it."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        raise ConfigError(name, "environment variable is not set")
    return value


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """What the webhook function needs from its environment (names from template.yaml)."""

    events_queue_url: str
    dedupe_table: str
    partner_secrets_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Read and validate the settings; raises :class:`ConfigError` naming the first bad variable."""
        env = os.environ if environ is None else environ
        return cls(
            events_queue_url=required_env("EVENTS_QUEUE_URL", env),
            dedupe_table=required_env("DEDUPE_TABLE", env),
            partner_secrets_arn=required_env("PARTNER_SECRETS_ARN", env),
        )


@dataclass(frozen=True, slots=True)
class AppToken:
    """A Kaltura app token (preferred over the admin secret for API sessions)."""

    id: str
    token: str = field(repr=False)
    hash_type: str = DEFAULT_APP_TOKEN_HASH_TYPE


@dataclass(frozen=True, slots=True)
class PartnerConfig:
    """One Kaltura partner's credentials and webhook policy. Secret fields are hidden from ``repr``."""

    partner_id: int
    admin_secret: str = field(repr=False)
    """Primary admin secret: the webhook signature key (docs/kaltura.md#signature) and the KS signing key."""
    webhook_hash_algorithms: tuple[str, ...]
    """Algorithms accepted for this partner's webhook signatures; a request cannot ask for any other."""
    service_url: str
    """Kaltura API base URL, without ``/api_v3``."""
    previous_admin_secret: str | None = field(default=None, repr=False)
    """Also accepted for webhook signatures while the admin secret is being rotated."""
    app_token: AppToken | None = None
    session_user_id: str | None = None
    session_privileges: str | None = None
    session_mode: str = "auto"
    """One of :data:`SESSION_MODES`; ``auto`` uses the app token when there is one, else the admin secret."""
    reports_service_url: str | None = None
    """Reports Microservice base URL (https), for the reports only it serves."""

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Secrets that may have signed a webhook: the current one first, then the previous one if set."""
        if self.previous_admin_secret:
            return (self.admin_secret, self.previous_admin_secret)
        return (self.admin_secret,)


@dataclass(frozen=True, slots=True)
class PartnerSecrets:
    """The validated partner secret document: partner id -> config."""

    partners: Mapping[int, PartnerConfig]


_PARTNER_KEYS = frozenset(
    {
        "admin_secret",
        "previous_admin_secret",
        "webhook_hash_algorithms",
        "service_url",
        "app_token",
        "session_user_id",
        "session_privileges",
        "session_mode",
        "reports_service_url",
    }
)
_APP_TOKEN_KEYS = frozenset({"id", "token", "hash_type"})


def parse_partner_secrets(text: str) -> PartnerSecrets:
    """Validate the secret JSON (shape in the team brief) into :class:`PartnerSecrets`.

    Raises :class:`ConfigError` whose ``setting`` is the path of the first bad value, e.g.
    ``partners.1234567.webhook_hash_algorithms``. Unknown keys are rejected so that a typo
    (``previous_admin_secert``) cannot silently disable a rotation.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("partner secrets", f"not valid JSON (line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(document, dict) or set(document) != {"partners"}:
        raise ConfigError("partner secrets", 'must be an object with exactly one key "partners"')
    partners = document["partners"]
    if not isinstance(partners, dict) or not partners:
        raise ConfigError("partners", "must be a non-empty object keyed by partner id")
    parsed: dict[int, PartnerConfig] = {}
    for key, entry in partners.items():
        path = f"partners.{key}"
        if not key.isascii() or not key.isdigit() or int(key) <= 0:
            raise ConfigError(path, "partner id must be a positive integer")
        parsed[int(key)] = _parse_partner(int(key), entry, path)
    return PartnerSecrets(partners=parsed)


def _parse_partner(partner_id: int, entry: Any, path: str) -> PartnerConfig:
    if not isinstance(entry, dict):
        raise ConfigError(path, "must be an object")
    unknown = sorted(set(entry) - _PARTNER_KEYS)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", "unknown setting")
    return PartnerConfig(
        partner_id=partner_id,
        admin_secret=_required_str(entry, "admin_secret", path),
        previous_admin_secret=_optional_str(entry, "previous_admin_secret", path),
        webhook_hash_algorithms=_hash_algorithms(entry, path),
        service_url=_service_url(entry, path),
        app_token=_app_token(entry.get("app_token"), f"{path}.app_token"),
        session_user_id=_optional_str(entry, "session_user_id", path),
        session_privileges=_optional_str(entry, "session_privileges", path),
        session_mode=_session_mode(entry, path),
        reports_service_url=_reports_service_url(entry, path),
    )


def _required_str(entry: Mapping[str, Any], key: str, path: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}.{key}", "required non-empty string")
    return value


def _optional_str(entry: Mapping[str, Any], key: str, path: str) -> str | None:
    if entry.get(key) is None:
        return None
    return _required_str(entry, key, path)


def _hash_algorithms(entry: Mapping[str, Any], path: str) -> tuple[str, ...]:
    setting = f"{path}.webhook_hash_algorithms"
    value = entry.get("webhook_hash_algorithms")
    if not isinstance(value, list) or not value:
        raise ConfigError(setting, f"required non-empty list, a subset of {', '.join(WEBHOOK_HASH_ALGORITHMS)}")
    algorithms: list[str] = []
    for item in value:
        if item not in WEBHOOK_HASH_ALGORITHMS:
            raise ConfigError(
                setting, f"unsupported algorithm {item!r} (allowed: {', '.join(WEBHOOK_HASH_ALGORITHMS)})"
            )
        if item not in algorithms:
            algorithms.append(item)
    return tuple(algorithms)


def _service_url(entry: Mapping[str, Any], path: str) -> str:
    setting = f"{path}.service_url"
    url = _base_url(_required_str(entry, "service_url", path), setting, example="https://www.kaltura.com")
    if urlsplit(url).path.endswith("/api_v3"):
        raise ConfigError(setting, "give the base URL without /api_v3")
    return url


def _reports_service_url(entry: Mapping[str, Any], path: str) -> str | None:
    value = _optional_str(entry, "reports_service_url", path)
    if value is None:
        return None
    setting = f"{path}.reports_service_url"
    url = _base_url(value, setting, example="https://reports.<region>.ovp.kaltura.com")
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ConfigError(setting, "must use https (plain http only for a loopback host)")
    return url


def _base_url(value: str, setting: str, *, example: str) -> str:
    url = value.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(setting, f"must be an http(s) base URL such as {example}")
    return url


def _session_mode(entry: Mapping[str, Any], path: str) -> str:
    value = entry.get("session_mode", "auto")
    if value not in SESSION_MODES:
        raise ConfigError(f"{path}.session_mode", f"must be one of {', '.join(SESSION_MODES)}")
    return str(value)


def _app_token(value: Any, path: str) -> AppToken | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(path, "must be an object with id, token and optional hash_type")
    unknown = sorted(set(value) - _APP_TOKEN_KEYS)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", "unknown setting")
    hash_type = value.get("hash_type", DEFAULT_APP_TOKEN_HASH_TYPE)
    if hash_type not in APP_TOKEN_HASH_TYPES:
        raise ConfigError(f"{path}.hash_type", f"must be one of {', '.join(APP_TOKEN_HASH_TYPES)}")
    return AppToken(id=_required_str(value, "id", path), token=_required_str(value, "token", path), hash_type=hash_type)


class PartnerDirectory:
    """Looks partners up in the cached secret document; an unknown partner triggers a rate-limited refresh.

    A partner added to the secret therefore works without a redeploy, while requests for partners that do not
    exist cost at most one Secrets Manager call per refresh interval.
    """

    def __init__(self, secret: CachedSecret[PartnerSecrets]) -> None:
        self._secret = secret

    def get(self, partner_id: int) -> PartnerConfig | None:
        """Return the partner's config, or ``None`` if it is not configured even after a (rate-limited) refresh."""
        partner = self._secret.get().partners.get(partner_id)
        if partner is None:
            partner = self._secret.refresh().partners.get(partner_id)
        return partner


@functools.cache
def partner_directory(secret_arn: str) -> PartnerDirectory:
    """The process-wide directory for the partner secret ``secret_arn`` (fetched lazily, cached with a TTL)."""
    return PartnerDirectory(CachedSecret(secret_arn, parse_partner_secrets))
