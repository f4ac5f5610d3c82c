"""Import weight of the webhook: what a cold start loads (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO_ROOT

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("webhook_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
before = set(sys.modules)
from kauto.intake.parsing import parse_body
parse_body(b'{"object":{},"eventObjectType":1}')
after_json = set(sys.modules)
parse_body(b"data=<notification><object><id>1</id></object></notification>")
print(json.dumps({"import": sorted(before), "json": sorted(after_json), "xml": sorted(set(sys.modules))}))
"""


def loaded_modules() -> dict[str, list[str]]:
    app = REPO_ROOT / "functions" / "webhook" / "app.py"
    result = subprocess.run(  # noqa: S603 - our own interpreter and file
        [sys.executable, "-c", PROBE, str(app)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_webhook_import_stays_light_and_xml_parsing_loads_only_for_xml_bodies() -> None:
    modules = loaded_modules()

    def present(names: list[str], prefix: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for name in names)

    for heavy in ("defusedxml", "kauto.intake.xml_body", "requests", "pydantic", "kauto.kaltura", "kauto.automations"):
        assert not present(modules["import"], heavy), heavy
        assert not present(modules["json"], heavy), heavy  # a JSON delivery does not pull them in either
    assert present(modules["xml"], "defusedxml")
