"""The weekly fan-out: for each partner, start the run of its week and send one job message per report.

Triggered by EventBridge Scheduler (weekly, in the template's ``ScheduleTimezone``) with the schedule's input as the
event: ``{"partner_id"?: <id or list of ids>, "week"?: "YYYY-Www", "force"?: false}``. Without ``partner_id`` every
partner the configuration schedules (:meth:`WeeklyConfig.scheduled_partners`); without ``week`` the ISO week before
the current one in each partner's time zone. ``force`` replaces an existing run (backfill and replay). A duplicate
trigger (a scheduler retry, a second invocation) finds the run claimed and sends nothing (:func:`runs.start_run`).

One partner's failure does not stop the others; it is raised at the end so the schedule's retry policy and
dead-letter queue see it (a retry repeats nothing that succeeded: those runs are claimed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kauto.automations.telemetry import count, logger
from kauto.errors import KautoError
from kauto.weekly.deps import RunDeps
from kauto.weekly.messages import MalformedMessageError, check_week
from kauto.weekly.runs import RunStart, RunStartStatus, previous_week, start_run

_REQUEST_KEYS = frozenset({"partner_id", "week", "force"})
MAX_PARTNERS_PER_REQUEST = 1000


class ScheduleRequestError(KautoError, ValueError):
    """The schedule input is malformed; ``field`` names the bad key. Retrying cannot help."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"weekly schedule input {field_name}: {problem}")
        self.field = field_name


@dataclass(frozen=True, slots=True)
class ScheduleRequest:
    """Which runs to start: ``partner_ids`` None means every scheduled partner, ``week`` None the previous week."""

    partner_ids: tuple[int, ...] | None = None
    week: str | None = None
    force: bool = False

    @classmethod
    def from_event(cls, event: Any) -> ScheduleRequest:
        """Validate the scheduler's input (the invocation event); raises :class:`ScheduleRequestError`."""
        if event is None:
            return cls()
        if not isinstance(event, Mapping):
            raise ScheduleRequestError("event", "must be a JSON object")
        unknown = sorted(str(key) for key in event if key not in _REQUEST_KEYS)
        if unknown:
            raise ScheduleRequestError(unknown[0], "unknown key (allowed: partner_id, week, force)")
        week = event.get("week")
        if week is not None:
            try:
                check_week(week)
            except MalformedMessageError as error:
                raise ScheduleRequestError("week", str(error)) from None
        force = event.get("force", False)
        if not isinstance(force, bool):
            raise ScheduleRequestError("force", "must be true or false")
        return cls(partner_ids=_partner_ids(event.get("partner_id")), week=week, force=force)


@dataclass(frozen=True, slots=True)
class ScheduleReport:
    """What :func:`schedule_runs` did: one :class:`RunStart` per partner started, and the partners that failed."""

    runs: tuple[RunStart, ...]
    failures: Mapping[int, str] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        """Counts for the handler's response and logs."""
        totals = {"partners": len(self.runs) + len(self.failures), "failed": len(self.failures), "jobs": 0}
        for status in RunStartStatus:
            totals[status.value] = sum(1 for run in self.runs if run.status is status)
        totals["jobs"] = sum(run.jobs_sent for run in self.runs)
        return totals


class WeeklySchedulingError(KautoError):
    """Some partners' runs could not be started (the others were); ``report`` says which and why."""

    def __init__(self, report: ScheduleReport) -> None:
        failed = ", ".join(f"{pid} ({error})" for pid, error in sorted(report.failures.items()))
        super().__init__(f"weekly runs not started for partners {failed}")
        self.report = report


def schedule_runs(request: ScheduleRequest, deps: RunDeps, *, trigger: str) -> ScheduleReport:
    """Start the requested runs (see the module docstring); raises :class:`WeeklySchedulingError` after trying every
    partner when any failed."""
    partners = request.partner_ids
    if partners is None:
        partners = deps.weekly.scheduled_partners(deps.config)
    now = deps.clock()
    runs: list[RunStart] = []
    failures: dict[int, str] = {}
    for partner_id in partners:
        week = request.week or previous_week(now, deps.time_zone(partner_id))
        try:
            runs.append(start_run(partner_id, week, deps, trigger=trigger, force=request.force))
        except Exception as error:
            # Isolated per partner and raised below: the schedule's retry and DLQ still see it.
            logger.exception("weekly run not started", extra={"partner_id": partner_id, "week": week})
            count("WeeklyRunStartFailed", error=type(error).__name__)
            failures[partner_id] = type(error).__name__
    report = ScheduleReport(tuple(runs), failures)
    if failures:
        raise WeeklySchedulingError(report)
    return report


def _partner_ids(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_PARTNERS_PER_REQUEST:
        raise ScheduleRequestError("partner_id", f"give 1 to {MAX_PARTNERS_PER_REQUEST} partner ids")
    ids: list[int] = []
    for item in values:
        if isinstance(item, str) and item.isascii() and item.isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ScheduleRequestError("partner_id", "partner ids are positive integers")
        if item not in ids:
            ids.append(item)
    return tuple(ids)
