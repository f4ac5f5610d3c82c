"""The README's configuration tables and the schemas agree: every key, type, required flag, default and meaning
(regenerate with ``make config-docs``), and the JSON Schema carries the same descriptions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from kauto_ops.config_cli import main
from kauto_ops.config_docs import TABLES, render, rows

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_readme_table_matches_the_schema(name: str) -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(rf"<!-- kauto-config:{name} -->\n(.*?)\n<!-- /kauto-config:{name} -->", text, re.S)

    assert block is not None, f"README.md lost its kauto-config:{name} block"
    assert block.group(1) == render(name), "README.md is stale: run `make config-docs`"


def test_every_documented_key_has_a_meaning() -> None:
    undocumented = [
        key for cls, prefix in TABLES.values() for key, _, _, _, meaning in rows(cls, prefix) if not meaning
    ]

    assert undocumented == []


@pytest.mark.parametrize("document", ["secret", "automation"])
def test_json_schema_describes_every_property(document: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", document]) == 0
    schema = json.loads(capsys.readouterr().out)

    def missing(definitions: dict[str, Any]) -> list[str]:
        return [
            f"{name}.{key}"
            for name, definition in definitions.items()
            for key, prop in definition.get("properties", {}).items()
            if "description" not in prop
        ]

    assert missing(schema["$defs"]) == []
    assert msgspec.json.decode(json.dumps(schema))  # valid JSON for editors
