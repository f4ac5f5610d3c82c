"""The translated template creates a working stack in moto's CloudFormation, as the local stack builds it.

This is what keeps template.yaml usable by the local runner and the integration tests: intrinsics moto resolves
differently from AWS (a Number parameter used as a mapping key, for one) would otherwise break only there.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

ARTIFACTS_BUCKET = "template-tests-artifacts"
# moto skips, with this warning, what its CloudFormation does not implement (the HTTP API, the bucket policy, the
# alarm, the schedule); the local runner stands in for the HTTP API and the schedule.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.* not supported by moto:UserWarning")


@pytest.fixture
def stack(translated: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Create the stack in moto (in process, no network) and return its outputs and physical resource ids."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for resource in translated["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["Code"] = {"ZipFile": "def lambda_handler(event, context):\n    return None\n"}
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            resource["Properties"]["Content"] = {"S3Bucket": ARTIFACTS_BUCKET, "S3Key": "layer.zip"}

    with mock_aws():
        layer_zip = io.BytesIO()
        with zipfile.ZipFile(layer_zip, "w") as archive:
            archive.writestr("python/kauto/__init__.py", "")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="layer.zip", Body=layer_zip.getvalue())
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(
            StackName="kauto",
            TemplateBody=json.dumps(translated),
            Parameters=[
                {
                    "ParameterKey": "PartnerSecretsArn",
                    "ParameterValue": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners-AbCdEf",
                }
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        description = cloudformation.describe_stacks(StackName="kauto")["Stacks"][0]
        summaries = cloudformation.list_stack_resources(StackName="kauto")["StackResourceSummaries"]
        yield {
            "status": description["StackStatus"],
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]},
            "physical_ids": {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries},
        }


def test_stack_creates_the_queues_with_the_redrive_and_visibility_of_the_template(stack: dict[str, Any]) -> None:
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=stack["outputs"]["EventsQueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=stack["outputs"]["EventsDeadLetterQueueUrl"], AttributeNames=["All"])

    assert stack["status"] == "CREATE_COMPLETE"
    assert queue["VisibilityTimeout"] == "750"  # 6 x the default WorkerTimeoutSeconds (120) + 30 s
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["Attributes"]["QueueArn"],
        "maxReceiveCount": 5,
    }
    assert dlq["Attributes"]["MessageRetentionPeriod"] == "1209600"


def test_stack_gives_the_webhook_its_resolved_environment(stack: dict[str, Any]) -> None:
    function = boto3.client("lambda").get_function(FunctionName=stack["physical_ids"]["WebhookFunction"])
    variables = function["Configuration"]["Environment"]["Variables"]

    assert variables == {
        "EVENTS_QUEUE_URL": stack["outputs"]["EventsQueueUrl"],
        "DEDUPE_TABLE": stack["outputs"]["DedupeTableName"],
        "PARTNER_SECRETS_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners-AbCdEf",
        "POWERTOOLS_SERVICE_NAME": "kaltura-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "KalturaAutomations",
        "LOG_LEVEL": "INFO",
    }
    assert function["Configuration"]["Handler"] == "app.lambda_handler"


def test_stack_creates_the_tables_bucket_and_topic(stack: dict[str, Any]) -> None:
    outputs = stack["outputs"]
    dynamodb = boto3.client("dynamodb")
    ledger = dynamodb.describe_table(TableName=outputs["LedgerTableName"])["Table"]

    assert dynamodb.describe_table(TableName=outputs["DedupeTableName"])["Table"]["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"}
    ]
    assert ledger["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    boto3.client("s3").head_bucket(Bucket=outputs["ReportsBucketName"])
    assert boto3.client("sns").get_topic_attributes(TopicArn=outputs["AlertsTopicArn"])["Attributes"]


@pytest.mark.parametrize(
    ("automation_id", "service"), [("WorkerFunction", "kaltura-worker"), ("SweepFunction", "kaltura-sweep")]
)
def test_stack_gives_the_automations_their_resolved_environment(
    stack: dict[str, Any], automation_id: str, service: str
) -> None:
    outputs = stack["outputs"]
    function = boto3.client("lambda").get_function(FunctionName=stack["physical_ids"][automation_id])
    variables = function["Configuration"]["Environment"]["Variables"]

    assert variables == {
        "EVENTS_QUEUE_URL": outputs["EventsQueueUrl"],
        "LEDGER_TABLE": outputs["LedgerTableName"],
        "REPORTS_BUCKET": outputs["ReportsBucketName"],
        "ALERTS_TOPIC_ARN": outputs["AlertsTopicArn"],
        "PARTNER_SECRETS_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners-AbCdEf",
        "AUTOMATION_CONFIG_PARAMETER": "/kauto/automation-config",
        "WORKER_TIMEOUT_SECONDS": "120",
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": "KalturaAutomations",
        "LOG_LEVEL": "INFO",
    }


def test_stack_creates_the_automation_config_parameter_with_the_empty_override(stack: dict[str, Any]) -> None:
    parameter = boto3.client("ssm").get_parameter(Name=stack["outputs"]["AutomationConfigParameterName"])

    assert parameter["Parameter"]["Name"] == "/kauto/automation-config"
    assert parameter["Parameter"]["Value"] == "{}"


def test_stack_connects_the_worker_to_the_events_queue_with_partial_batch_responses(stack: dict[str, Any]) -> None:
    lambda_client = boto3.client("lambda")
    worker_arn = lambda_client.get_function(FunctionName=stack["physical_ids"]["WorkerFunction"])["Configuration"][
        "FunctionArn"
    ]
    queue_arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack["outputs"]["EventsQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    (mapping,) = [
        m for m in lambda_client.list_event_source_mappings()["EventSourceMappings"] if m["FunctionArn"] == worker_arn
    ]

    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
