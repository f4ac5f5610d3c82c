"""KS acquisition and caching per partner (docs/kaltura.md#ks).

Three modes (see :class:`~kauto.kaltura.config.SessionMode`): an app token session (preferred, least privilege),
a KS v2 built locally from the admin secret, or ``session.start`` on the server. The KS is cached until shortly
before it expires and can be invalidated after an ``INVALID_KS`` so exactly one refresh happens.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kauto.kaltura.config import ClientSettings, PartnerCredentials, SessionMode
from kauto.kaltura.errors import KalturaConfigurationError, KalturaProtocolError
from kauto.kaltura.ks import SESSION_TYPE_ADMIN, app_token_hash, build_ks_v2
from kauto.kaltura.params import api_url
from kauto.kaltura.transport import HttpTransport, InvocationBudget


@dataclass(frozen=True, slots=True)
class CachedSession:
    """A KS and its absolute expiry; the KS is never shown in reprs."""

    ks: str = field(repr=False)
    issued_at: float
    expires_at: float

    def usable(self, now: float, fraction: float, min_seconds: float) -> bool:
        """True while more than max(fraction of the lifetime, min_seconds) is left (capped at half the lifetime)."""
        lifetime = self.expires_at - self.issued_at
        margin = min(max(lifetime * fraction, min_seconds), lifetime / 2)
        return self.expires_at - now > margin


class SessionManager:
    """Hands out the partner's KS, creating and caching it; thread-safe (one refresh at a time)."""

    def __init__(
        self,
        credentials: PartnerCredentials,
        settings: ClientSettings,
        transport: HttpTransport,
        *,
        rand16: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._credentials = credentials
        self._settings = settings
        self._transport = transport
        self._rand16 = rand16
        # Reentrant: scrubbing an error raised while a session is being obtained reads the issued KS list.
        self._lock = threading.RLock()
        self._current: CachedSession | None = None
        # Every KS this process obtained recently, so error text can be scrubbed of them.
        self._issued: deque[str] = deque(maxlen=8)

    def __repr__(self) -> str:
        mode = self._credentials.effective_session_mode.value
        return f"SessionManager(partner_id={self._credentials.partner_id}, mode={mode!r})"

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in logs or errors: admin secret, app token and recent KS values."""
        creds = self._credentials
        with self._lock:
            issued = tuple(self._issued)
        values = (creds.admin_secret or "", creds.app_token.token if creds.app_token else "", *issued)
        return tuple(v for v in values if v)

    def ks(self, budget: InvocationBudget) -> str:
        """A KS with enough lifetime left, from the cache or freshly obtained."""
        settings = self._settings
        with self._lock:
            now = self._transport.clock.now()
            current = self._current
            if current is None or not current.usable(
                now, settings.ks_refresh_fraction, settings.ks_refresh_min_seconds
            ):
                current = self._obtain(now, budget)
                self._current = current
            return current.ks

    def invalidate(self, ks: str) -> None:
        """Forget ``ks`` after Kaltura rejected it (a KS obtained meanwhile by another thread is kept)."""
        with self._lock:
            if self._current is not None and self._current.ks == ks:
                self._current = None

    def _remember(self, ks: str) -> str:
        self._issued.append(ks)
        return ks

    def _obtain(self, now: float, budget: InvocationBudget) -> CachedSession:
        mode = self._credentials.effective_session_mode
        if mode is SessionMode.APP_TOKEN:
            return self._start_app_token_session(now, budget)
        if mode is SessionMode.SESSION_START:
            return self._start_server_session(now, budget)
        return self._build_local_session(now)

    def _build_local_session(self, now: float) -> CachedSession:
        creds = self._credentials
        if not creds.admin_secret:
            raise KalturaConfigurationError("admin_secret", "required to build a KS locally")
        expiry = int(now) + self._settings.ks_ttl_seconds
        ks = build_ks_v2(
            creds.admin_secret,
            creds.partner_id,
            expiry=expiry,
            rand16=self._rand16(16),
            user_id=creds.session_user_id,
            session_type=SESSION_TYPE_ADMIN,
            privileges=creds.session_privileges,
        )
        return CachedSession(self._remember(ks), issued_at=now, expires_at=expiry)

    def _start_server_session(self, now: float, budget: InvocationBudget) -> CachedSession:
        creds = self._credentials
        ttl = self._settings.ks_ttl_seconds
        form = [
            ("format", "1"),
            ("secret", creds.admin_secret or ""),
            ("userId", creds.session_user_id),
            ("type", str(SESSION_TYPE_ADMIN)),
            ("partnerId", str(creds.partner_id)),
            ("expiry", str(ttl)),
            ("privileges", creds.session_privileges),
        ]
        url = api_url(creds.service_url, "session", "start")
        ks = self._transport.request_json(url, what="session.start", budget=budget, form=form)
        if not isinstance(ks, str) or not ks:
            raise KalturaProtocolError("session.start did not return a KS string")
        return CachedSession(self._remember(ks), issued_at=now, expires_at=now + ttl)

    def _start_app_token_session(self, now: float, budget: InvocationBudget) -> CachedSession:
        creds = self._credentials
        token = creds.app_token
        if token is None:
            raise KalturaConfigurationError("app_token", "required for an app token session")
        ttl = self._settings.ks_ttl_seconds
        widget = self._transport.request_json(
            api_url(creds.service_url, "session", "startWidgetSession"),
            what="session.startWidgetSession",
            budget=budget,
            form=[("format", "1"), ("widgetId", f"_{creds.partner_id}")],
        )
        widget_ks = widget.get("ks") if isinstance(widget, dict) else None
        if not isinstance(widget_ks, str) or not widget_ks:
            raise KalturaProtocolError("session.startWidgetSession did not return a KS")
        self._remember(widget_ks)
        # The hash covers the exact KS sent as the ks parameter of appToken.startSession (docs/kaltura.md#app-tokens).
        form = [
            ("format", "1"),
            ("ks", widget_ks),
            ("id", token.id),
            ("tokenHash", app_token_hash(widget_ks, token.token, token.hash_type)),
            ("userId", creds.session_user_id),
            ("type", str(SESSION_TYPE_ADMIN)),
            ("expiry", str(ttl)),
        ]
        if creds.session_privileges:
            form.append(("sessionPrivileges", creds.session_privileges))
        info = self._transport.request_json(
            api_url(creds.service_url, "apptoken", "startSession"),
            what="appToken.startSession",
            budget=budget,
            form=form,
        )
        ks = info.get("ks") if isinstance(info, dict) else None
        if not isinstance(ks, str) or not ks:
            raise KalturaProtocolError("appToken.startSession did not return a KS")
        # The token's own sessionDuration/expiry cap the lifetime; trust the server's absolute expiry when given.
        expiry = info.get("expiry")
        expires_at = float(expiry) if isinstance(expiry, (int, float)) and expiry > now else now + ttl
        return CachedSession(self._remember(ks), issued_at=now, expires_at=expires_at)
