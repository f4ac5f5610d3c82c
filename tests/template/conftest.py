"""Fixtures for the template tests: template.yaml as CloudFormation reads it, before and after the SAM transform."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from template_support import (
    Template,
    effective_function_properties,
    load_template,
    serverless_function_ids,
    translated_template,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests that take `function_id` once per function in template.yaml."""
    if "function_id" in metafunc.fixturenames:
        metafunc.parametrize("function_id", serverless_function_ids(load_template()))


@pytest.fixture
def template() -> Template:
    """template.yaml with long-form intrinsics; a fresh copy per test, so a test may break it on purpose."""
    return copy.deepcopy(load_template())


@pytest.fixture
def resources(template: Template) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture
def translated() -> Template:
    """template.yaml after the SAM transform (plain CloudFormation: roles, stages, layer versions ...)."""
    return copy.deepcopy(translated_template())


@pytest.fixture
def function_properties(template: Template) -> dict[str, dict[str, Any]]:
    """Each SAM function's properties as deployed, Globals.Function applied by SAM's own merge rules."""
    return {
        function_id: effective_function_properties(template, function_id)
        for function_id in serverless_function_ids(template)
    }
