"""Cached boto3 client factories: explicit timeouts, bounded retries, built lazily and reused."""

from __future__ import annotations

import pytest
from kauto.aws import clients


@pytest.mark.parametrize("service", ["sqs", "dynamodb", "secretsmanager", "sns", "s3", "scheduler"])
def test_every_client_has_timeouts_and_bounded_standard_retries(service: str) -> None:
    config = clients.client_config(service)

    assert 0 < config.connect_timeout <= 5
    assert 0 < config.read_timeout <= 30
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_clients_are_created_on_first_use_and_reused() -> None:
    assert clients.aws_client.cache_info().currsize == 0  # nothing built at import time

    first = clients.sqs_client()

    assert clients.sqs_client() is first
    assert first.meta.config.read_timeout == 2.0
    assert first.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert clients.aws_client.cache_info().currsize == 1


def test_clients_follow_the_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

    assert clients.dynamodb_client().meta.endpoint_url == "http://127.0.0.1:4566"
