"""URL rules: configured base URLs and the allow-list for downloads (SSRF guard).

Download URLs come back from Kaltura (``getUrlForReportAsCsv``, docs/kaltura.md#report-csv-url) or from a queued job
handle, so they are treated as untrusted: https only, an exact allowed host name (never an IP literal), the default port
unless configured, no userinfo, and every redirect hop is checked again. The configured service origin itself is trusted
exactly as configured, which is what lets the local stack use ``http://127.0.0.1:<port>`` for both.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from kauto.kaltura.errors import KalturaConfigurationError, KalturaURLRefusedError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, lowercase host and effective port of a URL."""

    scheme: str
    host: str
    port: int


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # Numeric forms such as "2130706433" or "0x7f.1" resolve to addresses on many resolvers.
        return bool(re.fullmatch(r"[0-9.]+|(0x[0-9a-f]+\.?)+[0-9a-fx.]*", host))
    return True


def _split(url: str) -> tuple[Origin, bool]:
    """Parse ``url`` into its origin; the flag says whether it carried userinfo. Raises ValueError when malformed."""
    if not url.isascii() or _UNSAFE_CHARS.search(url):
        raise ValueError("contains whitespace, control, backslash or non-ASCII characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"scheme {scheme or '(none)'!r} is not http(s)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("has no host")
    port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    has_userinfo = "@" in parts.netloc
    return Origin(scheme, host, port or _DEFAULT_PORTS[scheme]), has_userinfo


def origin_of(url: str) -> Origin:
    """Origin of an already validated URL (e.g. a configured base URL)."""
    return _split(url)[0]


def check_base_url(url: str, setting: str) -> str:
    """Validate a configured base URL (service or Reports Microservice) and return it without a trailing slash.

    It must be https to a host name, or http(s) to a loopback address (the local simulator).
    """
    try:
        origin, has_userinfo = _split(url)
    except ValueError as exc:
        raise KalturaConfigurationError(setting, str(exc)) from None
    parts = urlsplit(url)
    if has_userinfo or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise KalturaConfigurationError(setting, "must be scheme://host[:port] with no path, query or credentials")
    if origin.host not in LOOPBACK_HOSTS:
        if origin.scheme != "https":
            raise KalturaConfigurationError(setting, "must use https (plain http only for loopback)")
        if _is_ip_literal(origin.host):
            raise KalturaConfigurationError(setting, "must name a host, not an IP address")
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    """Which URLs a download may touch. ``trusted_origins`` are the configured base URLs, accepted as they are."""

    trusted_origins: frozenset[Origin]
    allowed_hosts: frozenset[str]
    allowed_ports: frozenset[int] = frozenset()
    max_redirects: int = 3

    def check(self, url: str) -> str:
        """Return ``url`` if it may be fetched, else raise :class:`KalturaURLRefusedError` (never echoing the URL)."""
        try:
            origin, has_userinfo = _split(url)
        except ValueError as exc:
            raise KalturaURLRefusedError(f"download URL refused: {exc}") from None
        if has_userinfo:
            raise KalturaURLRefusedError("download URL refused: userinfo is not allowed")
        if origin in self.trusted_origins:
            return url
        if origin.scheme != "https":
            raise KalturaURLRefusedError("download URL refused: only https is allowed")
        if _is_ip_literal(origin.host):
            raise KalturaURLRefusedError("download URL refused: IP literal hosts are not allowed")
        if origin.host not in self.allowed_hosts:
            raise KalturaURLRefusedError(f"download URL refused: host {origin.host!r} is not allowed")
        if origin.port != _DEFAULT_PORTS["https"] and origin.port not in self.allowed_ports:
            raise KalturaURLRefusedError(f"download URL refused: port {origin.port} is not allowed")
        return url
