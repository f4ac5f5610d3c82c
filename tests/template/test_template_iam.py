"""Least privilege, checked on template.yaml and on what the SAM transform generates from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

Template = dict[str, Any]

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

WEBHOOK_PERMISSIONS = {
    ("secretsmanager:GetSecretValue", json.dumps({"Ref": "PartnerSecretsArn"})),
    ("dynamodb:PutItem", json.dumps({"Fn::GetAtt": ["DedupeTable", "Arn"]})),
    ("dynamodb:DeleteItem", json.dumps({"Fn::GetAtt": ["DedupeTable", "Arn"]})),
    ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["EventsQueue", "Arn"]})),
}
# What SAM attaches to every function role: CloudWatch Logs writes, and X-Ray writes because Tracing is Active.
WEBHOOK_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


def policy_statements(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement anywhere in a template: inline function policies, roles, resource policies."""
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list):
            for index, statement in enumerate(statements):
                yield f"{path}.Statement[{index}]", statement
        elif isinstance(statements, dict):
            yield f"{path}.Statement", statements
        for key, value in node.items():
            if key != "Statement":
                yield from policy_statements(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from policy_statements(item, f"{path}[{index}]")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_problems(template: Template) -> list[str]:
    """Grants broader than named actions: `*` in an Allow action, Allow with NotAction, Allow on Resource `*`.

    Deny statements may use wildcards: they take access away (the bucket's TLS-only guardrail denies `s3:*`).
    """
    problems = []
    for where, statement in policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: Allow with NotAction/NotResource")
        for action in _as_list(statement.get("Action", [])):
            if not isinstance(action, str) or "*" in action:
                problems.append(f"{where}: action {action!r}")
        # Trust policies (sts:AssumeRole) have a Principal and no Resource.
        if "Principal" not in statement and "*" in _as_list(statement.get("Resource")):
            problems.append(f"{where}: Resource '*'")
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


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}, "action 's3:*'"),
        ({"Effect": "Allow", "Action": ["sqs:SendMessage*"], "Resource": "arn:q"}, "action 'sqs:SendMessage*'"),
        ({"Effect": "Allow", "NotAction": "iam:CreateUser", "Resource": "arn:x"}, "Allow with NotAction"),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}, "Resource '*'"),
    ],
)
def test_wildcard_check_flags_broad_grants(template: Template, statement: dict[str, Any], expected: str) -> None:
    template["Resources"]["WebhookFunction"]["Properties"]["Policies"][0]["Statement"].append(statement)

    assert any(expected in problem for problem in wildcard_problems(template))


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
    template["Resources"]["WebhookFunction"]["Properties"]["Policies"].append(policy)

    assert len(forbidden_policy_problems(template)) == 1


def role_of(translated: Template, function_id: str) -> tuple[str, dict[str, Any]]:
    role_ref = translated["Resources"][function_id]["Properties"]["Role"]
    assert set(role_ref) == {"Fn::GetAtt"}, f"{function_id} must use the role SAM generates from its Policies"
    role_id = role_ref["Fn::GetAtt"][0]
    return role_id, translated["Resources"][role_id]


def test_webhook_can_only_read_its_secret_write_dedupe_rows_and_enqueue(translated: Template) -> None:
    role_id, role = role_of(translated, "WebhookFunction")
    granted = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "Condition" not in statement
            for action in _as_list(statement["Action"]):
                granted.update((action, json.dumps(resource)) for resource in _as_list(statement["Resource"]))
    attached_elsewhere = [
        logical_id
        for logical_id, resource in translated["Resources"].items()
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
        and {"Ref": role_id} in resource["Properties"].get("Roles", [])
    ]

    assert granted == WEBHOOK_PERMISSIONS
    assert set(role["Properties"]["ManagedPolicyArns"]) == WEBHOOK_MANAGED_POLICIES
    assert attached_elsewhere == []
    assert "PermissionsBoundary" not in role["Properties"]


def test_webhook_role_is_assumable_by_lambda_only(translated: Template) -> None:
    _, role = role_of(translated, "WebhookFunction")

    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}}
    ]


LEDGER = json.dumps({"Fn::GetAtt": ["LedgerTable", "Arn"]})
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
    ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["EventsQueue", "Arn"]})),
}
REPORT_PREFIXES = [
    json.dumps({"Fn::Sub": f"${{ReportsBucket.Arn}}/{prefix}/*"}) for prefix in ("sessions", "weekly", "_checkpoints")
]
CHECKPOINTS = json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/_checkpoints/*"})
WORKER_S3_PERMISSIONS = {
    *(
        (action, prefix)
        for action in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
        for prefix in REPORT_PREFIXES
    ),
    ("s3:DeleteObject", CHECKPOINTS),
    ("s3:ListBucket", json.dumps({"Fn::GetAtt": ["ReportsBucket", "Arn"]})),
}
AUDIT_TRAIL_PERMISSION = ("s3:PutObject", json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/audit/*"}))
"""Every automation appends its decisions to the audit trail: PutObject under audit/ only."""


def granted_permissions(translated: Template, function_id: str) -> tuple[set[tuple[str, str]], list[dict[str, Any]]]:
    """(action, resource) pairs of a function role's inline policies, and the statements with a condition."""
    _, role = role_of(translated, function_id)
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


def test_worker_permissions_are_exactly_what_its_automations_use(translated: Template) -> None:
    granted, conditional = granted_permissions(translated, "WorkerFunction")
    _, role = role_of(translated, "WorkerFunction")

    assert granted == AUTOMATION_PERMISSIONS | WORKER_S3_PERMISSIONS | {AUDIT_TRAIL_PERMISSION}
    # Listing the bucket is limited to the checkpoint prefix the writer cleans up.
    assert [s["Condition"] for s in conditional] == [{"StringLike": {"s3:prefix": "_checkpoints/*"}}]
    # SAM adds the SQS poller policy for the event source (receive/delete/attributes, what Lambda's poller needs).
    assert set(role["Properties"]["ManagedPolicyArns"]) == WEBHOOK_MANAGED_POLICIES | {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
    }


def test_sweep_permissions_are_exactly_what_it_uses_and_no_report_access(translated: Template) -> None:
    granted, conditional = granted_permissions(translated, "SweepFunction")
    _, role = role_of(translated, "SweepFunction")

    assert granted == AUTOMATION_PERMISSIONS | {AUDIT_TRAIL_PERMISSION}
    assert conditional == []
    assert set(role["Properties"]["ManagedPolicyArns"]) == WEBHOOK_MANAGED_POLICIES


SCHEDULE_TARGETS = {
    # schedule role (SAM: <function><event>Role) -> (function it invokes, dead-letter queue of failed invocations)
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
