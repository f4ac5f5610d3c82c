"""KS issuing and checking, and the ``session`` / ``appToken`` services (docs/kaltura.md#ks)."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from . import errors
from .api import Auth, CallContext, Registry
from .errors import ApiError, invalid_ks
from .ks import SESSION_TYPE_ADMIN, SESSION_TYPE_USER, KsDecodeError, KsInfo, decode_ks, encode_ks_v1, encode_ks_v2
from .params import Params
from .serialize import kaltura_object
from .state import APP_TOKEN_ACTIVE, Partner

if TYPE_CHECKING:
    from .core import SimulatorCore

DEFAULT_EXPIRY = 86400
_APP_TOKEN_HASHES = {"SHA1": "sha1", "MD5": "md5", "SHA256": "sha256", "SHA512": "sha512"}


def issue_ks(
    core: SimulatorCore,
    partner: Partner,
    *,
    session_type: int,
    user_id: str = "",
    expiry_seconds: int = DEFAULT_EXPIRY,
    privileges: str = "",
) -> str:
    """A KS for ``partner`` in the partner's KS version, expiring ``expiry_seconds`` after simulator-now."""
    expiry = core.clock.now() + expiry_seconds
    if partner.ks_version == 1:
        rand = int.from_bytes(core.state.random_bytes(4), "big") % 100000
        return encode_ks_v1(
            partner.partner_id,
            partner.admin_secret,
            session_type=session_type,
            user_id=user_id,
            expiry=expiry,
            privileges=privileges,
            rand=rand,
        )
    return encode_ks_v2(
        partner.partner_id,
        partner.admin_secret,
        session_type=session_type,
        user_id=user_id,
        expiry=expiry,
        privileges=privileges,
        rand=core.state.random_bytes(16),
    )


def authenticate(core: SimulatorCore, ks: str) -> KsInfo:
    """Decode ``ks`` with the partner's admin secrets and check it against the simulator clock.

    A KS that cannot be authenticated puts the KS itself in KSID; an expired one says EXPIRED
    (docs/kaltura.md#api-errors).
    """
    try:
        info = decode_ks(ks, core.state.admin_secrets)
    except KsDecodeError as exc:
        raise invalid_ks(ks) from exc
    if info.expiry <= core.clock.now():
        raise invalid_ks("EXPIRED")
    return info


def _session_start(ctx: CallContext, params: Params) -> str:
    partner_id = params.get_int("partnerId")
    partner = ctx.core.state.partner(partner_id) if partner_id is not None else None
    if partner is None:
        raise ApiError(errors.START_SESSION_ERROR, partner_id if partner_id is not None else "")
    secret = params.get_str("secret", "") or ""
    session_type = params.get_int("type", SESSION_TYPE_USER)
    allowed = list(partner.admin_secrets)
    if session_type != SESSION_TYPE_ADMIN:
        allowed.append(partner.user_secret)
    if not any(hmac.compare_digest(secret, candidate) for candidate in allowed):
        raise ApiError(errors.START_SESSION_ERROR, partner.partner_id)
    ctx.partner_id = partner.partner_id
    return issue_ks(
        ctx.core,
        partner,
        session_type=SESSION_TYPE_ADMIN if session_type == SESSION_TYPE_ADMIN else SESSION_TYPE_USER,
        user_id=params.get_str("userId", "") or "",
        expiry_seconds=params.get_int("expiry") or DEFAULT_EXPIRY,
        privileges=params.get_str("privileges", "") or "",
    )


def _start_widget_session(ctx: CallContext, params: Params) -> dict[str, Any]:
    widget_id = params.required_str("widgetId")
    partner = None
    if widget_id.startswith("_") and widget_id[1:].isdigit():
        partner = ctx.core.state.partner(int(widget_id[1:]))
    if partner is None:
        raise ApiError(errors.INVALID_WIDGET_ID, widget_id)
    ctx.partner_id = partner.partner_id
    ks = issue_ks(
        ctx.core,
        partner,
        session_type=SESSION_TYPE_USER,
        user_id="0",
        expiry_seconds=params.get_int("expiry") or DEFAULT_EXPIRY,
        privileges="view:*,widget:1",
    )
    return kaltura_object("KalturaStartWidgetSessionResponse", {"partnerId": partner.partner_id, "ks": ks, "userId": 0})


def _app_token_start_session(ctx: CallContext, params: Params) -> dict[str, Any]:
    token_id = params.required_str("id")
    token_hash = params.required_str("tokenHash")
    partner = ctx.core.state.partner(ctx.require_partner())
    token = partner.app_tokens.get(token_id) if partner else None
    if partner is None or token is None:
        raise ApiError(errors.APP_TOKEN_ID_NOT_FOUND, token_id)
    if token.status != APP_TOKEN_ACTIVE:
        raise ApiError(errors.APP_TOKEN_NOT_ACTIVE, token_id)
    now = ctx.now
    if token.expiry is not None and token.expiry <= now:
        raise ApiError(errors.APP_TOKEN_EXPIRED, token_id)
    # docs/kaltura.md#app-tokens: the hash covers the exact KS string sent as the `ks` parameter of this very call.
    algorithm = _APP_TOKEN_HASHES.get(token.hash_type.upper(), "sha1")
    expected = hashlib.new(algorithm, ((ctx.ks_string or "") + token.token).encode()).hexdigest()
    if not hmac.compare_digest(expected, token_hash):
        raise ApiError(errors.INVALID_APP_TOKEN_HASH)
    session_type = token.session_type if token.session_type is not None else params.get_int("type", SESSION_TYPE_USER)
    user_id = token.session_user_id or params.get_str("userId", "") or ""
    privileges = token.session_privileges or params.get_str("sessionPrivileges", "") or ""
    session_id = int.from_bytes(ctx.core.state.random_bytes(4), "big")
    privileges = ",".join(part for part in (privileges, f"sessionid:{session_id}", f"apptoken:{token_id}") if part)
    duration = min(params.get_int("expiry") or token.session_duration, token.session_duration)
    if token.expiry is not None:
        duration = min(duration, token.expiry - now)
    ks = issue_ks(
        ctx.core,
        partner,
        session_type=session_type or SESSION_TYPE_USER,
        user_id=user_id,
        expiry_seconds=duration,
        privileges=privileges,
    )
    return kaltura_object(
        "KalturaSessionInfo",
        {
            "ks": ks,
            "sessionType": session_type,
            "partnerId": partner.partner_id,
            "userId": user_id,
            "expiry": now + duration,
            "privileges": privileges,
        },
    )


def _ping(ctx: CallContext, params: Params) -> bool:
    return True


def register(registry: Registry) -> None:
    """Add the session, appToken and system services."""
    registry.add("session", "start", Auth.NONE, _session_start)
    registry.add("session", "startWidgetSession", Auth.NONE, _start_widget_session)
    registry.add("apptoken", "startSession", Auth.ANY_KS, _app_token_start_session)
    registry.add("system", "ping", Auth.NONE, _ping)
