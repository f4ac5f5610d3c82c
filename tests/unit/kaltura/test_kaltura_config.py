"""Credentials and settings validation (errors name the setting), and the per-partner client cache."""

from __future__ import annotations

from typing import Any

import pytest
from kaltura_fakes import PARTNER_ID, SECRET
from kauto.errors import ConfigError
from kauto.kaltura import (
    AppToken,
    ClientSettings,
    KalturaConfigurationError,
    PartnerCredentials,
    SessionMode,
    clear_client_cache,
    get_client,
)

TOKEN = AppToken(id="0_abc", token="s3cr3t-token-value", hash_type="sha256")


def credentials(**overrides: Any) -> PartnerCredentials:
    fields: dict[str, Any] = {
        "partner_id": PARTNER_ID,
        "service_url": "https://www.kaltura.com/",
        "admin_secret": SECRET,
        "app_token": TOKEN,
        "session_privileges": "disableentitlement",
    }
    return PartnerCredentials(**{**fields, **overrides})


def test_credentials_are_normalised_and_hide_their_secrets() -> None:
    creds = credentials()
    assert creds.service_url == "https://www.kaltura.com"
    assert creds.app_token is not None and creds.app_token.hash_type == "SHA256"
    assert creds.session_user_id == "kaltura-automations"
    assert creds.effective_session_mode is SessionMode.APP_TOKEN
    assert SECRET not in repr(creds) and "s3cr3t-token-value" not in repr(creds)
    assert "0_abc" in repr(creds)


def test_without_an_app_token_the_ks_is_built_locally() -> None:
    assert credentials(app_token=None).effective_session_mode is SessionMode.LOCAL


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"partner_id": 0}, "partner_id"),
        ({"service_url": "http://www.kaltura.com"}, "service_url"),
        ({"service_url": "https://1.2.3.4"}, "service_url"),
        ({"service_url": "https://www.kaltura.com/api_v3"}, "service_url"),
        ({"service_url": "https://user:pw@www.kaltura.com"}, "service_url"),
        ({"service_url": "www.kaltura.com"}, "service_url"),
        ({"app_token": None, "admin_secret": None}, "admin_secret"),
        ({"session_mode": SessionMode.SESSION_START, "admin_secret": None}, "admin_secret"),
        ({"session_mode": SessionMode.APP_TOKEN, "app_token": None}, "app_token"),
        ({"reports_service_url": "https://reports.example.com"}, "reports_service_url"),
    ],
)
def test_invalid_credentials_name_the_setting(overrides: dict[str, Any], setting: str) -> None:
    with pytest.raises(KalturaConfigurationError) as caught:
        credentials(**overrides)
    assert caught.value.setting == setting
    assert isinstance(caught.value, ConfigError)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("token", "setting"),
    [
        ({"id": "0_abc", "token": "t", "hash_type": "SHA384"}, "app_token.hash_type"),
        ({"id": "", "token": "t"}, "app_token"),
    ],
)
def test_invalid_app_tokens_name_the_setting(token: dict[str, str], setting: str) -> None:
    with pytest.raises(KalturaConfigurationError) as caught:
        AppToken(**token)
    assert caught.value.setting == setting


def test_loopback_http_is_accepted_for_the_local_stack() -> None:
    creds = PartnerCredentials(partner_id=PARTNER_ID, service_url="http://127.0.0.1:8123", admin_secret=SECRET)
    assert creds.service_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"report_concurrency": 32}, "pool_size"),
        ({"report_page_size": 12_001}, "report_page_size"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"backoff_base": 2.0, "backoff_max": 1.0}, "backoff"),
        ({"ks_refresh_fraction": 1.5}, "ks_refresh_fraction"),
    ],
)
def test_invalid_settings_name_the_setting(settings: dict[str, Any], name: str) -> None:
    with pytest.raises(KalturaConfigurationError) as caught:
        ClientSettings(**settings)
    assert name in caught.value.setting


def test_clients_are_cached_per_partner_and_rebuilt_when_credentials_change() -> None:
    client = get_client(credentials())
    assert get_client(credentials()) is client
    assert get_client(credentials(partner_id=7)) is not client
    rotated = credentials(admin_secret="f" * 32)
    assert get_client(rotated) is not client
    assert client.transport.http is get_client(rotated).transport.http  # one pooled session per process
    clear_client_cache()
    assert get_client(credentials()) is not client
