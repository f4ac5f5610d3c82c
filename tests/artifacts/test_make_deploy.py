"""``make deploy`` builds, then runs ``sam deploy --guided`` until deploy answers are saved, then ``sam deploy``.

The SAM CLI is replaced by a script that records its arguments, so the test sees exactly what make would run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf"
SAVED_BY_GUIDED_DEPLOY = f'parameter_overrides = "PartnerSecretsArn=\\"{SECRET_ARN}\\""\n'


def make_deploy(tmp_path: Path, samconfig_text: str) -> tuple[list[str], str]:
    calls = tmp_path / "calls"
    fake_sam = tmp_path / "sam"
    fake_sam.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake_sam.chmod(0o755)
    (tmp_path / "sam-venv").mkdir()
    (tmp_path / "sam-venv" / ".installed").touch()
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(samconfig_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(  # noqa: S603 - fixed command, paths of this test
        [  # noqa: S607 - make on PATH
            "make",
            "--no-print-directory",
            "deploy",
            f"SAM={fake_sam}",
            f"SAM_VENV={tmp_path / 'sam-venv'}",
            f"SAMCONFIG={samconfig}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return calls.read_text().splitlines(), result.stdout


def test_first_deploy_builds_then_runs_the_guided_deploy(tmp_path: Path) -> None:
    calls, output = make_deploy(tmp_path, (REPO_ROOT / "samconfig.toml").read_text())

    assert calls == ["build --build-dir .aws-sam/build", f"deploy --guided --config-file {tmp_path / 'samconfig.toml'}"]
    assert "see the README's deploy section" in output


def test_once_the_answers_are_saved_deploy_runs_from_samconfig(tmp_path: Path) -> None:
    saved = (REPO_ROOT / "samconfig.toml").read_text() + SAVED_BY_GUIDED_DEPLOY

    calls, _ = make_deploy(tmp_path, saved)

    assert calls == ["build --build-dir .aws-sam/build", f"deploy --config-file {tmp_path / 'samconfig.toml'}"]


def test_the_checked_in_samconfig_names_the_stack_and_saves_no_deployment_answers() -> None:
    text = (REPO_ROOT / "samconfig.toml").read_text()

    assert 'stack_name = "kaltura-automations"' in text
    assert "parameter_overrides" not in text  # a fresh clone's first make deploy must be the guided one
