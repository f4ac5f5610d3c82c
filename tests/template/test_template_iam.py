"""Least privilege, checked on template.yaml and on the CloudFormation the SAM transform generates from it.

The translated template is what IAM enforces: SAM attaches AWS managed policies to the roles it generates (from an SQS
event source, from ``Tracing``), and those grants are invisible in template.yaml. Every managed policy a role may
still carry is listed below with its statements (copied from AWS), so the checks see what it grants; an unknown one
fails the test until its statements are added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from template_support import effective_function_properties, translate

Template = dict[str, Any]

# AWS managed policies as AWS defines them (policy ARN -> statements), for the checks of the translated template.
MANAGED_POLICY_STATEMENTS: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": ["*"],
        }
    ],
}

# The only Allow statements that may name Resource "*" (by Sid, with exactly these actions), and why.
RESOURCE_STAR_ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "WriteTraces": (
        frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
        "X-Ray has no resource-level permissions: Resource '*' is the only form AWS accepts (Tracing: Active)",
    ),
    "EnableIamPolicies": (
        frozenset({"kms:*"}),
        "AWS's default key policy statement (the account administers the key through IAM); in a key policy "
        "Resource '*' is the key itself",
    ),
    "CloudWatchAlarmsPublish": (
        frozenset({"kms:GenerateDataKey", "kms:Decrypt"}),
        "CloudWatch alarm actions publish to the encrypted alerts topic; in a key policy Resource '*' is the key",
    ),
}
# Wildcard actions: only in the key policy's default statement, which grants the account (not a role or service).
WILDCARD_ACTION_ALLOWED = {"EnableIamPolicies"}

# SAM policy templates and managed policies that grant far more than any function here needs.
FORBIDDEN_SAM_POLICY_TEMPLATES = {
    "S3CrudPolicy",
    "S3WritePolicy",
    "S3FullAccessPolicy",
    "DynamoDBCrudPolicy",
    "DynamoDBWritePolicy",
    "SQSSendMessagePolicy",  # grants sqs:SendMessage*, a wildcard
    "SQSPollerPolicy",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def managed_policy_arn(value: Any) -> str:
    """A ManagedPolicyArns entry as a plain ARN (SAM writes ``Fn::Sub`` with ``${AWS::Partition}``)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        value = value["Fn::Sub"]
    return str(value).replace("${AWS::Partition}", "aws")


def policy_statements(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement in a template: inline function policies, roles, resource and key policies, and
    the statements of the AWS managed policies attached to roles (:data:`MANAGED_POLICY_STATEMENTS`)."""
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list):
            for index, statement in enumerate(statements):
                yield f"{path}.Statement[{index}]", statement
        elif isinstance(statements, dict):
            yield f"{path}.Statement", statements
        for arn in _as_list(node.get("ManagedPolicyArns", [])):
            name = managed_policy_arn(arn)
            if name not in MANAGED_POLICY_STATEMENTS:
                yield f"{path}.ManagedPolicyArns", {"Effect": "Allow", "Action": f"unknown managed policy {name}"}
                continue
            for index, statement in enumerate(MANAGED_POLICY_STATEMENTS[name]):
                yield f"{path}.ManagedPolicyArns[{name}].Statement[{index}]", statement
        for key, value in node.items():
            if key not in ("Statement", "ManagedPolicyArns"):
                yield from policy_statements(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from policy_statements(item, f"{path}[{index}]")


def wildcard_problems(template: Template) -> list[str]:
    """Grants broader than named actions on named resources: `*` in an Allow action, Allow with NotAction, Allow on
    Resource `*`, outside :data:`RESOURCE_STAR_ALLOWED` / :data:`WILDCARD_ACTION_ALLOWED`.

    Deny statements may use wildcards: they take access away (the buckets' TLS-only guardrails deny `s3:*`).
    """
    problems = []
    for where, statement in policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "")
        actions = _as_list(statement.get("Action", []))
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: Allow with NotAction/NotResource")
        for action in actions:
            broad = not isinstance(action, str) or "*" in action or " " in action
            if broad and sid not in WILDCARD_ACTION_ALLOWED:
                problems.append(f"{where}: action {action!r}")
        # Trust policies (sts:AssumeRole) have a Principal and no Resource.
        if "*" in _as_list(statement.get("Resource")):
            allowed = RESOURCE_STAR_ALLOWED.get(sid)
            if allowed is None or frozenset(actions) != allowed[0]:
                problems.append(f"{where}: Resource '*' for {sorted(map(str, actions))}")
    return problems


def sam_policy_entries(template: Template) -> Iterator[tuple[str, Any]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            for entry in _as_list(resource.get("Properties", {}).get("Policies", [])):
                yield logical_id, entry
    for entry in _as_list(template.get("Globals", {}).get("Function", {}).get("Policies", [])):
        yield "Globals", entry


def forbidden_policy_problems(template: Template) -> list[str]:
    """SAM policy templates on the forbidden list, and any managed *FullAccess policy, before or after the transform."""
    problems = []
    for logical_id, entry in sam_policy_entries(template):
        if isinstance(entry, dict):
            problems.extend(f"{logical_id}: {name}" for name in entry if name in FORBIDDEN_SAM_POLICY_TEMPLATES)
        elif isinstance(entry, str) and "FullAccess" in entry:
            problems.append(f"{logical_id}: {entry}")
    for logical_id, resource in template["Resources"].items():
        for arn in _as_list(resource.get("Properties", {}).get("ManagedPolicyArns", [])):
            if "FullAccess" in json.dumps(arn):
                problems.append(f"{logical_id}: {arn}")
    return problems


@pytest.mark.parametrize("which", ["template", "translated"])
def test_no_policy_grants_wildcard_actions_or_resources(which: str, request: pytest.FixtureRequest) -> None:
    assert wildcard_problems(request.getfixturevalue(which)) == []


@pytest.mark.parametrize("which", ["template", "translated"])
def test_no_forbidden_sam_policy_templates_or_full_access_policies(which: str, request: pytest.FixtureRequest) -> None:
    assert forbidden_policy_problems(request.getfixturevalue(which)) == []


def test_no_function_role_carries_an_aws_managed_policy(translated: Template) -> None:
    roles = {role_of(translated, function_id)[0] for function_id in lambda_function_ids(translated)}

    assert {r: translated["Resources"][r]["Properties"].get("ManagedPolicyArns", []) for r in roles} == {
        r: [] for r in roles
    }


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}, "action 's3:*'"),
        ({"Effect": "Allow", "Action": ["sqs:SendMessage*"], "Resource": "arn:q"}, "action 'sqs:SendMessage*'"),
        ({"Effect": "Allow", "NotAction": "iam:CreateUser", "Resource": "arn:x"}, "Allow with NotAction"),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}, "Resource '*'"),
        # An allow-listed Sid covers exactly its actions, nothing added to them.
        (
            {
                "Sid": "WriteTraces",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "s3:GetObject"],
                "Resource": "*",
            },
            "Resource '*'",
        ),
    ],
)
def test_wildcard_check_flags_broad_grants(template: Template, statement: dict[str, Any], expected: str) -> None:
    role = template["Resources"]["WebhookFunctionRole"]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"].append(statement)

    assert any(expected in problem for problem in wildcard_problems(template))


def test_wildcard_check_sees_the_managed_policies_sam_attaches(template: Template) -> None:
    # The worker as SAM would build it without its own role: the SQS event source attaches
    # AWSLambdaSQSQueueExecutionRole and Tracing AWSXrayWriteOnlyAccess, both on Resource "*".
    worker = template["Resources"]["WorkerFunction"]["Properties"]
    role = template["Resources"].pop("WorkerFunctionRole")["Properties"]
    del worker["Role"]
    worker["Policies"] = [
        {"Statement": [s for s in role["Policies"][0]["PolicyDocument"]["Statement"] if s["Sid"] != "WriteTraces"]}
    ]
    problems = wildcard_problems(translate(template))

    assert any("AWSLambdaSQSQueueExecutionRole" in p and "sqs:ReceiveMessage" in p for p in problems), problems
    assert any("AWSXrayWriteOnlyAccess" in p for p in problems), problems


def test_wildcard_check_flags_a_managed_policy_it_does_not_know(template: Template) -> None:
    role = template["Resources"]["WebhookFunctionRole"]["Properties"]
    role["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]

    assert any("unknown managed policy" in problem for problem in wildcard_problems(template))


@pytest.mark.parametrize(
    "policy",
    [
        {"S3CrudPolicy": {"BucketName": {"Ref": "ReportsBucket"}}},
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "LedgerTable"}}},
        "AmazonS3FullAccess",
    ],
    ids=["S3CrudPolicy", "DynamoDBCrudPolicy", "AmazonS3FullAccess"],
)
def test_forbidden_policy_check_flags_broad_policies(template: Template, policy: Any) -> None:
    template["Resources"]["SweepFunction"]["Properties"]["Policies"] = [policy]

    assert len(forbidden_policy_problems(template)) == 1


def lambda_function_ids(translated: Template) -> list[str]:
    return sorted(k for k, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function")


def role_of(translated: Template, function_id: str) -> tuple[str, dict[str, Any]]:
    role_ref = translated["Resources"][function_id]["Properties"]["Role"]
    assert set(role_ref) == {"Fn::GetAtt"}, f"{function_id} must use its role from template.yaml"
    role_id = role_ref["Fn::GetAtt"][0]
    return role_id, translated["Resources"][role_id]


def granted_permissions(translated: Template, function_id: str) -> tuple[set[tuple[str, str]], list[dict[str, Any]]]:
    """(action, resource) pairs of a function role's policies, and the statements with a condition.

    Nothing may be attached to the role from outside it (a separate AWS::IAM::Policy) or through a managed policy.
    """
    role_id, role = role_of(translated, function_id)
    attached_elsewhere = [
        logical_id
        for logical_id, resource in translated["Resources"].items()
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
        and {"Ref": role_id} in resource["Properties"].get("Roles", [])
    ]
    assert attached_elsewhere == []
    assert role["Properties"].get("ManagedPolicyArns", []) == []
    assert "PermissionsBoundary" not in role["Properties"]
    granted: set[tuple[str, str]] = set()
    conditional = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            if "Condition" in statement:
                conditional.append(statement)
            for action in _as_list(statement["Action"]):
                granted.update((action, json.dumps(resource)) for resource in _as_list(statement["Resource"]))
    return granted, conditional


def _arn(logical_id: str) -> str:
    return json.dumps({"Fn::GetAtt": [logical_id, "Arn"]})


def runtime_permissions(function_id: str) -> set[tuple[str, str]]:
    """What every function needs to run: its own log group (no CreateLogGroup: the stack creates it) and X-Ray."""
    log_group = _arn(f"{function_id}LogGroup")
    return {
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
        ("xray:PutTraceSegments", json.dumps("*")),
        ("xray:PutTelemetryRecords", json.dumps("*")),
    }


def consume_permissions(queue_id: str) -> set[tuple[str, str]]:
    """What Lambda's SQS poller does with the function's role."""
    return {(f"sqs:{action}", _arn(queue_id)) for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")}


ALERTS_KEY_PERMISSIONS = {("kms:GenerateDataKey", _arn("AlertsTopicKey")), ("kms:Decrypt", _arn("AlertsTopicKey"))}

WEBHOOK_PERMISSIONS = {
    ("secretsmanager:GetSecretValue", json.dumps({"Ref": "PartnerSecretsArn"})),
    ("dynamodb:PutItem", _arn("DedupeTable")),
    ("dynamodb:DeleteItem", _arn("DedupeTable")),
    ("sqs:SendMessage", _arn("EventsQueue")),
}


def test_webhook_can_only_read_its_secret_write_dedupe_rows_and_enqueue(translated: Template) -> None:
    granted, conditional = granted_permissions(translated, "WebhookFunction")

    assert granted == WEBHOOK_PERMISSIONS | runtime_permissions("WebhookFunction")
    assert conditional == []


def test_function_role_is_assumable_by_lambda_only(translated: Template, function_id: str) -> None:
    _, role = role_of(translated, function_id)

    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}}
    ]


LEDGER = _arn("LedgerTable")
CONFIG_PARAMETER_ARN = (
    "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${AWS::StackName}/automation-config"
)
CONFIG_PARAMETER = json.dumps({"Fn::Sub": CONFIG_PARAMETER_ARN})
AUTOMATION_PERMISSIONS = {
    ("secretsmanager:GetSecretValue", json.dumps({"Ref": "PartnerSecretsArn"})),
    ("ssm:GetParameter", CONFIG_PARAMETER),
    ("dynamodb:GetItem", LEDGER),
    ("dynamodb:PutItem", LEDGER),
    ("dynamodb:UpdateItem", LEDGER),
    ("dynamodb:DeleteItem", LEDGER),
    ("dynamodb:Query", LEDGER),
    ("sns:Publish", json.dumps({"Ref": "AlertsTopic"})),
    ("sqs:SendMessage", _arn("EventsQueue")),
}
CHECKPOINTS = json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/_checkpoints/*"})
SESSIONS = json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/sessions/*"})
# The session report writer: multipart uploads, re-reading a completed object to hash it. It never checkpoints
# (a session's reports are written within one invocation), so no _checkpoints/ and no weekly/ access.
WORKER_S3_PERMISSIONS = {
    (action, SESSIONS)
    for action in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
}
AUDIT_TRAIL_PERMISSION = ("s3:PutObject", json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/audit/*"}))
"""Every automation appends its decisions to the audit trail: PutObject under audit/ only."""


def test_worker_permissions_are_exactly_what_its_automations_use(translated: Template) -> None:
    granted, conditional = granted_permissions(translated, "WorkerFunction")

    assert granted == (
        AUTOMATION_PERMISSIONS
        | WORKER_S3_PERMISSIONS
        | {AUDIT_TRAIL_PERMISSION}
        | ALERTS_KEY_PERMISSIONS
        | consume_permissions("EventsQueue")
        | runtime_permissions("WorkerFunction")
    )
    assert conditional == []


def test_sweep_permissions_are_exactly_what_it_uses_and_no_report_access_but_the_audit_trail(
    translated: Template,
) -> None:
    granted, conditional = granted_permissions(translated, "SweepFunction")

    assert granted == (
        AUTOMATION_PERMISSIONS
        | {AUDIT_TRAIL_PERMISSION}
        | ALERTS_KEY_PERMISSIONS
        | {("sqs:SendMessage", _arn("SweepFailedInvocationsQueue"))}
        | runtime_permissions("SweepFunction")
    )
    assert conditional == []


SCHEDULE_TARGETS = {
    # schedule role (SAM: <function><event>Role) -> (function it invokes, dead-letter queue of failed deliveries)
    "SweepFunctionScheduleRole": ("SweepFunction", "SweepScheduleDeadLetterQueue"),
    "WeeklySchedulerFunctionWeeklyRole": ("WeeklySchedulerFunction", "WeeklyScheduleDeadLetterQueue"),
}


def test_each_schedule_role_may_only_invoke_its_function_and_park_failures(translated: Template) -> None:
    roles = {
        logical_id: r
        for logical_id, r in translated["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": ["scheduler.amazonaws.com"]}
    }

    assert set(roles) == set(SCHEDULE_TARGETS)
    for logical_id, role in roles.items():
        function_id, dead_letter_queue = SCHEDULE_TARGETS[logical_id]
        granted = {
            (statement["Action"], json.dumps(statement["Resource"]))
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        }
        assert granted == {
            ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": [function_id, "Arn"]})),
            ("sqs:SendMessage", json.dumps({"Fn::GetAtt": [dead_letter_queue, "Arn"]})),
        }, logical_id


def test_alerts_key_lets_the_account_and_cloudwatch_alarms_use_it_and_nobody_else(template: Template) -> None:
    key = template["Resources"]["AlertsTopicKey"]["Properties"]
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}

    assert template["Resources"]["AlertsTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlertsTopicKey"}
    assert key["EnableKeyRotation"] is True
    assert set(statements) == {"EnableIamPolicies", "CloudWatchAlarmsPublish"}
    assert statements["EnableIamPolicies"]["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    }
    assert statements["CloudWatchAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(statements["CloudWatchAlarmsPublish"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # No topic policy of our own: SNS's default admits this account only, so no other account's alarm can publish.
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"]


def test_functions_may_write_traces_exactly_when_tracing_is_active(template: Template, translated: Template) -> None:
    for function_id in lambda_function_ids(translated):
        granted, _ = granted_permissions(translated, function_id)
        traced = effective_function_properties(template, function_id).get("Tracing") == "Active"
        assert (("xray:PutTraceSegments", json.dumps("*")) in granted) == traced, function_id


def test_every_function_that_publishes_alerts_may_use_the_alerts_key(translated: Template) -> None:
    for function_id in lambda_function_ids(translated):
        granted, _ = granted_permissions(translated, function_id)
        publishes = ("sns:Publish", json.dumps({"Ref": "AlertsTopic"})) in granted
        assert publishes == ALERTS_KEY_PERMISSIONS.issubset(granted), function_id
