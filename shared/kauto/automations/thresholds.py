"""Threshold alerts on pulled room-session data: low engagement, few unique users, disengaged attendees.

The metrics are accumulated while the session's CSVs stream to S3 (:class:`SessionMetrics` sees each source row
once, through the cleaner's row filter), so nothing is read back. Rules are per partner
(``thresholds`` in the automation configuration; ``null`` turns a rule off):

- ``session_engagement_low``: report 6000's ``meeting_engaged_play_time_ratio`` of the session is below
  ``session_engagement_rate_below`` (a ratio between 0 and 1, as Kaltura reports it).
- ``session_unique_users_low``: report 6000's ``meeting_view_period_unique_users`` is below ``unique_users_below``.
- ``attendee_engagement_low``: at least one attendee of report 6001 has a ``meeting_engaged_play_time_ratio`` below
  ``attendee_engagement_below``; the alert carries counts only.

Participation rules, on the session's attendees (report 6001) and its chat-and-collaboration reports
(:class:`ParticipationCounts`, counted from the files written):

- ``poll_participation_low``: polls were held and the share of attendees who answered one is below
  ``poll_participation_below``.
- ``chat_participation_low``: the share of attendees who sent a group chat message is below
  ``chat_participation_below``.
- ``unresolved_moderation_high``: more moderation threads than ``unresolved_moderation_above`` are still pending or
  owned (not resolved or done).
- ``session_zero_attendees``: with ``alert_on_zero_attendees``, a session report 6001 lists nobody for.

A rule whose report was not pulled (not configured, or failed) is not evaluated. Every alert of a session links
its summary page when one was written.

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

POLL_PARTICIPATION_LOW = "poll_participation_low"
CHAT_PARTICIPATION_LOW = "chat_participation_low"
UNRESOLVED_MODERATION_HIGH = "unresolved_moderation_high"
SESSION_ZERO_ATTENDEES = "session_zero_attendees"

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

    _STATE_FIELDS = (
        "session_row_found",
        "unique_users",
        "engagement_rate",
        "session_start",
        "session_end",
        "attendees",
        "attendees_with_rate",
        "attendees_below",
        "breakouts",
        "unparsable_values",
    )

    def to_state(self) -> dict[str, int | float | bool | str | None]:
        """Everything gathered so far (counts and ratios only), to continue in a later delivery."""
        state: dict[str, int | float | bool | str | None] = {name: getattr(self, name) for name in self._STATE_FIELDS}
        # Ratios travel as text: the ledger keeps numbers exact, and a float would not round-trip as one.
        state["engagement_rate"] = None if self.engagement_rate is None else repr(self.engagement_rate)
        return state

    @classmethod
    def from_state(
        cls, state: Mapping[str, object], *, attendee_engagement_below: float | None = None
    ) -> SessionMetrics:
        """Back from :meth:`to_state` (numbers may come back from the ledger as ``Decimal``)."""
        metrics = cls(attendee_engagement_below=attendee_engagement_below)
        for name in cls._STATE_FIELDS:
            value = state.get(name)
            if name == "session_row_found":
                metrics.session_row_found = bool(value)
            elif name == "engagement_rate":
                metrics.engagement_rate = None if value is None else float(str(value))
            elif value is not None:
                setattr(metrics, name, int(str(value)))
        return metrics

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


@dataclass(frozen=True, slots=True)
class ParticipationCounts:
    """Counts from a session's files (``None``: the report behind it was not pulled)."""

    attendees: int | None = None
    polls: int | None = None
    poll_respondents: int | None = None
    chatters: int | None = None
    unresolved_threads: int | None = None


def participation_alerts(
    session: SessionKey, counts: ParticipationCounts, rules: ThresholdRules, *, links: Mapping[str, str]
) -> list[Alert]:
    """The participation alerts ``counts`` trigger under ``rules`` (counts and shares only, never names)."""
    alerts: list[Alert] = []
    where = f"Room {session.room_entry_id}, session {session.session_id}"
    context: dict[str, object] = {
        "entry_id": session.room_entry_id,
        "session_id": session.session_id,
        "attendees": counts.attendees,
    }
    page = _links(links, "summary_page", "manifest")
    attendees = counts.attendees

    def share_alert(rule: str, what: str, count: int, threshold: float, extra: dict[str, object]) -> Alert:
        share = count / attendees if attendees else 0.0
        verb = extra.pop("verb")
        return Alert(
            rule=rule,
            severity=Severity.INFO,
            partner_id=session.partner_id,
            subject=f"Low {what} in room session {session.subject_key}",
            summary=f"{where}: {count} of {attendees} attendees ({share:.0%}) {verb}, below {threshold:.0%}.",
            details={**context, **extra, "share": round(share, 4), "threshold": threshold},
            links=page,
        )

    poll_below = rules.poll_participation_below
    respondents = counts.poll_respondents
    if (
        poll_below is not None
        and attendees
        and counts.polls
        and respondents is not None
        and respondents / attendees < poll_below
    ):
        alerts.append(
            share_alert(
                POLL_PARTICIPATION_LOW,
                "poll participation",
                respondents,
                poll_below,
                {"verb": "answered a poll", "polls": counts.polls, "poll_respondents": respondents},
            )
        )
    chat_below = rules.chat_participation_below
    if (
        chat_below is not None
        and attendees
        and counts.chatters is not None
        and counts.chatters / attendees < chat_below
    ):
        alerts.append(
            share_alert(
                CHAT_PARTICIPATION_LOW,
                "chat participation",
                counts.chatters,
                chat_below,
                {"verb": "sent a chat message", "chatters": counts.chatters},
            )
        )
    above = rules.unresolved_moderation_above
    if above is not None and counts.unresolved_threads is not None and counts.unresolved_threads > above:
        alerts.append(
            Alert(
                rule=UNRESOLVED_MODERATION_HIGH,
                severity=Severity.WARNING,
                partner_id=session.partner_id,
                subject=f"Unresolved moderation threads in room session {session.subject_key}",
                summary=f"{where}: {counts.unresolved_threads} moderation threads unresolved, more than {above}.",
                details={**context, "unresolved_threads": counts.unresolved_threads, "threshold": above},
                links=page,
            )
        )
    if rules.alert_on_zero_attendees and attendees == 0:
        alerts.append(
            Alert(
                rule=SESSION_ZERO_ATTENDEES,
                severity=Severity.INFO,
                partner_id=session.partner_id,
                subject=f"Nobody attended room session {session.subject_key}",
                summary=f"{where}: report 6001 lists no attendee.",
                details=context,
                links=page,
            )
        )
    return alerts


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
                links=_links(links, "room_data", "summary_page", "manifest"),
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
                links=_links(links, "room_data", "summary_page", "manifest"),
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
                links=_links(links, "attendees", "summary_page", "manifest"),
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
    participation: ParticipationCounts | None = None,
) -> list[AlertOutcome]:
    """Evaluate and publish; each alert at most once per (rule, session) however often this runs."""
    outcomes = []
    alerts = session_alerts(session, metrics, rules, links=links)
    if participation is not None:
        alerts += participation_alerts(session, participation, rules, links=links)
    for alert in alerts:
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
