"""Threshold alerts on pulled room-session data: low engagement, few unique users, disengaged attendees.

The metrics are accumulated while the session's CSVs stream to S3 (:class:`SessionMetrics` sees each source row
once, through the cleaner's row filter), so nothing is read back. Rules are per partner
(``thresholds`` in the automation configuration; ``null`` turns a rule off):

- ``session_engagement_low``: report 6000's ``meeting_engaged_play_time_ratio`` of the session is below
  ``session_engagement_rate_below`` (a ratio between 0 and 1, as Kaltura reports it).
- ``session_unique_users_low``: report 6000's ``meeting_view_period_unique_users`` is below ``unique_users_below``.
- ``attendee_engagement_low``: at least one attendee of report 6001 has a ``meeting_engaged_play_time_ratio`` below
  ``attendee_engagement_below``; the alert carries counts only.

Alerts carry ids, counts, ratios and S3 links, never names or e-mail addresses (those stay in the bucket). Each fires at
most once per (rule, session) whatever the redeliveries: the dedupe key is ``<room entry id>/<session id>`` and
:class:`kauto.aws.alerts.AlertPublisher` claims it in the ledger. The REACH rules (``reach_task_failed``,
``reach_task_stuck``, ``reach_credit``) live with the caption and task automations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kauto.automation_config import ThresholdRules
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, AlertOutcome, AlertPublisher, Severity

SESSION_ENGAGEMENT_LOW = "session_engagement_low"
SESSION_UNIQUE_USERS_LOW = "session_unique_users_low"
ATTENDEE_ENGAGEMENT_LOW = "attendee_engagement_low"

ENGAGEMENT_COLUMN = "meeting_engaged_play_time_ratio"
UNIQUE_USERS_COLUMN = "meeting_view_period_unique_users"
_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Which session a set of metrics is about."""

    partner_id: int
    room_entry_id: str
    session_id: str

    @property
    def subject_key(self) -> str:
        """``<room>/<session>``: the alert dedupe key, so each rule fires once per session."""
        return f"{self.room_entry_id}/{self.session_id}"


class SessionMetrics:
    """Aggregates of one session's reports, fed row by row while the CSVs stream.

    ``attendee_engagement_below`` is the threshold attendees are counted against (``None``: not counted).
    Malformed numbers are counted in ``unparsable_values`` and otherwise ignored.
    """

    def __init__(self, *, attendee_engagement_below: float | None = None) -> None:
        self.attendee_engagement_below = attendee_engagement_below
        self.session_row_found = False
        self.unique_users: int | None = None
        self.engagement_rate: float | None = None
        self.session_start: int | None = None
        self.session_end: int | None = None
        self.attendees = 0
        self.attendees_with_rate = 0
        self.attendees_below = 0
        self.breakouts = 0
        self.unparsable_values = 0

    def observe_session_row(self, row: Mapping[str, str]) -> None:
        """The report 6000 row of the session itself (not one of its breakouts)."""
        self.session_row_found = True
        self.unique_users = self._int(row.get(UNIQUE_USERS_COLUMN))
        self.engagement_rate = self._float(row.get(ENGAGEMENT_COLUMN))
        self.session_start = self._int(row.get("session_start_time"))
        self.session_end = self._int(row.get("session_end_time"))

    def observe_attendee(self, row: Mapping[str, str]) -> None:
        """One report 6001 row of the session."""
        self.attendees += 1
        rate = self._float(row.get(ENGAGEMENT_COLUMN))
        if rate is None:
            return
        self.attendees_with_rate += 1
        if self.attendee_engagement_below is not None and rate < self.attendee_engagement_below:
            self.attendees_below += 1

    def observe_breakout(self, row: Mapping[str, str]) -> None:
        """One report 6002 row of the session."""
        self.breakouts += 1

    def summary(self) -> dict[str, int | float | bool | None]:
        """Counts and ratios only (safe for the ledger, logs and alerts)."""
        return {
            "session_row_found": self.session_row_found,
            "unique_users": self.unique_users,
            "engagement_rate": self.engagement_rate,
            "attendees": self.attendees,
            "attendees_below": self.attendees_below if self.attendee_engagement_below is not None else None,
            "breakouts": self.breakouts,
        }

    def _int(self, raw: str | None) -> int | None:
        number = self._float(raw)
        return None if number is None else int(number)

    def _float(self, raw: str | None) -> float | None:
        if raw is None or not raw.strip():
            return None
        try:
            number = float(raw)
        except ValueError:
            self.unparsable_values += 1
            return None
        if not math.isfinite(number):
            self.unparsable_values += 1
            return None
        return number


def session_alerts(
    session: SessionKey, metrics: SessionMetrics, rules: ThresholdRules, *, links: Mapping[str, str]
) -> list[Alert]:
    """The alerts ``metrics`` trigger under ``rules``. ``links`` maps report names (``room_data``, ``attendees``,
    ``manifest``...) to S3 URIs; each alert links the files it is about and the manifest."""
    alerts: list[Alert] = []
    context = _session_details(session, metrics)
    rate = metrics.engagement_rate
    rate_below = rules.session_engagement_rate_below
    if rate_below is not None and rate is not None and rate < rate_below:
        alerts.append(
            Alert(
                rule=SESSION_ENGAGEMENT_LOW,
                severity=Severity.WARNING,
                partner_id=session.partner_id,
                subject=f"Low engagement in room session {session.subject_key}",
                summary=(
                    f"Room {session.room_entry_id}, session {session.session_id}: engagement rate "
                    f"{rate:.2f} is below {rate_below:g}."
                ),
                details={**context, "threshold": rate_below},
                links=_links(links, "room_data", "manifest"),
            )
        )
    users = metrics.unique_users
    if rules.unique_users_below is not None and users is not None and users < rules.unique_users_below:
        alerts.append(
            Alert(
                rule=SESSION_UNIQUE_USERS_LOW,
                severity=Severity.INFO,
                partner_id=session.partner_id,
                subject=f"Few participants in room session {session.subject_key}",
                summary=(
                    f"Room {session.room_entry_id}, session {session.session_id}: {users} unique users, "
                    f"fewer than {rules.unique_users_below}."
                ),
                details={**context, "threshold": rules.unique_users_below},
                links=_links(links, "room_data", "manifest"),
            )
        )
    below = rules.attendee_engagement_below
    if below != metrics.attendee_engagement_below:
        raise ValueError("metrics were gathered for another attendee_engagement_below threshold")
    if below is not None and metrics.attendees_below > 0:
        alerts.append(
            Alert(
                rule=ATTENDEE_ENGAGEMENT_LOW,
                severity=Severity.INFO,
                partner_id=session.partner_id,
                subject=f"Disengaged attendees in room session {session.subject_key}",
                summary=(
                    f"Room {session.room_entry_id}, session {session.session_id}: {metrics.attendees_below} of "
                    f"{metrics.attendees_with_rate} attendees have an engagement rate below {below:g}."
                ),
                details={
                    **context,
                    "threshold": below,
                    "attendees_with_rate": metrics.attendees_with_rate,
                    "attendees_below": metrics.attendees_below,
                    "share_below": round(metrics.attendees_below / metrics.attendees_with_rate, 4),
                },
                links=_links(links, "attendees", "manifest"),
            )
        )
    return alerts


def publish_session_alerts(
    publisher: AlertPublisher,
    session: SessionKey,
    metrics: SessionMetrics,
    rules: ThresholdRules,
    *,
    links: Mapping[str, str],
) -> list[AlertOutcome]:
    """Evaluate and publish; each alert at most once per (rule, session) however often this runs."""
    outcomes = []
    for alert in session_alerts(session, metrics, rules, links=links):
        outcome = publisher.publish(alert, dedupe_key=session.subject_key)
        logger.info(
            "session threshold alert",
            extra={"alert": alert.rule, "published": outcome.published, "session_id": session.session_id},
        )
        if outcome.published:
            count("SessionThresholdAlert", rule=alert.rule)
        outcomes.append(outcome)
    return outcomes


def _session_details(session: SessionKey, metrics: SessionMetrics) -> dict[str, object]:
    return {
        "entry_id": session.room_entry_id,
        "session_id": session.session_id,
        "session_start": _iso(metrics.session_start),
        "session_end": _iso(metrics.session_end),
        "unique_users": metrics.unique_users,
        "engagement_rate": metrics.engagement_rate,
        "attendees": metrics.attendees,
        "breakouts": metrics.breakouts,
    }


def _iso(moment: int | None) -> str | None:
    if moment is None or not 0 <= moment <= _LATEST_TIMESTAMP:
        return None
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(links: Mapping[str, str], *names: str) -> tuple[str, ...]:
    return tuple(links[name] for name in names if name in links)
