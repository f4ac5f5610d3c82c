"""The digest's read adapter: a missing object is None (also as the 403 S3 sends without ListBucket), other S3
failures are typed, objects stream in chunks, and the ledger scan pages through a prefix and skips expired rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from helpers import create_ledger_table
from kauto.aws.ledger import DynamoLedger
from kauto.aws.object_store import ReportStoreError
from kauto.weekly.digest_sources import AwsDigestSources
from moto import mock_aws

NOW = 1_736_150_400.0


class RefusingS3:
    def __init__(self, code: str) -> None:
        self.code = code

    def get_object(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "GetObject")


@pytest.mark.parametrize("code", ["NoSuchKey", "AccessDenied"])
def test_a_missing_object_is_none(code: str) -> None:
    sources = AwsDigestSources(RefusingS3(code), "bucket", None, "table")

    assert sources.get_object("weekly/partner_id=1/week=2025-W01/digest.json") is None


def test_other_s3_failures_are_typed() -> None:
    sources = AwsDigestSources(RefusingS3("SlowDown"), "bucket", None, "table")

    with pytest.raises(ReportStoreError) as error:
        sources.get_object("weekly/x.json")
    assert error.value.code == "SlowDown"
    with pytest.raises(ReportStoreError):
        list(sources.stream_object("weekly/x.csv"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bucket")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(dynamodb, "ledger")
        yield s3, dynamodb


def test_objects_stream_whole_in_order(aws: tuple[Any, Any]) -> None:
    s3, dynamodb = aws
    body = b"a,b\r\n" + b"1,2\r\n" * 50_000
    s3.put_object(Bucket="bucket", Key="weekly/r.csv", Body=body)
    sources = AwsDigestSources(s3, "bucket", dynamodb, "ledger")

    assert b"".join(sources.stream_object("weekly/r.csv")) == body
    assert sources.get_object("weekly/r.csv") == body
    assert sources.get_object("weekly/none.json") is None


def test_the_ledger_scan_pages_through_one_prefix_and_skips_expired_rows(aws: tuple[Any, Any]) -> None:
    _, dynamodb = aws
    ledger = DynamoLedger(dynamodb, "ledger", clock=lambda: NOW)
    padding = "x" * 3000  # makes the scan span several pages
    for index in range(600):
        ledger.put(f"caption#1234567#1_e{index:04d}", "item#1", {"ordered_at": 1, "padding": padding})
    ledger.put("caption#12345678#1_other", "item#1", {"ordered_at": 1})
    expired = DynamoLedger(dynamodb, "ledger", clock=lambda: NOW - 20)
    expired.put("caption#1234567#1_gone", "item#1", {"ordered_at": 1}, ttl_seconds=10)
    sources = AwsDigestSources(None, "bucket", dynamodb, "ledger", clock=lambda: NOW)

    found = list(sources.scan_ledger("caption#1234567#"))

    assert len(found) == 600
    assert {item["pk"] for item in found} == {f"caption#1234567#1_e{index:04d}" for index in range(600)}
