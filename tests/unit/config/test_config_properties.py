"""Property tests: whatever the documents hold, the loaders raise nothing but configuration errors, never echo a
secret value, and a document they accept loads fully (nothing fails later, when the schedule fires)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kauto.automation_config import build_automation_config, parse_automation_config
from kauto.config import parse_partner_secrets
from kauto.errors import ConfigError
from kauto.validation import ConfigErrors
from kauto.weekly.config import parse_weekly_config

SECRETS = ("s3cr3t-admin-7f1c2b", "t0ken-value-9a8b7c", "0ld-s3cret-4d5e6f")
KEYS = (
    "partners", "defaults", "weekly", "admin_secret", "previous_admin_secret", "webhook_hash_algorithms", "app_token",
    "token", "id", "hash_type", "service_url", "session_mode", "captions", "enabled", "catalog_item", "reports",
    "thresholds", "session_engagement_rate_below", "time_zone", "name", "surface", "report_type", "params",
    "week_over_week", "metric", "sweep", "overlap_seconds", "1234567", "7654321", "0", "abc",
)  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(SECRETS)
    | st.sampled_from(("sha256", "md5", "auto", "getTable", "Europe/Berlin", "Mars/X", "https://www.kaltura.com"))
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)

VALID_SECRET: dict[str, Any] = {
    "partners": {
        "1234567": {
            "admin_secret": SECRETS[0],
            "previous_admin_secret": SECRETS[2],
            "webhook_hash_algorithms": ["sha256", "sha1"],
            "app_token": {"id": "0_abc", "token": SECRETS[1], "hash_type": "SHA256"},
            "session_mode": "app_token",
        },
        "7654321": {"admin_secret": SECRETS[0], "webhook_hash_algorithms": ["sha512"]},
    }
}
VALID_AUTOMATION: dict[str, Any] = {
    "defaults": {"captions": {"min_duration_seconds": 30}, "sweep": {"overlap_seconds": 600}},
    "partners": {
        "1234567": {
            "captions": {"enabled": True, "catalog_item": {"source_language": "Spanish"}, "exclude_tags": ["x"]},
            "thresholds": {"session_engagement_rate_below": 0.3, "unique_users_below": 3},
        }
    },
    "weekly": {
        "time_zone": "Europe/Berlin",
        "reports": [
            {"name": "top", "surface": "getTable", "report_type": 1, "order": "-count_plays"},
            {"name": "rooms", "surface": "getCsvFromStringParams", "report_id": 6000},
            {"name": "polls", "surface": "reportsMicroservice", "report_name": "pollsActivity"},
        ],
        "week_over_week": [{"metric": "plays", "change_below_percent": -30}],
        "partners": {"7654321": {"enabled": False}},
    },
}


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of ``node`` (objects by key, lists by index)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with a few nodes replaced, removed, added to or wrapped."""
    document: Any = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths(document)))
        operation = draw(st.sampled_from(("replace", "delete", "add", "wrap")))
        if not path:
            document = draw(json_values) if operation == "replace" else document
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if operation == "replace":
            parent[last] = draw(json_values)
        elif operation == "delete":
            del parent[last]
        elif operation == "wrap":
            parent[last] = [parent[last]]
        elif isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(KEYS) | st.text(max_size=8))] = draw(json_values)
    return document


def assert_no_secret(text: str) -> None:
    assert not any(secret in text for secret in SECRETS), text


def check_secret_document(text: str) -> None:
    try:
        secrets = parse_partner_secrets(text)
    except ConfigError as error:
        assert_no_secret(str(error) + "".join(str(p) for p in getattr(error, "problems", ())))
        return
    assert_no_secret("".join(str(problem) for problem in secrets.problems))
    assert_no_secret(repr(secrets.partners) + "".join(repr(partner) for partner in secrets.partners.values()))
    for partner_id in secrets.partners:
        assert secrets.problems_of(partner_id) is None


def check_automation_document(text: str) -> None:
    try:
        config = parse_automation_config(text)
    except ConfigError as error:
        assert isinstance(error, ConfigErrors)
        assert_no_secret(str(error))
        return
    assert_no_secret("".join(str(problem) for problem in config.problems))
    # Accepted means usable: every partner's settings and the weekly set load without another error.
    weekly = parse_weekly_config(config.weekly)
    for partner_id in config.configured_partner_ids:
        config.partner(partner_id)
        weekly.for_partner(partner_id)
    weekly.scheduled_partners(config)


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(st.text(max_size=40) | json_values.map(json.dumps))
def test_any_text_or_json_as_the_partner_secret(text: str) -> None:
    check_secret_document(text)


@PROPERTY_SETTINGS
@given(mutated(VALID_SECRET))
def test_mutations_of_a_valid_partner_secret(document: Any) -> None:
    check_secret_document(json.dumps(document))


@PROPERTY_SETTINGS
@given(st.text(max_size=40) | json_values.map(json.dumps))
def test_any_text_or_json_as_the_automation_config(text: str) -> None:
    check_automation_document(text)


@PROPERTY_SETTINGS
@given(mutated(VALID_AUTOMATION))
def test_mutations_of_a_valid_automation_config(document: Any) -> None:
    check_automation_document(json.dumps(document))


def test_the_valid_documents_are_valid() -> None:
    assert set(parse_partner_secrets(json.dumps(VALID_SECRET)).partners) == {1234567, 7654321}
    assert build_automation_config(VALID_AUTOMATION).problems == ()


def test_deeply_nested_documents_are_configuration_errors() -> None:
    for depth in (40, 800, 5000):  # past the nesting bound, around the recursion limit, past json's own limit
        nested = "[" * depth + "]" * depth
        secret = json.dumps({"partners": {"1": {"admin_secret": "x", "webhook_hash_algorithms": ["sha256"]}}})
        check_secret_document(secret.replace('"x"', nested))
        check_automation_document(
            json.dumps({"partners": {"1": {"captions": {"media_types": []}}}}).replace("[]", nested)
        )
