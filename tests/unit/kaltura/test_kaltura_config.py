"""Credentials from the partner secret, settings validation, and the per-partner client cache."""

from __future__ import annotations

from typing import Any

import pytest
from kaltura_fakes import PARTNER_ID, SECRET
from kauto.kaltura import (
    AppToken,
    ClientSettings,
    KalturaConfigurationError,
    PartnerCredentials,
    SessionMode,
    clear_client_cache,
    get_client,
)

ENTRY: dict[str, Any] = {
    "admin_secret": SECRET,
    "previous_admin_secret": "old",
    "webhook_hash_algorithms": ["sha256"],
    "service_url": "https://www.kaltura.com/",
    "app_token": {"id": "0_abc", "token": "s3cr3t-token-value", "hash_type": "sha256"},
    "session_user_id": "kaltura-automations",
    "session_privileges": "disableentitlement",
}


def test_credentials_are_built_from_the_partner_secret() -> None:
    creds = PartnerCredentials.from_secret(PARTNER_ID, ENTRY)
    assert creds.partner_id == PARTNER_ID
    assert creds.service_url == "https://www.kaltura.com"
    assert creds.app_token == AppToken(id="0_abc", token="s3cr3t-token-value", hash_type="SHA256")
    assert creds.session_privileges == "disableentitlement"
    assert creds.effective_session_mode is SessionMode.APP_TOKEN
    assert SECRET not in repr(creds) and "s3cr3t-token-value" not in repr(creds)


def test_without_an_app_token_the_ks_is_built_locally() -> None:
    entry = {k: v for k, v in ENTRY.items() if k != "app_token"}
    assert PartnerCredentials.from_secret(PARTNER_ID, entry).effective_session_mode is SessionMode.LOCAL


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"service_url": None}, "partners.1234567.service_url"),
        ({"service_url": "http://www.kaltura.com"}, "partners.1234567.service_url"),
        ({"service_url": "https://1.2.3.4"}, "partners.1234567.service_url"),
        ({"service_url": "https://www.kaltura.com/api_v3"}, "partners.1234567.service_url"),
        ({"service_url": "https://user:pw@www.kaltura.com"}, "partners.1234567.service_url"),
        ({"app_token": {"id": "0_abc", "token": "t", "hash_type": "SHA384"}}, "partners.1234567.app_token.hash_type"),
        ({"app_token": {"id": "", "token": "t"}}, "partners.1234567.app_token"),
        ({"app_token": None, "admin_secret": None}, "partners.1234567.admin_secret"),
        ({"session_mode": "magic"}, "partners.1234567.session_mode"),
        ({"session_mode": "session_start", "admin_secret": None}, "partners.1234567.admin_secret"),
        ({"session_privileges": 5}, "partners.1234567.session_privileges"),
    ],
)
def test_invalid_secrets_name_the_setting(change: dict[str, Any], setting: str) -> None:
    entry = {**ENTRY, **change}
    with pytest.raises(KalturaConfigurationError, match=setting.replace(".", r"\.")) as caught:
        PartnerCredentials.from_secret(PARTNER_ID, {k: v for k, v in entry.items() if v is not None})
    assert SECRET not in str(caught.value)


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
    with pytest.raises(KalturaConfigurationError, match=name):
        ClientSettings(**settings)


def test_clients_are_cached_per_partner_and_rebuilt_when_credentials_change() -> None:
    creds = PartnerCredentials.from_secret(PARTNER_ID, ENTRY)
    client = get_client(creds)
    assert get_client(PartnerCredentials.from_secret(PARTNER_ID, ENTRY)) is client
    assert get_client(PartnerCredentials.from_secret(7, ENTRY)) is not client
    rotated = PartnerCredentials.from_secret(PARTNER_ID, {**ENTRY, "admin_secret": "f" * 32})
    assert get_client(rotated) is not client
    assert client.transport.http is get_client(rotated).transport.http  # one pooled session per process
    clear_client_cache()
    assert get_client(creds) is not client
