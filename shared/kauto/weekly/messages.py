"""The messages on ReportJobsQueue, as JSON objects with a ``type``.

- ``weekly_job`` (:class:`JobMessage`): run step ``step`` of the job for ``report`` in run ``run_id`` of
  (``partner_id``, ``week``). It is a nudge, not the work itself: the report entry, the window and any checkpoint
  live in the job's ledger row (:mod:`kauto.weekly.runs`), so a message stays tiny and a redelivered or duplicated
  one is recognised by its step.
- ``weekly_digest`` (:class:`DigestRequest`): every job of the run of (``partner_id``, ``week``) has finished; build
  the digest (:func:`kauto.weekly.digest.build_digest`).
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

from kauto.errors import KautoError

JOB_TYPE = "weekly_job"
DIGEST_TYPE = "weekly_digest"
_WEEK = re.compile(r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_REPORT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class MalformedMessageError(KautoError, ValueError):
    """A queue message is not one of ours or lacks a field; ``field`` names it. Retrying cannot help."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"weekly message field {field}: {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class JobMessage:
    """Run step ``step`` of one report job."""

    partner_id: int
    week: str
    run_id: str
    report: str
    step: int = 0

    def to_json(self) -> str:
        """The message body."""
        return json.dumps(
            {
                "type": JOB_TYPE,
                "partner_id": self.partner_id,
                "week": self.week,
                "run_id": self.run_id,
                "report": self.report,
                "step": self.step,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True, slots=True)
class DigestRequest:
    """All jobs of the week's run have finished: build the partner's digest."""

    partner_id: int
    week: str

    def to_json(self) -> str:
        """The message body: ``{"type": "weekly_digest", "partner_id": ..., "week": ...}``."""
        return json.dumps(
            {"type": DIGEST_TYPE, "partner_id": self.partner_id, "week": self.week}, separators=(",", ":")
        )


WeeklyMessage = JobMessage | DigestRequest


def parse_message(body: str) -> WeeklyMessage:
    """Parse a message body; raises :class:`MalformedMessageError` naming the bad field."""
    try:
        document = json.loads(body)
    except (TypeError, ValueError):
        raise MalformedMessageError("body", "not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessageError("body", "not a JSON object")
    kind = document.get("type")
    partner_id = _partner_id(document.get("partner_id"))
    week = check_week(document.get("week"))
    if kind == DIGEST_TYPE:
        return DigestRequest(partner_id, week)
    if kind != JOB_TYPE:
        raise MalformedMessageError("type", f"expected {JOB_TYPE} or {DIGEST_TYPE}")
    run_id = document.get("run_id")
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise MalformedMessageError("run_id", "must be a 32-character hex run id")
    report = document.get("report")
    if not isinstance(report, str) or not _REPORT.fullmatch(report):
        raise MalformedMessageError("report", "must be a report name")
    step = document.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise MalformedMessageError("step", "must be a non-negative integer")
    return JobMessage(partner_id, week, run_id, report, step)


def check_week(value: Any) -> str:
    """``value`` if it is an ISO week label ``YYYY-Www`` that exists, else :class:`MalformedMessageError`."""
    if not isinstance(value, str) or not _WEEK.fullmatch(value):
        raise MalformedMessageError("week", "must be an ISO week like 2026-W03")
    year, week = int(value[:4]), int(value[6:])
    try:  # week 53 exists only in long ISO years
        datetime.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise MalformedMessageError("week", f"{value} does not exist") from None
    return value


def _partner_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MalformedMessageError("partner_id", "must be a positive integer")
    return value
