"""The layer SAM builds from shared/requirements.txt ships exactly the project's runtime dependencies, never boto3."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The Lambda runtime provides these; a vendored copy would shadow the runtime's and bloat the layer.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}


def _requirements() -> list[str]:
    lines = (REPO_ROOT / "shared" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _distribution_name(requirement: str) -> str:
    # PEP 503 normalisation of the name in front of any version specifier, extra or marker.
    name = re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_layer_requirements_equal_the_project_dependencies() -> None:
    with (REPO_ROOT / "pyproject.toml").open("rb") as pyproject:
        dependencies = tomllib.load(pyproject)["project"]["dependencies"]
    requirements = _requirements()

    assert sorted(requirements) == sorted(dependencies)
    assert len(set(requirements)) == len(requirements)


def test_layer_requirements_do_not_vendor_the_aws_sdk() -> None:
    requirements = _requirements()

    assert requirements, "shared/requirements.txt is empty"
    assert sorted({_distribution_name(r) for r in requirements} & RUNTIME_PROVIDED) == []


def test_distribution_name_sees_through_specifiers_and_extras() -> None:
    assert [_distribution_name(r) for r in ("boto3==1.43.11", "Boto3 >= 1", "botocore[crt]", "s3_transfer")] == [
        "boto3",
        "boto3",
        "botocore",
        "s3-transfer",
    ]
