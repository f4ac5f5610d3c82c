"""kauto.partner_credentials: the Kaltura client credentials built from a validated partner secret entry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.config import SESSION_MODES, parse_partner_secrets
from kauto.errors import ConfigError
from kauto.kaltura import PartnerCredentials, SessionMode
from kauto.partner_credentials import partner_credentials

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "a3f1c2e4b5d6978812345678abcdef0012345678abcdef0012345678abcdef00"


def credentials_from(**entry: Any) -> PartnerCredentials:
    base = {"admin_secret": SECRET, "webhook_hash_algorithms": ["sha1"], "service_url": "https://www.kaltura.com"}
    document = json.dumps({"partners": {"1234567": {**base, **entry}}})
    return partner_credentials(parse_partner_secrets(document).partners[1234567])


def test_session_mode_names_are_the_kaltura_clients() -> None:
    assert set(SESSION_MODES) == {mode.value for mode in SessionMode}


def test_minimal_entry_builds_admin_secret_credentials_with_defaults() -> None:
    credentials = credentials_from()

    assert (credentials.partner_id, credentials.service_url, credentials.admin_secret) == (
        1234567,
        "https://www.kaltura.com",
        SECRET,
    )
    assert credentials.app_token is None
    assert (credentials.session_user_id, credentials.session_privileges) == ("kaltura-automations", "")
    assert credentials.effective_session_mode is SessionMode.LOCAL
    assert credentials.reports_service_url is None


def test_full_entry_carries_every_setting_through() -> None:
    credentials = credentials_from(
        app_token={"id": "0_abc", "token": TOKEN},
        session_user_id="ops-bot",
        session_privileges="disableentitlement",
        session_mode="app_token",
        reports_service_url="https://reports.nvp1.ovp.kaltura.com",
    )

    assert credentials.app_token is not None
    assert (credentials.app_token.id, credentials.app_token.token) == ("0_abc", TOKEN)
    assert credentials.app_token.hash_type == "SHA1"
    assert (credentials.session_user_id, credentials.session_privileges) == ("ops-bot", "disableentitlement")
    assert credentials.session_mode is SessionMode.APP_TOKEN
    assert credentials.reports_service_url == "https://reports.nvp1.ovp.kaltura.com"


@pytest.mark.parametrize("mode", SESSION_MODES)
def test_every_session_mode_of_the_secret_reaches_the_client(mode: str) -> None:
    credentials = credentials_from(app_token={"id": "0_abc", "token": TOKEN}, session_mode=mode)

    assert credentials.session_mode is SessionMode(mode)


@pytest.mark.parametrize(
    ("entry", "setting"),
    [
        ({"service_url": "https://www.kaltura.com/proxy"}, "partners.1234567.service_url"),
    ],
)
def test_unusable_combination_is_a_config_error_naming_the_secret_path(entry: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as error:
        credentials_from(**entry)

    assert error.value.setting == setting
    assert SECRET not in str(error.value)
