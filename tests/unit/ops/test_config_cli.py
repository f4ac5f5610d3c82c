"""kauto-config: check prints every problem and exits 1, show prints the effective settings with secrets masked, and
the start-up check of serve/demo/smoke refuses a broken document with the same lines."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from kauto_ops.config_cli import MASK, main, refuse_broken_documents

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "app-token-value-0123456789"


def write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return str(path)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


SECRET_DOCUMENT = {
    "partners": {
        "1234567": {
            "admin_secret": SECRET,
            "webhook_hash_algorithms": ["sha256"],
            "app_token": {"id": "0_abc", "token": TOKEN},
        },
        "7654321": {"admin_secret": SECRET, "webhook_hash_algorithms": ["md5"], "sevice_url": "https://x"},
    }
}


def test_check_lists_every_problem_of_both_documents_and_exits_1(tmp_path: Path) -> None:
    secret = write(tmp_path, "partners.json", SECRET_DOCUMENT)
    automation = write(tmp_path, "automation.json", {"weekly": {"enabeld": False}})

    status, out, _ = run("check", "--secret", secret, "--automation", automation)

    assert status == 1
    assert out.splitlines() == [
        f"{secret}: partner secret has 2 problem(s):",
        "  partners.7654321.sevice_url: unknown setting; did you mean `service_url`?",
        "  partners.7654321.webhook_hash_algorithms[0]: one of sha1, sha256, sha512",
        f"{automation}: automation config has 1 problem(s):",
        "  weekly.enabeld: unknown setting; did you mean `enabled`?",
    ]
    assert SECRET not in out


def test_check_of_valid_documents_exits_0(tmp_path: Path) -> None:
    valid = {"partners": {"1234567": SECRET_DOCUMENT["partners"]["1234567"]}}

    status, out, _ = run("check", "--secret", write(tmp_path, "p.json", valid))

    assert (status, out.endswith("partner secret is valid\n")) == (0, True)


def test_check_needs_a_document_and_a_readable_file(tmp_path: Path) -> None:
    assert run("check")[0] == 1
    status, _, err = run("check", "--secret", str(tmp_path / "missing.json"))
    assert status == 1 and "cannot read" in err


def test_show_merges_the_defaults_and_masks_the_secrets(tmp_path: Path) -> None:
    automation = write(
        tmp_path,
        "automation.json",
        {
            "defaults": {"captions": {"min_duration_seconds": 30}},
            "partners": {"1234567": {"captions": {"enabled": True}}},
        },
    )
    secret = write(tmp_path, "partners.json", SECRET_DOCUMENT)

    status, out, _ = run("show", "--partner", "1234567", "--automation", automation, "--secret", secret)

    shown = json.loads(out)
    assert status == 0
    assert (shown["captions"]["enabled"], shown["captions"]["min_duration_seconds"]) == (True, 30)
    assert shown["captions"]["catalog_item"]["service_type"] == 2  # the schema's default selector
    assert shown["secret"]["admin_secret"] == MASK and shown["secret"]["app_token"]["token"] == MASK
    assert shown["secret"]["service_url"] == "https://www.kaltura.com"
    assert shown["weekly"]["enabled"] is True
    assert SECRET not in out and TOKEN not in out


def test_show_of_a_disabled_partner_says_why(tmp_path: Path) -> None:
    status, _, err = run("show", "--partner", "7654321", "--secret", write(tmp_path, "p.json", SECRET_DOCUMENT))

    assert status == 1
    assert "partner 7654321 is disabled" in err and "partners.7654321.sevice_url" in err


def test_schema_prints_json_schema() -> None:
    status, out, _ = run("schema", "automation")

    assert status == 0 and "session_engagement_rate_below" in out


def test_start_up_check_refuses_a_broken_document_with_the_checker_lines() -> None:
    err = io.StringIO()

    with pytest.raises(SystemExit) as exited:
        refuse_broken_documents(automation={"partners": {"1": {"captions": {"enabeld": True}}}}, err=err)

    assert exited.value.code == 1
    assert "automation config: partners.1.captions.enabeld: unknown setting; did you mean `enabled`?" in err.getvalue()
    refuse_broken_documents(secret={"partners": {"1": SECRET_DOCUMENT["partners"]["1234567"]}})  # valid: returns
