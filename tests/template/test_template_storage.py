"""The reports bucket is private, encrypted and TLS-only; the tables expire rows and the ledger can be restored."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def bucket(resources: dict[str, Any]) -> dict[str, Any]:
    assert resources["ReportsBucket"]["Type"] == "AWS::S3::Bucket"
    return resources["ReportsBucket"]["Properties"]


def test_reports_bucket_blocks_every_kind_of_public_access(bucket: dict[str, Any]) -> None:
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_reports_bucket_encrypts_objects_by_default(bucket: dict[str, Any]) -> None:
    rules = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert [rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules] in (["AES256"], ["aws:kms"])


def test_reports_bucket_disables_acls(bucket: dict[str, Any]) -> None:
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_reports_bucket_aborts_incomplete_multipart_uploads(bucket: dict[str, Any]) -> None:
    # A streaming CSV upload cut short by a Lambda timeout leaves billed parts behind unless they are aborted.
    rules = bucket["LifecycleConfiguration"]["Rules"]
    aborts = [rule for rule in rules if rule["Status"] == "Enabled" and "AbortIncompleteMultipartUpload" in rule]

    assert len(aborts) == 1
    assert aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7
    assert "Prefix" not in aborts[0]
    assert "Filter" not in aborts[0]


def test_reports_bucket_versions_expire_so_overwrites_do_not_accumulate(bucket: dict[str, Any]) -> None:
    bucket_wide = [
        rule
        for rule in bucket["LifecycleConfiguration"]["Rules"]
        if rule["Status"] == "Enabled" and "NoncurrentVersionExpiration" in rule and "Prefix" not in rule
    ]

    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert len(bucket_wide) == 1


def test_reports_bucket_expires_abandoned_writer_checkpoints(bucket: dict[str, Any]) -> None:
    # The streaming writer parks resumable state under _checkpoints/; a run that never resumes leaves it behind.
    rules = [
        rule
        for rule in bucket["LifecycleConfiguration"]["Rules"]
        if rule["Status"] == "Enabled" and rule.get("Prefix") == "_checkpoints/"
    ]

    assert len(rules) == 1
    assert 1 <= rules[0]["ExpirationInDays"] <= 7
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 7


def test_reports_bucket_policy_denies_plain_http_to_the_bucket_and_its_objects(resources: dict[str, Any]) -> None:
    policies = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": "ReportsBucket"}
    ]
    assert len(policies) == 1
    tls_denials = [
        statement
        for statement in policies[0]["Statement"]
        if statement["Effect"] == "Deny"
        and str(statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]

    assert len(tls_denials) == 1
    denial = tls_denials[0]
    assert denial["Principal"] == "*"
    assert denial["Action"] in ("s3:*", ["s3:*"])
    assert sorted(denial["Resource"], key=str) == sorted(
        [{"Fn::GetAtt": ["ReportsBucket", "Arn"]}, {"Fn::Sub": "${ReportsBucket.Arn}/*"}], key=str
    )


@pytest.mark.parametrize(
    ("table_id", "key_schema"),
    [
        ("DedupeTable", [("pk", "HASH", "S")]),
        ("LedgerTable", [("pk", "HASH", "S"), ("sk", "RANGE", "S")]),
    ],
)
def test_table_keys_billing_encryption_and_ttl(
    resources: dict[str, Any], table_id: str, key_schema: list[tuple[str, str, str]]
) -> None:
    table = resources[table_id]["Properties"]
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}

    assert [(k["AttributeName"], k["KeyType"], attribute_types[k["AttributeName"]]) for k in table["KeySchema"]] == (
        key_schema
    )
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_ledger_has_point_in_time_recovery_and_survives_stack_deletion(resources: dict[str, Any]) -> None:
    ledger = resources["LedgerTable"]

    assert ledger["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert (ledger["DeletionPolicy"], ledger["UpdateReplacePolicy"]) == ("Retain", "Retain")
