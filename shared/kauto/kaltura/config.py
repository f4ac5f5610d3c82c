"""Partner credentials and client settings, validated once with errors that name the setting.

Callers build :class:`PartnerCredentials` from the partner secret (team brief, "Shared decisions"; parsed by
``kauto.config``). Secrets never appear in reprs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path

from kauto.kaltura.errors import KalturaConfigurationError
from kauto.kaltura.ks import APP_TOKEN_HASH_TYPES
from kauto.kaltura.urls import LOOPBACK_HOSTS, check_base_url, origin_of

# Reports Microservice hosts look like reports.<region>.ovp.kaltura.com (docs/kaltura.md#reports-microservice).
_REPORTS_HOST = re.compile(r"reports\.[a-z0-9-]+\.ovp\.kaltura\.com")


class SessionMode(enum.Enum):
    """How the client obtains a KS (docs/kaltura.md#ks)."""

    AUTO = "auto"  # app token when configured (least privilege), else a locally built KS v2
    APP_TOKEN = "app_token"  # noqa: S105 (a mode name, not a secret) session.startWidgetSession + appToken.startSession (docs/kaltura.md#app-tokens)
    LOCAL = "local"  # KS v2 built client-side from the admin secret (docs/kaltura.md#ks-v2)
    SESSION_START = "session_start"  # session.start on the server with the admin secret (docs/kaltura.md#session-start)


@dataclass(frozen=True, slots=True)
class AppToken:
    """A Kaltura app token. ``token`` is secret and never shown in reprs."""

    id: str
    token: str = field(repr=False)
    hash_type: str = "SHA1"

    def __post_init__(self) -> None:
        if not self.id or not self.token:
            raise KalturaConfigurationError("app_token", "id and token are required")
        hash_type = self.hash_type.upper()
        if hash_type not in APP_TOKEN_HASH_TYPES:
            raise KalturaConfigurationError("app_token.hash_type", f"must be one of {sorted(APP_TOKEN_HASH_TYPES)}")
        object.__setattr__(self, "hash_type", hash_type)


@dataclass(frozen=True, slots=True)
class PartnerCredentials:
    """Everything the client needs to talk to one Kaltura partner. ``admin_secret`` is never shown in reprs."""

    partner_id: int
    service_url: str
    admin_secret: str | None = field(default=None, repr=False)
    app_token: AppToken | None = None
    session_user_id: str = "kaltura-automations"
    session_privileges: str = ""
    session_mode: SessionMode = SessionMode.AUTO
    reports_service_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.partner_id, int) or isinstance(self.partner_id, bool) or self.partner_id <= 0:
            raise KalturaConfigurationError("partner_id", "must be a positive integer")
        object.__setattr__(self, "service_url", check_base_url(self.service_url, "service_url"))
        if self.reports_service_url is not None:
            url = check_base_url(self.reports_service_url, "reports_service_url")
            host = origin_of(url).host
            if not (_REPORTS_HOST.fullmatch(host) or host in LOOPBACK_HOSTS):
                raise KalturaConfigurationError(
                    "reports_service_url", "host must be reports.<region>.ovp.kaltura.com (or loopback, locally)"
                )
            object.__setattr__(self, "reports_service_url", url)
        mode = self.session_mode
        if mode is SessionMode.APP_TOKEN and self.app_token is None:
            raise KalturaConfigurationError("app_token", "required when session_mode is 'app_token'")
        if mode in (SessionMode.LOCAL, SessionMode.SESSION_START) and not self.admin_secret:
            raise KalturaConfigurationError("admin_secret", f"required when session_mode is {mode.value!r}")
        if mode is SessionMode.AUTO and not (self.admin_secret or self.app_token):
            raise KalturaConfigurationError("admin_secret", "required when no app_token is configured")

    @property
    def effective_session_mode(self) -> SessionMode:
        """The concrete mode: AUTO resolves to APP_TOKEN when a token is configured, else LOCAL."""
        if self.session_mode is SessionMode.AUTO:
            return SessionMode.APP_TOKEN if self.app_token else SessionMode.LOCAL
        return self.session_mode


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Process-wide tuning of the client (timeouts, retries, pools, report paging, download limits)."""

    connect_timeout: float = 3.05
    read_timeout: float = 30.0
    max_attempts: int = 4  # per call, including the first attempt
    backoff_base: float = 0.5  # seconds; full jitter in [0, min(backoff_max, base * 2**n)]
    backoff_max: float = 8.0
    pool_size: int = 16  # HTTP connections kept per host; >= report_concurrency
    report_concurrency: int = 4  # parallel report page fetches (respect Kaltura's rate limits)
    # 500 rows per getTable page, as Kaltura's report guides use: twice the requests of 1000-row pages, but pages
    # that pipeline well across report_concurrency (benchmarks/kaltura_bench.py measures both).
    report_page_size: int = 500
    ks_ttl_seconds: int = 6 * 3600
    ks_refresh_fraction: float = 0.1  # refresh when less than this share of the lifetime is left ...
    ks_refresh_min_seconds: int = 300  # ... or less than this, whichever is larger
    download_hosts: tuple[str, ...] = ("cdnapisec.kaltura.com", "cdnapi.kaltura.com")
    download_ports: tuple[int, ...] = ()
    max_redirects: int = 3
    max_download_bytes: int = 5 * 1024**3
    max_response_bytes: int = 64 * 1024**2  # a JSON response larger than this is refused, not buffered
    stream_chunk_bytes: int = 64 * 1024
    # PEM bundle to trust instead of the default CAs (a private CA, the local simulator). Passed with every request:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own `verify`, never a request's.
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        positive = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "max_attempts": self.max_attempts,
            "pool_size": self.pool_size,
            "report_concurrency": self.report_concurrency,
            "report_page_size": self.report_page_size,
            "ks_ttl_seconds": self.ks_ttl_seconds,
            "max_download_bytes": self.max_download_bytes,
            "max_response_bytes": self.max_response_bytes,
            "stream_chunk_bytes": self.stream_chunk_bytes,
        }
        for name, value in positive.items():
            if value <= 0:
                raise KalturaConfigurationError(name, "must be positive")
        if self.backoff_base < 0 or self.backoff_max < self.backoff_base:
            raise KalturaConfigurationError("backoff_base/backoff_max", "need 0 <= backoff_base <= backoff_max")
        if self.pool_size < self.report_concurrency:
            raise KalturaConfigurationError("pool_size", "must be >= report_concurrency")
        if self.report_page_size > 12_000:
            raise KalturaConfigurationError("report_page_size", "at most 12000 (docs/kaltura.md#report-gettable)")
        if not 0 < self.ks_refresh_fraction < 1:
            raise KalturaConfigurationError("ks_refresh_fraction", "must be between 0 and 1")
        if self.max_redirects < 0:
            raise KalturaConfigurationError("max_redirects", "must be >= 0")
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise KalturaConfigurationError("ca_bundle", "must be the path of a PEM file")
        object.__setattr__(self, "download_hosts", tuple(h.lower().rstrip(".") for h in self.download_hosts))
