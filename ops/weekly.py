"""Backfill of weekly runs: one scheduler invocation per ISO week, exactly what the weekly schedule sends.

The weekly scheduler function (:mod:`kauto.weekly.scheduler`) takes ``{"partner_id": P, "week": "YYYY-Www",
"force": false}`` and starts the run of (P, week) once: a week that already has a run is reported as a duplicate and
nothing is sent again (``force`` replaces the run and rewrites the same keys). The backfill invokes it synchronously
per week so the operator sees each week's outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kauto.aws.ledger import STATE_ATTRIBUTE, Ledger
from kauto.weekly.runs import iso_week_of, run_key
from kauto_ops.stack import OpsError

MAX_WEEKS = 104
"""Two years per command: each week is one synchronous invocation."""


@dataclass(frozen=True, slots=True)
class WeekBackfill:
    """One week of the range: the run state found before (``None``: no run) and the scheduler's totals."""

    week: str
    existing_state: str | None
    totals: Mapping[str, Any] | None = None


def iso_weeks(first: date, last: date) -> list[str]:
    """The ISO weeks (``YYYY-Www``) that overlap ``[first, last]``, in order."""
    if last < first:
        raise OpsError(f"--to {last.isoformat()} is before --from {first.isoformat()}")
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(iso_week_of(monday))
        monday += timedelta(days=7)
    if len(weeks) > MAX_WEEKS:
        raise OpsError(f"the range covers {len(weeks)} weeks, more than {MAX_WEEKS}; split it into several runs")
    return weeks


def check_ended(weeks: list[str], today: date) -> None:
    """Refuse weeks whose Sunday is today or later: their reports would miss days."""
    for week in weeks:
        sunday = date.fromisocalendar(int(week[:4]), int(week[6:]), 7)
        if sunday >= today:
            raise OpsError(f"week {week} has not ended yet (it ends on {sunday.isoformat()}); end --to earlier")


def backfill_weeks(
    lambda_client: Any,
    function_name: str,
    partner_id: int,
    weeks: list[str],
    *,
    ledger: Ledger | None,
    force: bool,
    dry_run: bool,
) -> list[WeekBackfill]:
    """Start (or with ``dry_run`` only list) the run of each week; ``ledger`` (optional) shows runs that exist."""
    results = []
    for week in weeks:
        row = ledger.get(*run_key(partner_id, week)) if ledger is not None else None
        state = str(row.get(STATE_ATTRIBUTE)) if row is not None else None
        if dry_run:
            results.append(WeekBackfill(week, state))
            continue
        payload = {"partner_id": partner_id, "week": week, "force": force}
        results.append(WeekBackfill(week, state, invoke_scheduler(lambda_client, function_name, payload)))
    return results


def invoke_scheduler(lambda_client: Any, function_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Invoke the scheduler function and return its totals; :class:`OpsError` when the invocation or function fails."""
    try:
        response = lambda_client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read()
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        raise OpsError(f"cannot invoke {function_name}: {code or type(error).__name__}") from error
    try:
        result = json.loads(body) if body else None
    except ValueError:
        result = None
    if response.get("FunctionError"):
        message = result.get("errorMessage") if isinstance(result, dict) else None
        raise OpsError(f"{function_name} failed for week {payload['week']}: {message or 'see its logs'}")
    if not isinstance(result, dict):
        raise OpsError(f"{function_name} returned no totals for week {payload['week']}")
    return result
