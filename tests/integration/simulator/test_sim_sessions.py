"""KS checking, session.start, widget sessions and app tokens (docs/kaltura.md#ks) against the simulator over HTTP."""

from __future__ import annotations

import base64
import hashlib

import pytest
from kauto_local.simulator import ApiError, KalturaSimulator, decode_ks
from sim_support import ADMIN_SECRET, PARTNER_ID, Api

pytestmark = pytest.mark.integration

# docs/kaltura.md#ks-v2 self-computed vectors (fake secret, partner 1234567, _e = 1893456000).
VECTOR_KS_V2 = (
    "djJ8MTIzNDU2N3xF2x4_vHdUErSIuHNmwxlCnxA9D7RscsyHKyeo0KUYUJ_srslw-XwM17bKUhEIadmVcZvdYS_WTuXPXncvnpMF5x32mdPe__"
    "F0z-gTSDZgGavWRqF23_lTXrOXtb4EJB20yAmQYwzTyM6o2vHIAts1V-IpTwrDAMQ_syStEv5ZvA=="
)
VECTOR_KS_V1 = (
    "ZWY0Mzg3NmMwZjVhZTZkNWJjNWJiMGJiODFjNTE2MmY1NTgxNTk4ZHwxMjM0NTY3OzEyMzQ1Njc7MTg5MzQ1NjAwMDsyOzEyMzQ7bGFtYmRh"
    "LXdlYmhvb2s7ZGlzYWJsZWVudGl0bGVtZW50"
)
# docs/kaltura.md#app-tokens vectors: tokenHash of (VECTOR_KS_V2 + token).
APP_TOKEN = "a3f1c2e4b5d6978812345678abcdef0012345678abcdef0012345678abcdef00"
APP_TOKEN_HASH_SHA256 = "883599bc901d509df9dfbbc065200f06f659ada11a0cbb7f4db81f8ff97fd544"
APP_TOKEN_HASH_SHA1 = "848342658b2d0c80843b3f3bfa7d43e863773f19"
EXPIRED_ERROR = {
    "code": "INVALID_KS",
    "message": 'Invalid KS "EXPIRED", Error "-1,INVALID_STR"',
    "objectType": "KalturaAPIException",
    "args": {"KSID": "EXPIRED", "ERR_CODE": "-1", "ERR_DESC": "INVALID_STR"},
}


def test_decoder_reads_the_protocol_v2_vector() -> None:
    info = decode_ks(VECTOR_KS_V2, lambda pid: [ADMIN_SECRET] if pid == PARTNER_ID else [])

    assert (info.version, info.partner_id, info.session_type, info.user_id) == (2, PARTNER_ID, 2, "lambda-webhook")
    assert info.expiry == 1893456000
    assert info.privileges == (("disableentitlement", ""), ("privacycontext", "MediaSpace"))


def test_decoder_reads_the_protocol_v1_vector() -> None:
    info = decode_ks(VECTOR_KS_V1, lambda pid: [ADMIN_SECRET])

    assert (info.version, info.partner_id, info.expiry, info.user_id) == (1, PARTNER_ID, 1893456000, "lambda-webhook")
    assert info.privilege("disableentitlement") == ""


@pytest.mark.parametrize("vector", [VECTOR_KS_V2, VECTOR_KS_V1], ids=["v2", "v1"])
def test_protocol_vectors_are_accepted_by_the_api_before_their_expiry(api: Api, vector: str) -> None:
    result = api.call("baseEntry", "list", ks=vector)

    assert result == {"objects": [], "totalCount": 0, "objectType": "KalturaBaseEntryListResponse"}


def test_vector_is_rejected_once_the_clock_passes_its_expiry(sim: KalturaSimulator, api: Api) -> None:
    sim.clock.set(1893456000)

    assert api.call("baseEntry", "list", ks=VECTOR_KS_V2) == EXPIRED_ERROR


def test_session_start_issues_an_admin_v2_ks_that_the_api_accepts(api: Api) -> None:
    ks = api.call("session", "start", secret=ADMIN_SECRET, type=2, partnerId=PARTNER_ID, userId="robot", expiry=600)

    assert ks.startswith("djJ8")
    info = decode_ks(ks, lambda pid: [ADMIN_SECRET])
    assert (info.session_type, info.user_id, info.partner_id) == (2, "robot", PARTNER_ID)
    assert api.call("baseEntry", "list", ks=ks)["objectType"] == "KalturaBaseEntryListResponse"


def test_session_start_with_a_wrong_secret_fails(api: Api) -> None:
    result = api.call("session", "start", secret="not-the-secret", type=2, partnerId=PARTNER_ID)

    assert result["code"] == "START_SESSION_ERROR"
    assert result["args"] == {"PARTNER_ID": str(PARTNER_ID)}


def test_ks_expires_on_the_simulator_clock(sim: KalturaSimulator, api: Api) -> None:
    ks = api.call("session", "start", secret=ADMIN_SECRET, type=2, partnerId=PARTNER_ID, expiry=600)
    sim.clock.advance(599)
    assert api.call("baseEntry", "list", ks=ks)["objectType"] == "KalturaBaseEntryListResponse"

    sim.clock.advance(1)

    response = api.post("baseEntry", "list", ks=ks)
    assert response.status_code == 200
    assert response.content == (
        b'{"code":"INVALID_KS","message":"Invalid KS \\"EXPIRED\\", Error \\"-1,INVALID_STR\\"",'
        b'"objectType":"KalturaAPIException","args":{"KSID":"EXPIRED","ERR_CODE":"-1","ERR_DESC":"INVALID_STR"}}'
    )


def test_ks_signed_with_another_secret_is_invalid_with_the_ks_as_ksid(api: Api) -> None:
    with KalturaSimulator(seed=7, tls=False) as other:
        other.add_partner(PARTNER_ID, "some-other-secret")
        foreign = other.ks(PARTNER_ID)

    result = api.call("baseEntry", "list", ks=foreign)

    assert result["code"] == "INVALID_KS"
    assert result["args"] == {"KSID": foreign, "ERR_CODE": "-1", "ERR_DESC": "INVALID_STR"}


def test_tampered_ks_is_invalid(api: Api, admin_ks: str) -> None:
    raw = bytearray(base64.b64decode(admin_ks.replace("-", "+").replace("_", "/")))
    raw[-5] ^= 0x01
    tampered = base64.b64encode(bytes(raw)).decode().replace("+", "-").replace("/", "_")

    assert api.call("baseEntry", "list", ks=tampered)["code"] == "INVALID_KS"
    assert api.call("baseEntry", "list", ks="not a ks at all")["code"] == "INVALID_KS"


def test_additional_admin_secret_authenticates_a_ks(api: Api) -> None:
    with KalturaSimulator(seed=1, tls=False) as rotating:
        rotating.add_partner(PARTNER_ID, "old-secret")
        old_ks = rotating.ks(PARTNER_ID)
    api.sim.add_partner(PARTNER_ID, ADMIN_SECRET, additional_admin_secrets=["old-secret"])

    assert api.call("baseEntry", "list", ks=old_ks)["objectType"] == "KalturaBaseEntryListResponse"


def test_missing_ks_and_user_ks_are_refused_for_admin_actions(sim: KalturaSimulator, api: Api) -> None:
    assert api.call("baseEntry", "list")["code"] == "MISSING_KS"

    user_ks = sim.ks(PARTNER_ID, session_type=0, user_id="viewer")
    response = api.post("baseEntry", "list", ks=user_ks)

    assert response.json()["code"] == "SERVICE_FORBIDDEN"
    assert response.json()["args"] == {"SERVICE": "baseEntry->list"}
    assert response.headers["X-Kaltura"] == "error-SERVICE_FORBIDDEN"


def test_v1_partner_gets_v1_sessions(api: Api) -> None:
    api.sim.add_partner(555, "v1-secret", ks_version=1)

    ks = api.call("session", "start", secret="v1-secret", type=2, partnerId=555)

    assert base64.b64decode(ks).decode().split("|")[1].startswith("555;555;")
    assert api.call("baseEntry", "list", ks=ks)["totalCount"] == 0


def test_widget_session_returns_a_view_only_ks(api: Api) -> None:
    result = api.call("session", "startWidgetSession", widgetId=f"_{PARTNER_ID}")

    assert result["objectType"] == "KalturaStartWidgetSessionResponse"
    assert (result["partnerId"], result["userId"]) == (PARTNER_ID, 0)
    info = decode_ks(result["ks"], lambda pid: [ADMIN_SECRET])
    assert info.session_type == 0
    assert info.privileges == (("view", "*"), ("widget", "1"))
    assert api.call("session", "startWidgetSession", widgetId="_999")["code"] == "INVALID_WIDGET_ID"


def _start_app_token_session(api: Api, ks: str, token_id: str, token_hash: str, **extra: object) -> dict:
    return api.call("appToken", "startSession", ks=ks, id=token_id, tokenHash=token_hash, **extra)


@pytest.mark.parametrize(
    ("hash_type", "token_hash"), [("SHA256", APP_TOKEN_HASH_SHA256), ("SHA1", APP_TOKEN_HASH_SHA1)]
)
def test_app_token_session_with_the_protocol_vectors(
    sim: KalturaSimulator, api: Api, hash_type: str, token_hash: str
) -> None:
    sim.add_app_token(
        PARTNER_ID,
        APP_TOKEN,
        token_id="0_abc",
        hash_type=hash_type,
        session_user_id="kaltura-automations",
        session_privileges="disableentitlement",
    )

    result = _start_app_token_session(api, VECTOR_KS_V2, "0_abc", token_hash, expiry=3600)

    assert result["objectType"] == "KalturaSessionInfo"
    assert (result["sessionType"], result["partnerId"], result["userId"]) == (2, PARTNER_ID, "kaltura-automations")
    assert result["expiry"] == sim.clock.now() + 3600
    assert result["privileges"].startswith("disableentitlement,sessionid:")
    assert result["privileges"].endswith(",apptoken:0_abc")
    assert api.call("baseEntry", "list", ks=result["ks"])["objectType"] == "KalturaBaseEntryListResponse"


def test_app_token_flow_from_a_widget_session(sim: KalturaSimulator, api: Api) -> None:
    sim.add_app_token(PARTNER_ID, APP_TOKEN, token_id="0_flow", hash_type="SHA512", session_duration=7200)
    widget_ks = api.call("session", "startWidgetSession", widgetId=f"_{PARTNER_ID}")["ks"]
    token_hash = hashlib.sha512((widget_ks + APP_TOKEN).encode()).hexdigest()

    result = _start_app_token_session(api, widget_ks, "0_flow", token_hash, expiry=86400)

    assert result["expiry"] == sim.clock.now() + 7200, "the token's sessionDuration caps the requested expiry"


def test_app_token_errors(sim: KalturaSimulator, api: Api) -> None:
    sim.add_app_token(PARTNER_ID, APP_TOKEN, token_id="0_ok")
    sim.add_app_token(PARTNER_ID, APP_TOKEN, token_id="0_off", status=0)
    sim.add_app_token(PARTNER_ID, APP_TOKEN, token_id="0_old", expiry=sim.clock.now() - 1)

    assert _start_app_token_session(api, VECTOR_KS_V2, "0_nope", APP_TOKEN_HASH_SHA256) == {
        "code": "APP_TOKEN_ID_NOT_FOUND",
        "message": "Application token id [0_nope] not found",
        "objectType": "KalturaAPIException",
        "args": {"ID": "0_nope"},
    }
    wrong = _start_app_token_session(api, VECTOR_KS_V2, "0_ok", APP_TOKEN_HASH_SHA1)
    assert (wrong["code"], wrong["args"]) == ("INVALID_APP_TOKEN_HASH", [])
    assert _start_app_token_session(api, VECTOR_KS_V2, "0_off", APP_TOKEN_HASH_SHA256)["code"] == "APP_TOKEN_NOT_ACTIVE"
    assert _start_app_token_session(api, VECTOR_KS_V2, "0_old", APP_TOKEN_HASH_SHA256)["code"] == "APP_TOKEN_EXPIRED"
    # The hash must cover the exact KS sent with the call: the vector's hash with another KS fails.
    other_ks = sim.ks(PARTNER_ID, session_type=0)
    assert _start_app_token_session(api, other_ks, "0_ok", APP_TOKEN_HASH_SHA256)["code"] == "INVALID_APP_TOKEN_HASH"


def test_check_ks_validates_like_the_api(sim: KalturaSimulator) -> None:
    ks = sim.ks(PARTNER_ID, user_id="contract", expiry_seconds=60)

    assert sim.check_ks(ks).user_id == "contract"
    sim.clock.advance(60)
    with pytest.raises(ApiError) as expired:
        sim.check_ks(ks)
    assert (expired.value.code, expired.value.args_map["KSID"]) == ("INVALID_KS", "EXPIRED")
