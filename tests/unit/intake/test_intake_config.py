"""Settings and the partner secret document: validation naming the setting, caching and rate-limited refresh."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.aws.secrets import CachedSecret
from kauto.config import PartnerDirectory, PartnerSecrets, WebhookSettings, parse_partner_secrets
from kauto.errors import ConfigError, SecretUnavailableError

SECRET = "0123456789abcdef0123456789abcdef"


def document(**partner: Any) -> str:
    base = {"admin_secret": SECRET, "webhook_hash_algorithms": ["sha256"], "service_url": "https://www.kaltura.com"}
    return json.dumps({"partners": {"1234567": {**base, **partner}}})


def test_webhook_settings_from_environment() -> None:
    settings = WebhookSettings.from_env(
        {"EVENTS_QUEUE_URL": "https://sqs/q", "DEDUPE_TABLE": "d", "PARTNER_SECRETS_ARN": "arn:s", "OTHER": "x"}
    )

    assert settings == WebhookSettings(events_queue_url="https://sqs/q", dedupe_table="d", partner_secrets_arn="arn:s")


@pytest.mark.parametrize("missing", ["EVENTS_QUEUE_URL", "DEDUPE_TABLE", "PARTNER_SECRETS_ARN"])
def test_missing_setting_is_named(missing: str) -> None:
    env = {"EVENTS_QUEUE_URL": "q", "DEDUPE_TABLE": "d", "PARTNER_SECRETS_ARN": "arn", missing: "  "}

    with pytest.raises(ConfigError) as error:
        WebhookSettings.from_env(env)
    assert error.value.setting == missing


def test_full_partner_document() -> None:
    secrets = parse_partner_secrets(
        document(
            previous_admin_secret="old-secret",
            webhook_hash_algorithms=["sha512", "sha256", "sha256"],
            service_url="http://127.0.0.1:8080/",
            app_token={"id": "0_abc", "token": "tok", "hash_type": "SHA256"},
            session_user_id="kaltura-automations",
            session_privileges="disableentitlement",
            session_mode="app_token",
            reports_service_url="https://reports.nvp1.ovp.kaltura.com/",
        )
    )

    partner = secrets.partners[1234567]
    assert partner.webhook_hash_algorithms == ("sha512", "sha256")
    assert partner.webhook_secrets == (SECRET, "old-secret")
    assert partner.service_url == "http://127.0.0.1:8080"
    assert partner.app_token is not None and partner.app_token.hash_type == "SHA256"
    assert (partner.session_user_id, partner.session_privileges) == ("kaltura-automations", "disableentitlement")
    assert partner.session_mode == "app_token"
    assert partner.reports_service_url == "https://reports.nvp1.ovp.kaltura.com"


def test_optional_settings_default_to_kalturas_defaults() -> None:
    partner = parse_partner_secrets(document(app_token={"id": "0_abc", "token": "tok"})).partners[1234567]

    assert partner.app_token is not None
    assert partner.app_token.hash_type == "SHA1"  # Kaltura's default hashType (docs/kaltura.md#app-tokens)
    assert partner.session_mode == "auto"
    assert partner.reports_service_url is None
    assert partner.previous_admin_secret is None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8125", "http://localhost:8125/", "https://reports.nvp1.ovp.kaltura.com/"]
)
def test_reports_service_url_is_https_or_loopback(url: str) -> None:
    partner = parse_partner_secrets(document(reports_service_url=url)).partners[1234567]

    assert partner.reports_service_url == url.rstrip("/")


def test_secrets_are_hidden_from_repr() -> None:
    partner = parse_partner_secrets(
        document(previous_admin_secret="old-secret", app_token={"id": "0_abc", "token": "tok-value"})
    ).partners[1234567]

    text = repr(partner)
    assert SECRET not in text and "old-secret" not in text and "tok-value" not in text
    assert "0_abc" in text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self, arn: str) -> str:
        assert arn == "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners"
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.texts[min(self.calls, len(self.texts)) - 1]


def cached(fetch: Fetcher, clock: Clock) -> CachedSecret[PartnerSecrets]:
    return CachedSecret(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners",
        parse_partner_secrets,
        ttl_seconds=300,
        min_refresh_interval_seconds=30,
        fetch=fetch,
        clock=clock,
    )


def test_secret_is_fetched_once_per_ttl() -> None:
    fetch, clock = Fetcher(document()), Clock()
    secret = cached(fetch, clock)

    for _ in range(5):
        secret.get()
    clock.now += 299
    secret.get()
    assert fetch.calls == 1

    clock.now += 1
    secret.get()
    assert fetch.calls == 2


def test_invalid_secret_raises_and_is_not_cached() -> None:
    fetch, clock = Fetcher('{"partners": ', document()), Clock()
    secret = cached(fetch, clock)

    with pytest.raises(ConfigError):
        secret.get()
    assert 1234567 in secret.get().partners
    assert fetch.calls == 2


def test_unknown_partner_refreshes_at_most_once_per_interval_and_finds_new_partners() -> None:
    with_new = json.dumps(
        {
            "partners": {
                "1234567": json.loads(document())["partners"]["1234567"],
                "7654321": json.loads(document())["partners"]["1234567"],
            }
        }
    )
    fetch, clock = Fetcher(document(), with_new), Clock()
    directory = PartnerDirectory(cached(fetch, clock))

    assert directory.get(1234567) is not None
    for _ in range(100):  # unknown-partner spam right after a fetch costs nothing
        assert directory.get(999) is None
    assert fetch.calls == 1

    clock.now += 30
    assert directory.get(7654321) is not None  # added to the secret since: found without a redeploy
    for _ in range(100):
        assert directory.get(999) is None
    assert fetch.calls == 2


def test_failed_refreshes_count_against_the_interval_and_the_cached_value_is_kept() -> None:
    fetch, clock = Fetcher(document()), Clock()
    secret = cached(fetch, clock)
    secret.get()
    fetch.error = SecretUnavailableError("secretsmanager", "GetSecretValue", "ThrottlingException")
    clock.now += 30

    with pytest.raises(SecretUnavailableError):
        secret.refresh()
    for _ in range(50):
        assert 1234567 in secret.refresh().partners  # no new attempt within the interval: served from cache
    assert fetch.calls == 2
