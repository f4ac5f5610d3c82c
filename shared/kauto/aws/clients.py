"""Lazily created, cached boto3 clients with explicit timeouts and bounded retries.

Clients are built on first use (never at import time, so tests can point them at moto first) and reused across warm
invocations. ``AWS_ENDPOINT_URL`` (honoured by botocore) redirects every client, which is how tests reach moto.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3
from botocore.config import Config

# Per service: (connect timeout s, read timeout s, total attempts including the first). SQS, DynamoDB and Secrets
# Manager answer in milliseconds when healthy, so a stalled call is cut after 3 x (1 s + 2 s) plus backoff instead
# of outliving the webhook's 10 s timeout several times over. S3 transfers get a longer read timeout for big parts.
_TIMEOUTS: dict[str, tuple[float, float, int]] = {
    "sqs": (1.0, 2.0, 3),
    "dynamodb": (1.0, 2.0, 3),
    "secretsmanager": (1.0, 2.0, 3),
    "sns": (2.0, 5.0, 3),
    "s3": (2.0, 30.0, 3),
    "ssm": (2.0, 5.0, 3),
}
_DEFAULT_TIMEOUTS = (2.0, 10.0, 3)

# boto3 sessions are not thread-safe while creating clients; created clients are.
_creation_lock = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def client_config(service_name: str) -> Config:
    """The botocore ``Config`` used for ``service_name``: connect/read timeouts and standard-mode bounded retries."""
    connect_timeout, read_timeout, max_attempts = _TIMEOUTS.get(service_name, _DEFAULT_TIMEOUTS)
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        tcp_keepalive=True,
    )


@functools.cache
def aws_client(service_name: str) -> Any:
    """Return the shared low-level client for ``service_name`` (created on first call, then reused)."""
    with _creation_lock:
        return _session().client(service_name, config=client_config(service_name))


def sqs_client() -> Any:
    """The shared SQS client."""
    return aws_client("sqs")


def dynamodb_client() -> Any:
    """The shared DynamoDB (low-level) client."""
    return aws_client("dynamodb")


def secretsmanager_client() -> Any:
    """The shared Secrets Manager client."""
    return aws_client("secretsmanager")


def s3_client() -> Any:
    """The shared S3 client."""
    return aws_client("s3")


def sns_client() -> Any:
    """The shared SNS client."""
    return aws_client("sns")


def ssm_client() -> Any:
    """The shared SSM (Parameter Store) client."""
    return aws_client("ssm")
