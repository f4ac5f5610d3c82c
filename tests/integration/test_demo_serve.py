"""``make serve`` against the simulator: the printed curl example is accepted, Kaltura's clock moved through the local
control route makes the simulator notify the webhook and the background pollers run the workers (dry run: nothing
ordered), and the schedules fire on demand. Plus the settings read from the environment and the schedules read from
the template."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import clear_all_kauto_caches
from kauto_local.serve import (
    SIMULATOR_PARTNER_ID,
    Served,
    ServeSettings,
    SettingsError,
    check_configuration,
    schedules_from_template,
    serve_automation_config,
    serve_partner_secrets,
    serving,
    settings_from_env,
)
from kauto_local.stack import load_template

pytestmark = pytest.mark.integration

WAIT_SECONDS = 30.0


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait for the background pollers (real threads) to get somewhere; fails after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def served(moto_aws: str) -> Iterator[Served]:
    settings = settings_from_env({})
    settings = ServeSettings(0, settings.dry_run, settings.hash_algorithm, None, {}, None)  # any free port
    stop = threading.Event()
    with serving(settings, io.StringIO(), stop) as running:
        yield running
    clear_all_kauto_caches()


def test_the_printed_curl_example_is_accepted_and_the_worker_decides_in_dry_run(served: Served) -> None:
    example = served.example
    assert example is not None and served.sim is not None
    for name, value in example.headers.items():
        assert f"-H '{name}: {value}'" in example.command

    status, answer = http("POST", example.url, example.body_path.read_bytes(), dict(example.headers))
    unsigned = {k: v for k, v in example.headers.items() if k != "X-KALTURA-SIGNATURE"}
    rejected, _ = http("POST", example.url, example.body_path.read_bytes(), unsigned)

    assert (status, answer["outcome"]) == (200, "accepted")
    assert rejected == 401
    wait_for(lambda: served.product.depth("EventsQueueUrl") == 0, "the worker")
    assert served.sim.tasks(SIMULATOR_PARTNER_ID) == []  # dry run: decided, never ordered
    assert served.sim.calls_to("baseEntry", "get")  # the worker read the entry from Kaltura
    # The decision shows in the status, not only in log lines.
    _, state = http("GET", f"{served.product.endpoint.url}/_local/status")
    [decision] = [fact for fact in state["decisions"] if fact["kind"] == "caption_decision"]
    assert (decision["outcome"], decision["subject_type"]) == ("dry_run", "entry")
    assert any(fact["kind"] == "notification_handled" for fact in state["decisions"])


def test_moving_kaltura_s_clock_notifies_the_webhook_and_the_session_reports_land_in_s3(served: Served) -> None:
    base = served.product.endpoint.url

    status, advanced = http("POST", f"{base}/_local/simulator/advance?seconds=600")

    # Two entries finish converting and the room session ends: Kaltura notifies each (none ordered: dry run).
    assert status == 200
    assert (advanced["advanced_seconds"], advanced["notifications_sent"]) == (600, 3)
    assert all(attempt.status == 200 for d in served.sim.dispatcher.deliveries for attempt in d.attempts)
    wait_for(lambda: any(key.endswith("manifest.json") for key in served.product.objects("sessions/")), "reports")
    wait_for(lambda: served.product.depth("EventsQueueUrl") == 0, "the worker")
    _, state = http("GET", f"{base}/_local/status")
    assert {key.rsplit("/", 1)[-1] for key in state["objects"]} == {
        "manifest.json",
        "summary.html",
        "room_data.csv",
        "attendees.csv",
        "breakouts.csv",
    }
    assert state["queues"]["EventsDeadLetterQueue"] == 0
    assert served.sim.tasks(SIMULATOR_PARTNER_ID) == []
    # Kaltura's clock never catches up with the wall clock (its news must be in the automations' past).
    _, capped = http("POST", f"{base}/_local/simulator/advance?seconds=86400")
    assert capped["advanced_seconds"] < 86400
    assert capped["simulator_time"] <= time.time() - 600
    assert http("POST", f"{base}/_local/simulator/advance?seconds=-5")[0] == 400


def test_schedules_fire_on_demand_with_their_input_or_the_body(served: Served) -> None:
    base = served.product.endpoint.url

    status, sweep = http("POST", f"{base}/_local/schedules/sweep")
    weekly_status, weekly = http("POST", f"{base}/_local/schedules/weekly-reports", b'{"week": "2026-W01"}')

    assert status == 200 and sweep["result"]["partners"] == 1
    assert weekly_status == 200 and (weekly["result"]["started"], weekly["result"]["jobs"]) == (1, 9)
    wait_for(lambda: served.product.depth("ReportJobsQueueUrl") == 0, "the report worker")
    wait_for(lambda: bool(served.product.objects("weekly/partner_id=1234567/week=2026-W01/digest.html")), "the digest")
    assert http("POST", f"{base}/_local/schedules/nightly")[0] == 404
    assert http("POST", f"{base}/_local/schedules/sweep", b"{not json")[0] == 400


def test_schedules_are_read_from_the_template() -> None:
    schedules = schedules_from_template(load_template(), {})

    assert {name: (s.function_id, s.expression, s.time_zone, dict(s.input)) for name, s in schedules.items()} == {
        "sweep": ("SweepFunction", "rate(15 minutes)", "UTC", {}),
        "weekly-reports": ("WeeklySchedulerFunction", "cron(0 6 ? * MON *)", "UTC", {}),
    }


def test_settings_default_to_the_simulator_in_dry_run_and_name_the_variable_that_is_wrong() -> None:
    default = settings_from_env({})
    real = settings_from_env(
        {
            "KALTURA_SERVICE_URL": "https://www.kaltura.com/",
            "KALTURA_PARTNER_ID": "4321",
            "KALTURA_ADMIN_SECRET": "fake-secret",
            "KALTURA_APP_TOKEN_ID": "0_tok",
            "KALTURA_APP_TOKEN": "fake-token",
            "KAUTO_WEBHOOK_HASH": "SHA1",
            "KAUTO_PORT": "9000",
            "KAUTO_DRY_RUN": "0",
        }
    )

    assert (default.kaltura, default.dry_run, default.hash_algorithm, default.port) == (None, True, "sha256", 8080)
    assert (real.partner_id, real.dry_run, real.hash_algorithm, real.port) == (4321, False, "sha1", 9000)
    assert serve_partner_secrets(real, None) == {
        "partners": {
            "4321": {
                "admin_secret": "fake-secret",
                "service_url": "https://www.kaltura.com",
                "app_token": {"id": "0_tok", "token": "fake-token"},
                "webhook_hash_algorithms": ["sha1"],
            }
        }
    }
    for env, variable in (
        ({"KALTURA_SERVICE_URL": "https://www.kaltura.com"}, "KALTURA_PARTNER_ID"),
        ({"KAUTO_WEBHOOK_HASH": "md5"}, "KAUTO_WEBHOOK_HASH"),
        ({"KAUTO_PORT": "http"}, "KAUTO_PORT"),
        ({"KAUTO_DRY_RUN": "maybe"}, "KAUTO_DRY_RUN"),
        ({"KAUTO_CONFIG_FILE": "/nonexistent/config.json"}, "KAUTO_CONFIG_FILE"),
    ):
        with pytest.raises(SettingsError, match=variable):
            settings_from_env(env)


def test_serve_refuses_a_broken_document_with_the_checker_lines() -> None:
    secrets = {"partners": {"4321": {"admin_secret": "fake-secret", "webhook_hash_algorithms": ["sha1"]}}}
    config = {"partners": {"4321": {"captions": {"enabeld": True}, "thresholds": {"unique_users_below": -1}}}}

    with pytest.raises(SettingsError) as refused:
        check_configuration(secrets, config)

    assert str(refused.value).splitlines() == [
        "the configuration is invalid (kauto-config check):",
        "automation config: partners.4321.captions.enabeld: unknown setting; did you mean `enabled`?",
        "automation config: partners.4321.thresholds.unique_users_below: a whole number >= 0 or null",
    ]


def test_only_the_environment_turns_real_orders_on() -> None:
    override = {"partners": {"1234567": {"captions": {"dry_run": False, "min_duration_seconds": 60}}}}
    dry = ServeSettings(8080, True, "sha256", None, override, None)
    live = ServeSettings(8080, False, "sha256", None, {}, None)

    assert serve_automation_config(dry) == {
        "partners": {"1234567": {"captions": {"enabled": True, "dry_run": True, "min_duration_seconds": 60}}}
    }
    assert serve_automation_config(live)["partners"]["1234567"]["captions"] == {"enabled": True, "dry_run": False}
