"""The AWS half of the local stack: moto in server mode with the resources of template.yaml.

The template is translated with the SAM translator and created in moto's CloudFormation, so queues (with their redrive
policies), tables, bucket, topic, roles and the functions with their resolved environments exist exactly as deployed.
The local runner reads each function's handler and environment and each SQS event source mapping back from moto and
runs the real handler code in this process with that environment. moto does not create the HTTP API or schedules: the
local HTTP endpoint and the on-demand schedule trigger stand in for them. Its CloudFormation also skips the functions'
EventInvokeConfig, the CloudWatch alarms and the schedules: they are created here through the Lambda, CloudWatch and
Scheduler APIs from the translated template, as CloudFormation would, for the local asynchronous invoke, the alarm
evaluation and ``make smoke`` to read back (nothing fires the schedules: the on-demand trigger does).
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from kauto_local.alarms import evaluate_alarms
from kauto_local.schedules import create_schedules
from moto.server import ThreadedMotoServer
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
REGION = "us-east-1"
STACK_NAME = "kauto-local"
ARTIFACTS_BUCKET = "kauto-local-artifacts"
PARTNER_SECRET_NAME = "kauto-local/partners"  # noqa: S105 - a name, not a secret

# Fake credentials for moto; never real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass(frozen=True, slots=True)
class LocalFunction:
    """A function of the template as moto created it, plus where its code lives in this repo."""

    logical_id: str
    physical_name: str
    code_dir: Path
    handler: str
    timeout: int
    environment: Mapping[str, str]
    arn: str = ""


@dataclass(frozen=True, slots=True)
class QueueEventSource:
    """An SQS event source mapping read back from moto (what Lambda's poller would do)."""

    function: LocalFunction
    queue_arn: str
    queue_url: str
    batch_size: int
    report_batch_item_failures: bool
    visibility_timeout: int
    max_receive_count: int | None
    dead_letter_queue_url: str | None


@dataclass(slots=True)
class LocalAwsStack:
    """moto server mode running the stack of template.yaml; use as a context manager."""

    partner_secrets: Mapping[str, Any]
    parameters: Mapping[str, str] = field(default_factory=dict)
    template_path: Path = TEMPLATE_PATH
    endpoint_url: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    queue_sources: list[QueueEventSource] = field(default_factory=list)
    partner_secrets_arn: str = ""
    alarms: dict[str, str] = field(default_factory=dict)
    """Logical id -> name of the alarms created in moto."""
    _server: ThreadedMotoServer | None = None
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def __enter__(self) -> LocalAwsStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start moto on a free loopback port, point boto3 at it and create the stack."""
        _quiet_moto()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._set_env({**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint_url})
        self._deploy()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url)

    def function_for_queue(self, queue_output: str) -> QueueEventSource:
        """The event source that consumes the queue named by a stack output (e.g. ``EventsQueueUrl``)."""
        # Compare names: the output holds the queue's AWS-style URL, moto's mapping the endpoint-style one.
        name = self.outputs[queue_output].rsplit("/", 1)[-1]
        for source in self.queue_sources:
            if source.queue_url.rsplit("/", 1)[-1] == name:
                return source
        raise KeyError(f"no function consumes {queue_output}")

    def pass_queue_time(self, seconds: float) -> int:
        """Let ``seconds`` of SQS time pass for delayed messages (``DelaySeconds``) of every queue; returns how many
        became visible. moto runs in this process and counts delays on the wall clock, with no API to move it: the
        demo and the tests move the simulator's clock, and this moves the queues' along (nobody waits a minute)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        released = 0
        for queue in sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues.values():
            for message in queue._messages:
                if message.delayed:
                    message.delayed_until -= seconds * 1000  # moto keeps it in milliseconds
                    released += 0 if message.delayed else 1
        return released

    def observe_alerts(self, queue_name: str) -> str:
        """Subscribe a new SQS queue to the alerts topic (raw delivery) and return its URL: what the alerts say."""
        sqs = self.client("sqs")
        queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.client("sns").subscribe(
            TopicArn=self.outputs["AlertsTopicArn"],
            Protocol="sqs",
            Endpoint=attributes["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        return str(queue_url)

    @contextmanager
    def function_environment(self, function: LocalFunction) -> Iterator[None]:
        """Run code with exactly the environment moto resolved for the function (plus the moto endpoint)."""
        saved = {name: os.environ.get(name) for name in function.environment}
        os.environ.update(function.environment)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _set_env(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _deploy(self) -> None:
        secrets = self.client("secretsmanager")
        self.partner_secrets_arn = secrets.create_secret(
            Name=PARTNER_SECRET_NAME, SecretString=json.dumps(self.partner_secrets)
        )["ARN"]
        template = load_template(self.template_path)
        code_dirs = {
            logical_id: REPO_ROOT / resource["Properties"]["CodeUri"]
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        parameters = {"PartnerSecretsArn": self.partner_secrets_arn, **self.parameters}
        translated = translate_template(template, parameters)
        _stub_code(translated)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="layer.zip", Body=_empty_layer_zip())
        cloudformation = self.client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"local stack not created: {stack['StackStatus']} {stack.get('StackStatusReason')}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
        physical_ids = {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries}
        self._enable_ttl(template, physical_ids)
        self._read_functions(code_dirs, physical_ids)
        self._read_queue_sources()
        resolver = _Resolver(self, physical_ids)
        self._create_event_invoke_configs(translated, resolver)
        self._create_alarms(translated, resolver)
        create_schedules(translated, parameters, physical_ids, self.client, stack_name=STACK_NAME, region=REGION)

    def _create_event_invoke_configs(self, translated: Mapping[str, Any], resolver: _Resolver) -> None:
        # moto's CloudFormation skips AWS::Lambda::EventInvokeConfig; create each through the Lambda API as
        # CloudFormation would, so the local asynchronous invoke reads the template's settings back from moto.
        lambda_client = self.client("lambda")
        for resource in translated["Resources"].values():
            if resource["Type"] != "AWS::Lambda::EventInvokeConfig":
                continue
            properties = resolver.resolve(resource["Properties"])
            config = {
                key: properties[key]
                for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
                if key in properties
            }
            lambda_client.put_function_event_invoke_config(FunctionName=properties["FunctionName"], **config)

    def _create_alarms(self, translated: Mapping[str, Any], resolver: _Resolver) -> None:
        # moto's CloudFormation skips AWS::CloudWatch::Alarm too. Alarms on resources moto does not create (the HTTP
        # API) cannot be resolved and are left out; kauto_local.alarms evaluates them.
        cloudwatch = self.client("cloudwatch")
        for logical_id, resource in translated["Resources"].items():
            if resource["Type"] != "AWS::CloudWatch::Alarm":
                continue
            try:
                properties = resolver.resolve(resource["Properties"])
            except UnresolvableError:
                continue
            name = properties.pop("AlarmName", f"{STACK_NAME}-{logical_id}")
            cloudwatch.put_metric_alarm(AlarmName=name, **properties)
            # A new alarm starts with insufficient data, as in CloudWatch (moto starts it OK).
            cloudwatch.set_alarm_state(
                AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation"
            )
            self.alarms[logical_id] = name
        # CloudWatch evaluates a new alarm within a minute; here right away (before anyone observes the topic).
        evaluate_alarms(self)

    def _enable_ttl(self, template: Mapping[str, Any], physical_ids: Mapping[str, str]) -> None:
        # moto's CloudFormation ignores TimeToLiveSpecification; apply it so the tables match the template.
        dynamodb = self.client("dynamodb")
        for logical_id, resource in template["Resources"].items():
            ttl = resource.get("Properties", {}).get("TimeToLiveSpecification")
            if resource["Type"] == "AWS::DynamoDB::Table" and ttl and ttl.get("Enabled"):
                dynamodb.update_time_to_live(
                    TableName=physical_ids[logical_id],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )

    def _read_functions(self, code_dirs: Mapping[str, Path], physical_ids: Mapping[str, str]) -> None:
        lambda_client = self.client("lambda")
        for logical_id, code_dir in code_dirs.items():
            config = lambda_client.get_function(FunctionName=physical_ids[logical_id])["Configuration"]
            self.functions[logical_id] = LocalFunction(
                logical_id=logical_id,
                physical_name=config["FunctionName"],
                code_dir=code_dir,
                handler=config["Handler"],
                timeout=int(config["Timeout"]),
                environment=dict(config.get("Environment", {}).get("Variables", {})),
                arn=config["FunctionArn"],
            )

    def _read_queue_sources(self) -> None:
        lambda_client = self.client("lambda")
        sqs = self.client("sqs")
        by_name = {f.physical_name: f for f in self.functions.values()}
        for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
            if ":sqs:" not in mapping["EventSourceArn"]:
                continue
            # moto would "invoke" the function itself (through Docker) on every SendMessage and hide the messages
            # for a visibility timeout; the local poller stands in for Lambda's SQS poller instead.
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            function = by_name[mapping["FunctionArn"].rsplit(":", 1)[-1]]
            queue_name = mapping["EventSourceArn"].rsplit(":", 1)[-1]
            queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attributes.get("RedrivePolicy", "null"))
            dlq_url = None
            if redrive:
                dlq_url = sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[-1])["QueueUrl"]
            self.queue_sources.append(
                QueueEventSource(
                    function=function,
                    queue_arn=mapping["EventSourceArn"],
                    queue_url=queue_url,
                    batch_size=int(mapping.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
                    visibility_timeout=int(attributes["VisibilityTimeout"]),
                    max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
                    dead_letter_queue_url=dlq_url,
                )
            )


class UnresolvableError(Exception):
    """An intrinsic function names something moto's CloudFormation did not create."""


class _Resolver:
    """Resolves ``Ref`` and ``Fn::GetAtt`` of the resources moto created (queues, topics, functions)."""

    def __init__(self, stack: LocalAwsStack, physical_ids: Mapping[str, str]) -> None:
        self._stack = stack
        self._physical_ids = physical_ids

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._physical_id(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self._attribute(logical_id, attribute)
        if any(key.startswith("Fn::") for key in value):
            raise UnresolvableError(json.dumps(value))
        return {key: self.resolve(item) for key, item in value.items()}

    def _physical_id(self, logical_id: str) -> str:
        physical_id = self._physical_ids.get(logical_id)
        if not physical_id:
            raise UnresolvableError(logical_id)
        return physical_id

    def _attribute(self, logical_id: str, attribute: str) -> str:
        physical_id = self._physical_id(logical_id)
        if attribute == "QueueName":
            return physical_id.rsplit("/", 1)[-1]
        if attribute == "Arn" and physical_id.startswith("http"):
            attributes = self._stack.client("sqs").get_queue_attributes(
                QueueUrl=physical_id, AttributeNames=["QueueArn"]
            )["Attributes"]
            return str(attributes["QueueArn"])
        raise UnresolvableError(f"{logical_id}.{attribute}")


def _quiet_moto() -> None:
    # moto skips, with a warning each, what its CloudFormation does not implement (HTTP API, bucket policy, alarms,
    # schedules): the local runner stands in for those. The request log of its server is noise here too.
    warnings.filterwarnings("ignore", message="Tried to parse AWS.* not supported by moto")
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml as plain dicts, short-form intrinsics (!Ref, !Sub ...) turned into their long form."""
    decoded = cfn_yaml.loads(path.read_text(encoding="utf-8"))
    return json.loads(json.dumps(decoded))


def translate_template(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """Apply the SAM transform offline: artifacts get s3:// placeholders (the code runs from this repo instead)."""
    sam_template = json.loads(json.dumps(template))
    for resource in sam_template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = f"s3://{ARTIFACTS_BUCKET}/artifact.zip"
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=boto3.Session(region_name=REGION))
    translated: dict[str, Any] = translator.translate(sam_template=sam_template, parameter_values=dict(parameters))
    return translated


def _stub_code(translated: Mapping[str, Any]) -> None:
    for resource in translated["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            # The real handler runs in-process from the repo; moto only needs something to store.
            resource["Properties"]["Code"] = {"ZipFile": "def lambda_handler(event, context):\n    return None\n"}
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            resource["Properties"]["Content"] = {"S3Bucket": ARTIFACTS_BUCKET, "S3Key": "layer.zip"}


def _empty_layer_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/kauto/__init__.py", "")
    return buffer.getvalue()
