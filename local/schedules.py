"""The stack's EventBridge schedules, created through the Scheduler API (moto's CloudFormation skips them).

Each ``AWS::Scheduler::Schedule`` of the translated template is created as CloudFormation would, under its template
name (``<stack>-sweep``...) with its expression, time zone, target, role, retry policy and dead-letter queue, so that
what reads a deployed stack's schedules (``make smoke``) finds them locally too. Nothing fires them here: the on-demand
trigger of ``make serve`` and the local asynchronous invoke do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account


class StackResolver:
    """Resolves ``Ref`` (parameters, pseudo parameters, resources), ``Fn::GetAtt`` (queue, function and role ARNs),
    ``Fn::Sub`` and ``Fn::Join`` against the stack moto created; what moto did not create resolves to its logical id."""

    def __init__(
        self,
        *,
        stack_name: str,
        region: str,
        translated: Mapping[str, Any],
        parameters: Mapping[str, str],
        physical_ids: Mapping[str, str],
        client: Callable[[str], Any],
    ) -> None:
        self._pseudo = {
            "AWS::StackName": stack_name,
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self._resources = translated["Resources"]
        self._defaults = {k: str(v.get("Default", "")) for k, v in translated.get("Parameters", {}).items()}
        self._parameters = parameters
        self._physical_ids = physical_ids
        self._client = client

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            logical_id, attribute = target if isinstance(target, list) else target.split(".", 1)
            return self.get_att(logical_id, attribute)
        if set(value) == {"Fn::Sub"}:
            return self.sub(value["Fn::Sub"])
        if set(value) == {"Fn::Join"}:
            separator, items = value["Fn::Join"]
            return separator.join(str(self.resolve(item)) for item in items)
        return {key: self.resolve(item) for key, item in value.items()}

    def ref(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        if name in self._defaults and name not in self._resources:
            return self._defaults[name]
        return self._physical_ids.get(name) or name

    def get_att(self, logical_id: str, attribute: str) -> str:
        physical = self._physical_ids.get(logical_id)
        resource_type = self._resources.get(logical_id, {}).get("Type")
        if not physical:
            return logical_id
        if resource_type == "AWS::SQS::Queue":
            attributes = self._client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
            arn = str(attributes["Attributes"]["QueueArn"])
            return arn.rsplit(":", 1)[-1] if attribute == "QueueName" else arn
        if resource_type == "AWS::Lambda::Function" and attribute == "Arn":
            return str(self._client("lambda").get_function(FunctionName=physical)["Configuration"]["FunctionArn"])
        if resource_type == "AWS::IAM::Role" and attribute == "Arn":
            return str(self._client("iam").get_role(RoleName=physical)["Role"]["Arn"])
        return physical

    def sub(self, spec: Any) -> str:
        text, variables = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])
        resolved = {name: str(self.resolve(value)) for name, value in variables.items()}
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name in resolved:
                out.append(resolved[name])
            elif "." in name:
                out.append(self.get_att(*name.split(".", 1)))
            else:
                out.append(self.ref(name))
        out.append(rest)
        return "".join(out)


def create_schedules(
    translated: Mapping[str, Any],
    parameters: Mapping[str, str],
    physical_ids: Mapping[str, str],
    client: Callable[[str], Any],
    *,
    stack_name: str = "kauto-local",
    region: str = "us-east-1",
) -> list[str]:
    """Create every schedule of ``translated``; returns their names."""
    resolver = StackResolver(
        stack_name=stack_name,
        region=region,
        translated=translated,
        parameters=parameters,
        physical_ids=physical_ids,
        client=client,
    )
    names = []
    for logical_id, resource in translated["Resources"].items():
        if resource["Type"] != "AWS::Scheduler::Schedule":
            continue
        schedule = {key: resolver.resolve(value) for key, value in resource.get("Properties", {}).items()}
        schedule.setdefault("Name", f"{stack_name}-{logical_id}")
        schedule.setdefault("State", "ENABLED")
        client("scheduler").create_schedule(**schedule)
        names.append(str(schedule["Name"]))
    return names
