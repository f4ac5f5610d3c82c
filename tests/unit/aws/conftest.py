"""moto (in-process) fixtures for the output adapter tests: a bucket, the ledger table and the alerts topic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_support import BUCKET, LEDGER_TABLE, REGION, FakeClock
from helpers import create_ledger_table
from moto import mock_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto for the test; boto3 must not be redirected to a moto server started by another test."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    """An S3 client with the reports bucket created."""
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def dynamodb(aws: None) -> Any:
    """A DynamoDB client with the ledger table (keys pk + sk, TTL expires_at) as template.yaml defines it."""
    client = boto3.client("dynamodb", region_name=REGION)
    create_ledger_table(client, LEDGER_TABLE)
    return client


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at 2025-01-03T10:26:40Z."""
    return FakeClock()
