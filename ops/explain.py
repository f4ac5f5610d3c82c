"""``kauto-ops explain entry|task|session|notification ID --partner PID``: one timeline of what happened and why.

It reads two sources of the stack (``--stack``, resources from CloudFormation; with ``AWS_ENDPOINT_URL`` set, the
``make serve`` stack in moto):

- the audit trail in the reports bucket (:mod:`kauto.aws.audit`): every decision and side effect with its time, from
  the last ``--days`` days, deduplicated on ``fact_id``;
- the ledger table: the current state (decision rows, the caption order, the task row, the session row, permanent
  failures, alert claims, the webhook's dedupe row of a notification).

The timeline lists the facts oldest first; the state section shows the ledger rows; the last section says what to do
when something is stuck or failed, with the command that replays it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from kauto.automations.deps import DEFAULT_WORKER_TIMEOUT_SECONDS
from kauto.aws.clients import dynamodb_client, s3_client
from kauto.aws.ledger import DynamoLedger, Item, Ledger
from kauto_ops.stack import OpsError
from kauto_ops.stack_options import DEFAULT_STACK, Stack, add_stack_option, positive_int
from kauto_ops.trail import Fact, days_back, read_facts

SUBJECTS = ("entry", "task", "session", "notification")
DEFAULT_DAYS = 14
_TASK_FAILED = frozenset({"error", "rejected", "aborted"})
_TASK_OPEN = frozenset({"pending", "processing", "pending_moderation", "pending_entry_ready", "scheduled"})


def register(commands: Any) -> None:
    """Add ``explain`` to the ``kauto-ops`` subcommands."""
    parser = commands.add_parser(
        "explain",
        help="one timeline of an entry, REACH task, room session or notification: decisions, side effects, failures",
        description=(
            "What Kaltura notified, what was decided and why, what was ordered, each status change, the alerts, the "
            "S3 objects written and the failures, from the audit trail and the ledger; and the next step when "
            "something is stuck. Exit status 1 when nothing at all is recorded about it."
        ),
    )
    parser.add_argument("subject", choices=SUBJECTS, help="what ID names")
    parser.add_argument(
        "id",
        metavar="ID",
        help="entry id (1_abc), task id, session (cue point) id, or notification key (1234567:job:42, or the job id)",
    )
    parser.add_argument("--partner", required=True, type=positive_int, metavar="PID", help="Kaltura partner id")
    parser.add_argument(
        "--days", type=positive_int, default=DEFAULT_DAYS, help=f"days of audit trail to read (default {DEFAULT_DAYS})"
    )
    parser.add_argument("--room", metavar="ENTRY_ID", help="the room of a session (default: found in the trail)")
    add_stack_option(parser)
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """The ``explain`` command."""
    stack = Stack(args.stack)
    s3 = s3_client()
    bucket = stack.resource("ReportsBucket")
    ledger = DynamoLedger(dynamodb_client(), stack.resource("LedgerTable"))
    out.write(f"Reading {args.days} day(s) of audit trail from s3://{bucket}/audit/partner_id={args.partner}/ ...\n")
    facts = read_facts(s3, bucket, args.partner, days_back(args.days))
    context = Context(args.partner, ledger, facts, stack.name, time.time(), dedupe_row=_dedupe_reader(stack))
    explanation = EXPLAINERS[args.subject](context, args.id, args.room)
    out.write(explanation.render(bucket))
    return 0 if explanation.found else 1


@dataclass
class Context:
    """What an explainer reads: the partner's facts, the ledger, the stack name (for the commands it suggests)."""

    partner: int
    ledger: Ledger
    facts: list[Fact]
    stack: str
    now: float
    dedupe_row: Callable[[str], Item | None] = lambda _key: None

    def command(self, text: str) -> str:
        """A ``kauto-ops`` command line for this partner and stack."""
        stack = "" if self.stack == DEFAULT_STACK else f" --stack {self.stack}"
        return f"kauto-ops {text} --partner {self.partner}{stack}"


@dataclass
class Explanation:
    """The three sections of the answer."""

    title: str
    facts: list[Fact] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.facts or self.state)

    def render(self, bucket: str) -> str:
        lines = [self.title, "", "Timeline (audit trail):"]
        lines += [f"  {fact.get('at', '?')}  {describe(fact, bucket)}" for fact in self.facts] or ["  (nothing)"]
        lines += ["", "Now (ledger):"]
        lines += [f"  {line}" for line in self.state] or ["  (no ledger rows)"]
        lines += ["", "Next step:"]
        lines += [f"  {line}" for line in self.next_steps] or ["  nothing to do"]
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ subjects


def explain_entry(context: Context, entry_id: str, _room: str | None = None) -> Explanation:
    explanation = Explanation(f"Entry {entry_id} of partner {context.partner}")
    rows = list(context.ledger.query(f"caption#{context.partner}#{entry_id}"))
    decisions = sorted((row for row in rows if row["sk"].startswith("decision#")), key=_time("decided_at"))
    orders = [row for row in rows if row["sk"].startswith("item#")]
    failures = list(context.ledger.query(f"failure#{context.partner}", f"entry_ready#{entry_id}#"))
    recording = context.ledger.get(f"recording#{context.partner}#{entry_id}", "session")
    task_ids = {row["task_id"] for row in orders if isinstance(row.get("task_id"), int)}
    task_ids |= {fact["task_id"] for fact in context.facts if fact.get("entry_id") == entry_id and fact.get("task_id")}
    explanation.facts = [
        fact
        for fact in context.facts
        if _about(fact, "entry", entry_id)
        or fact.get("entry_id") == entry_id
        or (fact.get("task_id") in task_ids and fact.get("kind") in ("task_status", "alert_published"))
    ]
    for row in decisions:
        explanation.state.append(
            f"decision {row['sk'].removeprefix('decision#')}: {row.get('outcome')}"
            + _because(row.get("reason"))
            + (" (dry run)" if row.get("dry_run") else "")
            + f" at {_iso(row.get('decided_at'))}, event {row.get('event')}"
        )
    for row in orders:
        explanation.state.append(
            f"caption order {row['sk']}: {row.get('state')}, task {row.get('task_id', '-')}"
            + (f", via {row['ordered_via']}" if row.get("ordered_via") else "")
            + f", claimed {_iso(row.get('claimed_at'))}"
        )
    for task_id in sorted(task_ids):
        task = context.ledger.get(f"task#{context.partner}#{task_id}", "task")
        if task is not None:
            explanation.state.append(_task_line(task))
            explanation.next_steps += _task_steps(context, task)
    if recording is not None:
        explanation.state.append(
            f"meeting recording: {recording.get('outcome')}, session {recording.get('session_id', '-')} "
            f"of room {recording.get('room_entry_id', '-')}"
        )
    explanation.state += [_failure_line(row) for row in failures]
    replay = context.command(f"replay entry {entry_id}")
    for row in failures:
        explanation.next_steps.append(
            f"It failed permanently ({row.get('code')}): Kaltura refused a call the automation needs. Fix the "
            f"partner's permissions or configuration, then replay: {replay}"
        )
    for row in orders:
        if row.get("state") == "claimed":
            age = context.now - float(row.get("claimed_at") or 0)
            if age >= DEFAULT_WORKER_TIMEOUT_SECONDS:
                explanation.next_steps.append(
                    f"Stuck: the order was claimed {int(age)} s ago by a worker that is gone. The next delivery or "
                    f"the sweep takes it over (adopting a task Kaltura has, else ordering); now: {replay}"
                )
            else:
                explanation.next_steps.append("An order is in flight in a worker right now: look again in a minute.")
    if decisions:
        latest = decisions[-1]
        explanation.next_steps += _decision_steps(latest, replay)
    elif not orders and not failures and any(fact.get("kind") == "delivery_failed" for fact in explanation.facts):
        explanation.next_steps.append(
            "Nothing was decided: every delivery failed (above, with the error). Once retries are used up the "
            "notification waits in the events dead-letter queue: "
            + context.command("failures").replace(f" --partner {context.partner}", "")
            + " lists it with the command that replays it; fix the cause first (a Kaltura outage passes by itself)."
        )
    elif not orders and not failures:
        explanation.next_steps.append(
            "Nothing was decided: no entry-ready notification for it reached the worker (is the partner's HTTP "
            "notification template on, and is captioning enabled?), or it is waiting in a dead-letter queue "
            f"({context.command('failures').replace(f' --partner {context.partner}', '')}). The sweep picks up "
            f"entries updated in its window; to decide now: {replay}"
        )
    return explanation


def explain_task(context: Context, task_text: str, _room: str | None = None) -> Explanation:
    explanation = Explanation(f"REACH task {task_text} of partner {context.partner}")
    task_id = int(task_text) if task_text.isdigit() else None
    if task_id is None:
        raise OpsError(f"a task id is a number, not {task_text!r}")
    explanation.facts = [
        fact for fact in context.facts if _about(fact, "task", task_text) or fact.get("task_id") == task_id
    ]
    task = context.ledger.get(f"task#{context.partner}#{task_id}", "task")
    failures = list(context.ledger.query(f"failure#{context.partner}", f"vendor_task_status#{task_id}#"))
    alerts = [row for row in context.ledger.query(f"alert#{context.partner}") if f"task:{task_id}" in row["sk"]]
    if task is not None:
        explanation.state.append(_task_line(task))
        explanation.next_steps += _task_steps(context, task)
    explanation.state += [
        f"alert {row['sk']}: {row.get('state')} at {_iso(row.get('published_at') or row.get('claimed_at'))}"
        for row in alerts
    ]
    explanation.state += [_failure_line(row) for row in failures]
    for row in failures:
        explanation.next_steps.append(
            f"Its status update failed permanently ({row.get('code')}); fix that, then replay: "
            + context.command(f"replay task {task_id}")
        )
    if task is None and not failures:
        explanation.next_steps.append(
            "The ledger does not know this task: it was not ordered by the automation and no status of it reached "
            "the worker. The sweep lists open REACH tasks; to record it now: "
            + context.command(f"replay task {task_id}")
        )
    return explanation


def explain_session(context: Context, session_id: str, room: str | None) -> Explanation:
    explanation = Explanation(f"Room session {session_id} of partner {context.partner}")
    explanation.facts = [
        fact for fact in context.facts if _about(fact, "session", session_id) or fact.get("session_id") == session_id
    ]
    rooms = {room} if room else {str(f["room_entry_id"]) for f in explanation.facts if f.get("room_entry_id")}
    failures = list(context.ledger.query(f"failure#{context.partner}", f"session_ended#{session_id}#"))
    explanation.state += [_failure_line(row) for row in failures]
    row = None
    for room_id in sorted(rooms):
        row = context.ledger.get(f"session#{context.partner}#{room_id}", session_id)
        if row is not None:
            explanation.state.append(_session_line(room_id, row))
            explanation.next_steps += _session_steps(context, session_id, room_id, row)
    if row is None:
        if not rooms:
            explanation.next_steps.append(
                "The trail does not name the session's room: pass --room ENTRY_ID (the room's entry id)."
            )
        explanation.next_steps.append(
            "The session was never pulled (no ledger row). Pull the sessions of its day: "
            + context.command("sessions --from YYYY-MM-DD --to YYYY-MM-DD")
        )
    for failure in failures:
        explanation.next_steps.append(
            f"It failed permanently ({failure.get('code')}); fix that, then replay: "
            + context.command(f"replay session {session_id} --room {next(iter(sorted(rooms)), 'ROOM')}")
        )
    return explanation


def explain_notification(context: Context, key: str, _room: str | None = None) -> Explanation:
    if key.isdigit():
        key = f"{context.partner}:job:{key}"  # a bare eventNotificationJobId
    explanation = Explanation(f"Notification {key} of partner {context.partner}")
    handled = [
        fact for fact in context.facts if fact.get("kind") == "notification_handled" and fact["subject_id"] == key
    ]
    invocations = {fact.get("invocation") for fact in handled}
    subjects = {
        str(value)
        for fact in handled
        for value in (fact.get("entry_id"), fact.get("task_id"), fact.get("session_id"))
        if value is not None
    }
    explanation.facts = [
        fact
        for fact in context.facts
        if fact.get("subject_id") == key
        or fact.get("event") == key
        or (fact.get("invocation") in invocations and _names_any(fact, subjects))
    ]
    accepted = context.dedupe_row(key)
    if accepted is not None:
        claimed = accepted.get("claimed_at")
        explanation.state.append(
            f"accepted by the webhook at {_iso(claimed)} (dedupe row; Kaltura's retries and duplicates of this key "
            "were answered 200 without being queued again)"
        )
    deliveries = sorted({fact.get("attempt") or 1 for fact in handled})
    if deliveries:
        explanation.state.append(
            f"taken up by the worker {len(handled)} time(s)"
            + (f", deliveries {deliveries}: the queue redelivered it" if max(deliveries) > 1 else "")
        )
    failures = [row for row in context.ledger.query(f"failure#{context.partner}") if str(row["sk"]).endswith(f"#{key}")]
    explanation.state += [_failure_line(row) for row in failures]
    if not handled and accepted is not None:
        explanation.next_steps.append(
            "Accepted but never taken up by the worker in the trail's window: it may be waiting in the events queue "
            "or its dead-letter queue: " + context.command("failures").replace(f" --partner {context.partner}", "")
        )
    if not handled and accepted is None:
        explanation.next_steps.append(
            "Unknown here: the webhook never accepted it (signature, partner, body format?) or it is older than the "
            "dedupe table's 8 days and the trail's --days."
        )
    for row in failures:
        subject = {"entry_ready": "entry", "vendor_task_status": "task", "session_ended": "session"}.get(
            str(row.get("kind")), "entry"
        )
        explanation.next_steps.append(
            f"It failed permanently ({row.get('code')}); replay: "
            + context.command(f"replay {subject} {row.get('object_id')}")
        )
    return explanation


EXPLAINERS: Mapping[str, Callable[[Context, str, str | None], Explanation]] = {
    "entry": explain_entry,
    "task": explain_task,
    "session": explain_session,
    "notification": explain_notification,
}


# ----------------------------------------------------------------------------------------------- next steps


def _decision_steps(row: Item, replay: str) -> list[str]:
    outcome, reason = row.get("outcome"), row.get("reason")
    if outcome == "skipped":
        return [
            f"Not captioned by design: the rule '{reason}' decided. If that rule is wrong for this partner, change "
            "its caption rules (kauto-config); a decision is final for this version of the entry, so it is "
            "decided again when the entry changes (a new version)."
        ]
    if outcome == "credit":
        return [f"REACH refused for credit ({reason}): renew the partner's REACH credit, then: {replay}"]
    if outcome == "rejected":
        return [f"REACH refused the order ({reason}): check the catalog item and REACH profile, then: {replay}"]
    if outcome == "dry_run":
        return ["Dry run: decided, not ordered. Turn dry_run off in the partner's caption rules to order."]
    return []


def _task_steps(context: Context, task: Item) -> list[str]:
    state = task.get("state")
    task_id = task.get("task_id")
    if state in _TASK_FAILED:
        return [
            f"REACH task {task_id} ended {str(state).upper()}: the automation never orders it again (that would "
            "spend credit twice). Check the media, then order again in KMC (REACH) or resubmit the task there."
        ]
    expected = task.get("expected_finish_time")
    if state in _TASK_OPEN and isinstance(expected, int | float) and expected and context.now > expected:
        return [
            f"REACH task {task_id} is still {state} past its expected finish ({_iso(expected)}). The sweep checks "
            "open tasks and alerts once past the SLA; if it stays, ask Kaltura support about the task."
        ]
    return []


def _session_steps(context: Context, session_id: str, room_id: str, row: Item) -> list[str]:
    state = row.get("state")
    replay = context.command(f"replay session {session_id} --room {room_id}")
    if state == "failed":
        return [f"The last pull failed ({row.get('error')}); the queue retries it. To pull again now: {replay}"]
    if state == "pulling":
        age = context.now - float(row.get("started_at") or 0)
        if age >= DEFAULT_WORKER_TIMEOUT_SECONDS:
            return [f"Stuck: a pull started {int(age)} s ago by a worker that is gone; take it over: {replay}"]
        return ["A pull is running right now: look again in a minute."]
    if state == "waiting_for_data":
        return [
            f"Waiting for Kaltura's analytics to list the session (attempt {row.get('no_data_attempts')}); it is "
            "retried every 15 minutes and then written as it is."
        ]
    return []


# ------------------------------------------------------------------------------------------------- wording


def describe(fact: Fact, bucket: str) -> str:
    """One timeline line for ``fact``."""
    kind = fact.get("kind")
    reason = fact.get("reason")
    if kind == "notification_handled":
        attempt = fact.get("attempt") or 1
        job = f"job {fact['event']}, " if fact.get("event") else ""
        redelivery = " (a redelivery)" if attempt > 1 else ""
        return (
            f"worker took up notification {fact['subject_id']}: {fact.get('state')} ({job}{reason} body), "
            f"delivery {attempt}{redelivery}"
        )
    if kind == "delivery_failed":
        code = f" ({fact['code']})" if fact.get("code") else ""
        return (
            f"delivery {fact.get('attempt') or '?'} of notification {fact['subject_id']} FAILED: {reason}{code}; "
            "the queue retries it, then moves it to the dead-letter queue"
        )
    if kind == "caption_decision":
        ids = _ids(fact, "catalog_item_id", "task_id")
        dry = " [dry run]" if fact.get("state") == "dry_run" else ""
        return f"caption decision: {fact.get('outcome')}{_because(reason)}{ids}{dry} (event {fact.get('event')})"
    if kind == "caption_ordered":
        how = "ordered (entryVendorTask.add)" if reason == "add" else "adopted (Kaltura had it already)"
        return f"REACH task {fact.get('task_id')} {how} for catalog item {fact.get('catalog_item_id')}"
    if kind == "caption_done":
        return f"captions done: task {fact.get('task_id')} READY"
    if kind == "caption_claim_taken_over":
        return "took over the caption order claim of a worker that died"
    if kind == "task_status":
        return f"task {fact['subject_id']} status {fact.get('state')}{_ids(fact, 'entry_id')}"
    if kind == "session_state":
        extra = f", manifest s3://{bucket}/{fact['s3_key']}" if fact.get("s3_key") else ""
        extra += f", error {reason}" if reason else ""
        extra += f", attempt {fact['attempt']}" if fact.get("attempt") else ""
        return (
            f"session {fact.get('session_id')} of room {fact.get('room_entry_id')}: {fact.get('state')} "
            f"(trigger {fact.get('event')}){extra}"
        )
    if kind == "recording_match":
        return f"meeting recording matched: {fact.get('outcome')}{_ids(fact, 'room_entry_id', 'session_id')}"
    if kind == "permanent_failure":
        return (
            f"FAILED permanently: {fact.get('state')} of {fact['subject_type']} {fact['subject_id']}, "
            f"code {fact.get('code')} ({reason}; event {fact.get('event')})"
        )
    if kind == "alert_published":
        return f"alert {fact.get('alert')} published ({fact.get('state')}, key {reason})"
    if kind == "object_written":
        rows = f"{fact.get('rows')} rows, " if fact.get("rows") else ""
        return f"wrote s3://{bucket}/{fact.get('s3_key')} ({rows}{fact.get('bytes')} bytes)"
    if kind == "sweep_enqueued":
        return f"the sweep enqueued {fact['subject_id']}"
    if kind in ("weekly_run", "weekly_job"):
        return f"{kind.replace('_', ' ')} {fact['subject_id']}: {fact.get('state')}{_because(reason)}"
    if kind in ("replay", "backfill"):
        return f"operator {kind}: {fact['subject_type']} {fact['subject_id']} ({reason})"
    return f"{kind} {fact.get('subject_type')} {fact.get('subject_id')}"


def _task_line(task: Item) -> str:
    return (
        f"task {task.get('task_id')}: {task.get('state')} (entry {task.get('entry_id')}, catalog item "
        f"{task.get('catalog_item_id')}, updated {_iso(task.get('updated_at'))})"
    )


def _session_line(room_id: str, row: Item) -> str:
    line = f"session {row['sk']} of room {room_id}: {row.get('state')}, trigger {row.get('trigger')}"
    if row.get("manifest_key"):
        line += f", manifest {row['manifest_key']}"
    if row.get("error"):
        line += f", error {row['error']}"
    return line


def _failure_line(row: Item) -> str:
    return (
        f"permanent failure {row.get('kind')} of {row.get('object_id')}: {row.get('code')} ({row.get('error')}) at "
        f"{_iso(row.get('failed_at'))}"
    )


def _about(fact: Fact, subject_type: str, subject_id: str) -> bool:
    return fact.get("subject_type") == subject_type and fact.get("subject_id") == subject_id


def _names_any(fact: Fact, ids: Iterable[str]) -> bool:
    named = {str(fact.get(name)) for name in ("subject_id", "entry_id", "task_id", "session_id") if fact.get(name)}
    return bool(named & set(ids))


def _ids(fact: Fact, *names: str) -> str:
    found = [f"{name.removesuffix('_id').replace('_', ' ')} {fact[name]}" for name in names if fact.get(name)]
    return f" ({', '.join(found)})" if found else ""


def _because(reason: Any) -> str:
    return f" because {reason}" if reason else ""


def _time(name: str) -> Callable[[Item], float]:
    return lambda row: float(row.get(name) or 0)


def _iso(moment: Any) -> str:
    if not isinstance(moment, int | float) or isinstance(moment, bool) or moment <= 0:
        return "?"
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dedupe_reader(stack: Stack) -> Callable[[str], Item | None]:
    """Reads the webhook's dedupe row of a notification key (when the stack has the table)."""
    table = stack.optional("DedupeTable")

    def read(key: str) -> Item | None:
        if table is None:
            return None
        raw = dynamodb_client().get_item(TableName=table, Key={"pk": {"S": key}}).get("Item")
        if not raw:
            return None
        return {name: next(iter(value.values())) for name, value in raw.items()} | {
            "claimed_at": float(raw.get("claimed_at", {}).get("N", "0"))
        }

    return read
