"""Every function in template.yaml can start: its handler exists, it runs on the agreed runtime with the shared layer,
its artifact holds only its own folder, and it logs as JSON to a log group with a retention."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "python3.13"


def load_handler(root: Path, code_uri: str, handler: str, module_name: str) -> Any:
    """Import `<code_uri>/<module>.py` for a Lambda `Handler` of the form `module.function` and return the attribute."""
    module_path, _, function_name = handler.rpartition(".")
    source = root / code_uri / (module_path.replace(".", "/") + ".py")
    if not source.is_file():
        raise FileNotFoundError(f"handler {handler!r} needs {source.relative_to(root)}, which does not exist")
    spec = importlib.util.spec_from_file_location(module_name, source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        # A unique, temporary name: two functions' app.py must not shadow each other or a real package.
        del sys.modules[module_name]
    return getattr(module, function_name)


def test_template_declares_the_webhook_function(resources: dict[str, Any]) -> None:
    # Guards the per-function tests below against passing over an empty parameter list.
    assert resources["WebhookFunction"]["Type"] == "AWS::Serverless::Function"


def test_handler_resolves_to_a_callable(
    function_id: str, function_properties: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    properties = function_properties[function_id]
    # The literal part of the function's environment, as Lambda would set it before importing the module.
    for name, value in properties.get("Environment", {}).get("Variables", {}).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    handler = load_handler(REPO_ROOT, properties["CodeUri"], properties["Handler"], f"_template_handler_{function_id}")

    assert callable(handler)
    inspect.signature(handler).bind({}, None)  # Lambda calls handler(event, context)


def test_load_handler_returns_the_named_function_of_the_module(tmp_path: Path) -> None:
    (tmp_path / "functions" / "probe").mkdir(parents=True)
    (tmp_path / "functions" / "probe" / "app.py").write_text("def lambda_handler(event, context):\n    return 204\n")

    handler = load_handler(tmp_path, "functions/probe/", "app.lambda_handler", "_template_handler_probe")

    assert handler({}, None) == 204
    assert "_template_handler_probe" not in sys.modules


def test_load_handler_fails_loudly_when_the_module_or_function_is_missing(tmp_path: Path) -> None:
    (tmp_path / "functions" / "probe").mkdir(parents=True)
    (tmp_path / "functions" / "probe" / "app.py").write_text("def handler(event, context):\n    return 204\n")

    with pytest.raises(FileNotFoundError, match=r"functions/absent/app\.py"):
        load_handler(tmp_path, "functions/absent/", "app.lambda_handler", "_template_handler_absent")
    with pytest.raises(AttributeError, match="lambda_handler"):
        load_handler(tmp_path, "functions/probe/", "app.lambda_handler", "_template_handler_probe")


def test_code_uri_is_the_functions_own_folder(function_id: str, function_properties: dict[str, dict[str, Any]]) -> None:
    code_uri = function_properties[function_id]["CodeUri"]
    folder = REPO_ROOT / code_uri

    assert Path(code_uri).parent == Path("functions"), f"{function_id}: CodeUri {code_uri!r} is not functions/<name>/"
    assert folder.is_dir(), f"{function_id}: {code_uri} does not exist"
    shipped_extras = sorted(p.name for p in folder.iterdir() if p.name in {"tests", "events", "conftest.py"})
    assert shipped_extras == [], f"{function_id}: {code_uri} would ship {shipped_extras}"


def test_function_runs_on_the_agreed_runtime_with_the_shared_layer(
    function_id: str, function_properties: dict[str, dict[str, Any]]
) -> None:
    properties = function_properties[function_id]

    assert properties["Runtime"] == RUNTIME
    assert properties["Architectures"] == ["arm64"]
    assert properties["Tracing"] == "Active"
    assert {"Ref": "SharedLayer"} in properties["Layers"]


def test_function_logs_json_to_its_own_log_group_with_retention(
    function_id: str, function_properties: dict[str, dict[str, Any]], resources: dict[str, Any]
) -> None:
    logging_config = function_properties[function_id]["LoggingConfig"]
    log_group_ref = logging_config["LogGroup"]
    other_functions = [
        other_id
        for other_id, other in function_properties.items()
        if other_id != function_id and other["LoggingConfig"].get("LogGroup") == log_group_ref
    ]

    assert logging_config["LogFormat"] == "JSON"
    assert set(log_group_ref) == {"Ref"}, f"{function_id}: LoggingConfig.LogGroup must reference a template log group"
    log_group = resources[log_group_ref["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in log_group["Properties"]
    assert other_functions == []


def test_every_log_group_has_a_retention(resources: dict[str, Any]) -> None:
    log_groups = {logical_id: r for logical_id, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}

    assert log_groups, "template declares no log groups"
    assert [logical_id for logical_id, r in log_groups.items() if "RetentionInDays" not in r["Properties"]] == []


def test_shared_layer_is_built_by_sam_from_shared_for_the_functions_runtime(resources: dict[str, Any]) -> None:
    layer = resources["SharedLayer"]

    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Properties"]["CompatibleRuntimes"] == [RUNTIME]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    # Built by the repository's Makefile (tests/build inspects the artifact), never by SAM's python3.13 builder,
    # which needs that interpreter on the build machine.
    assert layer["Metadata"] == {"BuildMethod": "makefile", "ContextPath": "./", "BuildArchitecture": "arm64"}


def test_webhook_environment_names_its_resources_and_powertools_settings(
    function_properties: dict[str, dict[str, Any]],
) -> None:
    variables = function_properties["WebhookFunction"]["Environment"]["Variables"]

    assert variables["EVENTS_QUEUE_URL"] == {"Ref": "EventsQueue"}
    assert variables["DEDUPE_TABLE"] == {"Ref": "DedupeTable"}
    assert variables["PARTNER_SECRETS_ARN"] == {"Ref": "PartnerSecretsArn"}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "kaltura-webhook"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "KalturaAutomations"
    assert variables["LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_webhook_answers_within_the_http_api_integration_limit(function_properties: dict[str, dict[str, Any]]) -> None:
    # HTTP API gives up after 30 s and Kaltura would then retry an event that may already be enqueued.
    assert function_properties["WebhookFunction"]["Timeout"] < 30


AUTOMATION_ENVIRONMENT = {
    "EVENTS_QUEUE_URL": {"Ref": "EventsQueue"},
    "LEDGER_TABLE": {"Ref": "LedgerTable"},
    "REPORTS_BUCKET": {"Ref": "ReportsBucket"},
    "ALERTS_TOPIC_ARN": {"Ref": "AlertsTopic"},
    "PARTNER_SECRETS_ARN": {"Ref": "PartnerSecretsArn"},
    "AUTOMATION_CONFIG_PARAMETER": {"Ref": "AutomationConfigParameter"},
    "WORKER_TIMEOUT_SECONDS": {"Ref": "WorkerTimeoutSeconds"},
    "POWERTOOLS_METRICS_NAMESPACE": "KalturaAutomations",
    "LOG_LEVEL": {"Ref": "LogLevel"},
}


@pytest.mark.parametrize(
    ("automation_id", "code_uri", "service"),
    [("WorkerFunction", "functions/worker/", "kaltura-worker"), ("SweepFunction", "functions/sweep/", "kaltura-sweep")],
)
def test_automation_functions_name_exactly_the_resources_build_deps_reads(
    function_properties: dict[str, dict[str, Any]], automation_id: str, code_uri: str, service: str
) -> None:
    properties = function_properties[automation_id]

    assert properties["CodeUri"] == code_uri
    assert properties["Handler"] == "app.lambda_handler"
    assert properties["Environment"]["Variables"] == {**AUTOMATION_ENVIRONMENT, "POWERTOOLS_SERVICE_NAME": service}


def test_automation_config_parameter_holds_the_override_from_the_template_parameter(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    parameter = resources["AutomationConfigParameter"]["Properties"]

    assert parameter["Type"] == "String"
    assert parameter["Value"] == {"Ref": "AutomationConfig"}
    assert parameter["Name"] == {"Fn::Sub": "/${AWS::StackName}/automation-config"}
    assert template["Parameters"]["AutomationConfig"]["Default"] == "{}"


def test_sweep_finishes_well_before_the_next_run(function_properties: dict[str, dict[str, Any]]) -> None:
    # Runs every 15 minutes by default: a run must end long before the next one starts.
    assert function_properties["SweepFunction"]["Timeout"] <= 300
