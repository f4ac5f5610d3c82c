"""Kaltura client credentials from a partner's secret entry (:class:`kauto.config.PartnerConfig`).

A module of its own, not a method of ``PartnerConfig``: importing ``kauto.kaltura.config`` runs the
``kauto.kaltura`` package, which loads the HTTP client (``requests``), and the webhook imports ``kauto.config`` but
must never load the Kaltura client. ``kauto.kaltura`` must not import ``kauto.config`` either (layering), so the
bridge between the two lives here, on the configuration floor, for the workers only.
"""

from __future__ import annotations

from kauto.config import PartnerConfig
from kauto.errors import ConfigError
from kauto.kaltura.config import AppToken, PartnerCredentials, SessionMode
from kauto.kaltura.errors import KalturaConfigurationError

DEFAULT_SESSION_USER_ID = "kaltura-automations"
"""KS user id when the partner secret sets no ``session_user_id``."""


def partner_credentials(partner: PartnerConfig) -> PartnerCredentials:
    """Build the Kaltura client credentials of ``partner``: admin secret, app token, session and Reports settings.

    Raises :class:`ConfigError` naming the secret path (``partners.<id>.<setting>``) when the combination is not
    usable, e.g. ``session_mode`` ``app_token`` without an ``app_token``, or a Reports Microservice URL whose host
    is not a Kaltura reports host.
    """
    token = partner.app_token
    try:
        return PartnerCredentials(
            partner_id=partner.partner_id,
            service_url=partner.service_url,
            admin_secret=partner.admin_secret,
            app_token=AppToken(token.id, token.token, token.hash_type) if token is not None else None,
            session_user_id=partner.session_user_id or DEFAULT_SESSION_USER_ID,
            session_privileges=partner.session_privileges or "",
            session_mode=SessionMode(partner.session_mode),
            reports_service_url=partner.reports_service_url,
        )
    except KalturaConfigurationError as exc:
        raise ConfigError(f"partners.{partner.partner_id}.{exc.setting}", exc.problem) from exc
