"""The deployed stack's resources, read from CloudFormation: parameters (``describe_stacks``) and the physical ids
of its resources by logical id (``list_stack_resources``: a queue's URL, a table's or a function's name)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kauto.errors import KautoError


class OpsError(KautoError):
    """An operator command cannot run as asked; the message says what to fix (printed without a traceback)."""


@dataclass(frozen=True, slots=True)
class StackResources:
    """The outputs and parameters of one deployed stack."""

    name: str
    parameters: Mapping[str, str]
    resources: Mapping[str, str]
    """Logical id -> physical id."""

    def resource(self, logical_id: str, *, option: str) -> str:
        """The physical id of ``logical_id``; :class:`OpsError` names it and the ``option`` that can replace it."""
        value = self.resources.get(logical_id, "").strip()
        if not value:
            raise OpsError(
                f"stack {self.name} has no resource {logical_id}; deploy the current template or pass {option}"
            )
        return value

    def parameter(self, key: str, *, option: str) -> str:
        """Parameter ``key``; :class:`OpsError` names it and the ``option`` that can replace it."""
        value = self.parameters.get(key, "").strip()
        if not value:
            raise OpsError(f"stack {self.name} has no parameter {key}; pass {option}")
        return value


def stack_read_error(name: str, error: ClientError | BotoCoreError) -> OpsError:
    """What to tell the operator when reading stack ``name`` from CloudFormation failed."""
    if isinstance(error, BotoCoreError):
        return OpsError(f"cannot read stack {name}: {type(error).__name__}")
    if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
        return OpsError(f"stack {name} does not exist in this account and region")
    return OpsError(f"cannot read stack {name}: {error.response.get('Error', {}).get('Code', 'ClientError')}")


def describe_stack(cloudformation: Any, name: str) -> StackResources:
    """Read stack ``name``; :class:`OpsError` when it does not exist or cannot be read."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        resources: dict[str, str] = {}
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
            for summary in page.get("StackResourceSummaries", []):
                resources[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    except (ClientError, BotoCoreError) as error:
        raise stack_read_error(name, error) from error
    if not stacks:
        raise OpsError(f"stack {name} does not exist in this account and region")
    stack = stacks[0]
    return StackResources(
        name=name,
        resources=resources,
        parameters={
            item["ParameterKey"]: item.get("ResolvedValue") or item.get("ParameterValue", "")
            for item in stack.get("Parameters", [])
        },
    )
