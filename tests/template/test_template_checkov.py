"""Every checkov finding this stack accepts is listed with its reason (the scan itself runs in `make checkov`)."""

from __future__ import annotations

import re
from typing import Any

from template_support import REPO_ROOT

CONFIG = REPO_ROOT / ".checkov.yaml"


def test_every_globally_skipped_check_has_its_reason_above_it() -> None:
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    start = lines.index("skip-check:")
    skips = [(i, line.strip()[2:]) for i, line in enumerate(lines) if i > start and line.strip().startswith("- ")]

    assert skips
    for index, check in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), check
        reason = []
        for line in reversed(lines[start + 1 : index]):
            if not line.strip().startswith("#"):
                break
            reason.insert(0, line.strip("# "))
        assert reason and reason[0].startswith(f"{check} ("), f"{check}: no reason above it"
        assert len(" ".join(reason)) > 80, f"{check}: say why it does not apply"


def test_resource_level_skips_give_their_reason(template: dict[str, Any]) -> None:
    skips = {
        (logical_id, skip["id"]): skip.get("comment", "")
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }

    assert set(skips) == {("DedupeTable", "CKV_AWS_28"), ("AccessLogsBucket", "CKV_AWS_18")}
    assert all(len(comment) > 40 for comment in skips.values()), skips
