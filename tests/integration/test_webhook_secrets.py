"""Secrets Manager and SQS adapters against moto in server mode."""

from __future__ import annotations

import json

import boto3
import pytest
from kauto.aws.queue import SqsEventQueue
from kauto.aws.secrets import CachedSecret, fetch_secret_string
from kauto.config import parse_partner_secrets, partner_directory
from kauto.errors import ConfigError, QueueUnavailableError
from kauto.models import BodyFormat, EventKind, KalturaEvent

pytestmark = pytest.mark.integration

DOCUMENT = {
    "partners": {
        "1234567": {
            "admin_secret": "0123456789abcdef0123456789abcdef",
            "webhook_hash_algorithms": ["sha256"],
            "service_url": "https://www.kaltura.com",
        }
    }
}


def test_partner_secret_is_fetched_by_arn_and_validated(moto_aws: str) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="kaltura/partners", SecretString=json.dumps(DOCUMENT))[
        "ARN"
    ]

    partner = partner_directory(arn).get(1234567)

    assert partner is not None and partner.webhook_hash_algorithms == ("sha256",)


def test_partner_added_to_the_secret_is_found_on_the_next_allowed_refresh(moto_aws: str) -> None:
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="kaltura/partners", SecretString=json.dumps(DOCUMENT))["ARN"]
    now = [0.0]
    cached = CachedSecret(arn, parse_partner_secrets, min_refresh_interval_seconds=30, clock=lambda: now[0])
    assert 7654321 not in cached.get().partners

    secrets.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({"partners": {**DOCUMENT["partners"], "7654321": DOCUMENT["partners"]["1234567"]}}),
    )
    assert 7654321 not in cached.refresh().partners  # refreshed too recently: served from cache
    now[0] = 30.0

    assert 7654321 in cached.refresh().partners


def test_secret_that_does_not_exist_is_a_configuration_error(moto_aws: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/none-AbCdEf"

    with pytest.raises(ConfigError, match="ResourceNotFoundException") as error:
        fetch_secret_string(arn)
    assert error.value.setting == arn


def test_queue_adapter_sends_the_event_json(moto_aws: str) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="events")["QueueUrl"]
    event = KalturaEvent(
        kind=EventKind.ENTRY_READY,
        partner_id=1,
        dedupe_key="1:job:2",
        job_id=2,
        template_id=None,
        template_system_name=None,
        event_type=3,
        event_object_type=1,
        object_type="KalturaMediaEntry",
        object_id="1_a",
        entry_id="1_a",
        status="2",
        fields={"id": "1_a"},
        body_format=BodyFormat.OBJECT_JSON,
        received_at=1,
    )

    message_id = SqsEventQueue(url).send(event)

    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert message["MessageId"] == message_id
    assert KalturaEvent.from_json(message["Body"]) == event

    with pytest.raises(QueueUnavailableError):
        SqsEventQueue(url.replace("/events", "/missing")).send(event)
