"""What the template tests read: template.yaml as CloudFormation reads it, before and after the SAM transform (the
fixtures in ``conftest.py`` hand out copies; tests import these helpers from here, under a name no other test folder
uses)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.plugins.globals.globals import Globals
from samtranslator.translator.translator import Translator

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
REGION = "us-east-1"
# Any value matching the parameter's AllowedPattern: the transform needs one, and tests compare against it.
PLACEHOLDER_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners-AbCdEf"

Template = dict[str, Any]


@functools.cache
def load_template() -> Template:
    """template.yaml with long-form intrinsics, read once: callers that may change it take a copy."""
    # cfn-lint's decoder understands the short-form intrinsics (!Ref, !GetAtt, !Sub ...) and turns them into the
    # long form; the JSON round trip leaves plain dicts, lists and strings that tests may copy and mutate.
    return json.loads(json.dumps(cfn_yaml.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))))


@functools.cache
def translated_template() -> Template:
    """template.yaml after the SAM transform, translated once: callers that may change it take a copy."""
    return translate(load_template())


def translate(template: Template) -> Template:
    """Apply the SAM transform offline to a copy of ``template`` (a test may translate a template it changed)."""
    sam_template = copy.deepcopy(template)
    for resource in sam_template["Resources"].values():
        properties = resource.get("Properties", {})
        # The transform wants artifacts already uploaded; the tests only care about the generated resources.
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://template-tests-placeholder/artifact.zip"
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.Session(region_name=REGION),
    )
    return translator.translate(
        sam_template=sam_template, parameter_values={"PartnerSecretsArn": PLACEHOLDER_SECRET_ARN}
    )


def serverless_function_ids(template: Template) -> list[str]:
    """Logical ids of the template's AWS::Serverless::Function resources."""
    return sorted(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    )


def effective_function_properties(template: Template, function_id: str) -> dict[str, Any]:
    """A SAM function's properties with Globals.Function applied (maps merge, lists concatenate, scalars override)."""
    resource = template["Resources"][function_id]
    return Globals(template).merge(
        "AWS::Serverless::Function",
        copy.deepcopy(resource.get("Properties", {})),
        function_id,
        resource.get("IgnoreGlobals"),
    )
