"""kauto-backfill: enqueue weekly runs or session report pulls for a past range, or replay dead letters.

Run from a workstation with AWS credentials for the deployed stack (the standard chain: ``AWS_PROFILE``,
``AWS_REGION``...). Resources come from the stack (``--stack NAME``: its resources by logical id and its parameters)
or from explicit options. Every command is idempotent (runs are keyed by partner and ISO week, session pulls by
session, consumers dedupe) and takes ``--dry-run`` to list what it would do without doing it.

Commands::

    kauto-backfill weekly --partner 1234567 --from 2025-01-01 --to 2025-03-31 --stack kaltura-automations [--dry-run]
    kauto-backfill sessions --partner 1234567 --from 2025-03-01 --to 2025-03-07 --stack kaltura-automations [--dry-run]
    kauto-backfill replay-dlq --queue events --stack kaltura-automations [--max 100] [--dry-run]
    kauto-backfill replay-failed-invocations --function weekly-scheduler --stack kaltura-automations
        [--max 10] [--dry-run]

Exit status: 0 done, 1 the command failed (the message says why), 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from kauto.automations.deps import InvocationKaltura
from kauto.aws.audit import AuditFact
from kauto.aws.clients import aws_client, dynamodb_client, s3_client, sqs_client
from kauto.aws.ledger import DynamoLedger
from kauto.aws.queue import SqsEventQueue
from kauto.errors import KautoError
from kauto.kaltura import InvocationBudget
from kauto_ops import failed_invocations
from kauto_ops.command_line import run_command
from kauto_ops.dlq import replay_dead_letters
from kauto_ops.sessions import SessionAction, backfill_sessions
from kauto_ops.stack import OpsError, StackResources, describe_stack
from kauto_ops.trail import record_operator_facts
from kauto_ops.weekly import MAX_WEEKS, WeekBackfill, backfill_weeks, check_ended, iso_weeks

PROG = "kauto-backfill"
MAX_SESSION_WINDOW_DAYS = 31
"""One sessions backfill reads report 6000 over the whole window in one call: keep it to a month at a time."""

# --queue -> (source queue, its dead-letter queue) as logical ids of the template.
DLQ_RESOURCES: dict[str, tuple[str, str]] = {
    "events": ("EventsQueue", "EventsDeadLetterQueue"),
    "report-jobs": ("ReportJobsQueue", "ReportJobsDeadLetterQueue"),
}
SCHEDULER_FUNCTION = "WeeklySchedulerFunction"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    return run_command(
        build_parser(), argv, out=out, err=err, expected=(OpsError, KautoError), error_prefix=f"{PROG}: error: "
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the three commands (``--help`` on each documents it)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Enqueue weekly report runs or room session report pulls for a past range, or move dead-letter "
            "messages back to their queue. Idempotent: re-running a command does not duplicate work. The same "
            "commands are kauto-ops subcommands."
        ),
        epilog="AWS credentials and region come from the standard chain (AWS_PROFILE, AWS_REGION, ...).",
    )
    register(parser.add_subparsers(title="commands", required=True, metavar="COMMAND"))
    return parser


def register(commands: Any) -> None:
    """Add ``weekly``, ``sessions`` and ``replay-dlq`` to a subcommands object (``kauto-backfill``, ``kauto-ops``)."""
    weekly = commands.add_parser(
        "weekly",
        help="start the weekly report runs of every ISO week in a past date range",
        description=(
            "Invoke the weekly scheduler function once per ISO week that overlaps the range (Monday to Sunday; "
            "every week must have ended), with the input the weekly schedule sends. A week that already has a run "
            f"is left as it is unless --force. At most {MAX_WEEKS} weeks per run."
        ),
    )
    _partner_range(weekly)
    _stack_option(weekly)
    weekly.add_argument(
        "--scheduler-function", help=f"weekly scheduler function name (default: stack resource {SCHEDULER_FUNCTION})"
    )
    weekly.add_argument("--ledger-table", help="ledger table, to show existing runs (default: stack resource)")
    weekly.add_argument(
        "--force", action="store_true", help="replace existing runs (their reports and digest are rewritten)"
    )
    _dry_run(weekly)
    weekly.set_defaults(command=_run_weekly)

    sessions = commands.add_parser(
        "sessions",
        help="enqueue room session report pulls for sessions that ended in a past window",
        description=(
            "Read Kaltura report 6000 over the window and send a session_ended event for every main-room session "
            "that ended in it (UTC days, both included). Sessions already pulled are skipped; the worker pulls "
            f"each session once. At most {MAX_SESSION_WINDOW_DAYS} days per run."
        ),
    )
    _partner_range(sessions)
    _stack_option(sessions)
    sessions.add_argument("--events-queue-url", help="events queue URL (default: stack resource EventsQueue)")
    sessions.add_argument(
        "--ledger-table", help="ledger table used to skip pulled sessions (default: stack resource LedgerTable)"
    )
    sessions.add_argument(
        "--partner-secrets-arn", help="partner secret ARN for the Kaltura API (default: stack parameter)"
    )
    _dry_run(sessions)
    sessions.set_defaults(command=_run_sessions)

    replay = commands.add_parser(
        "replay-dlq",
        help="move dead-letter messages back to their source queue",
        description=(
            "Receive messages from a dead-letter queue, send each to its source queue and delete it from the DLQ "
            "only after the send succeeded. Consumers are idempotent, so a message replayed twice is harmless."
        ),
    )
    replay.add_argument("--queue", required=True, choices=sorted(DLQ_RESOURCES), help="which dead-letter queue")
    replay.add_argument("--max", type=_positive_int, metavar="N", help="move at most N messages (default: all)")
    replay.add_argument(
        "--message-id",
        action="append",
        dest="message_ids",
        metavar="ID",
        help="move only this message (repeatable; kauto-ops failures lists the ids)",
    )
    _stack_option(replay)
    replay.add_argument("--dlq-url", help="dead-letter queue URL (default: from the stack)")
    replay.add_argument("--target-url", help="queue to move the messages to (default: from the stack)")
    _dry_run(replay)
    replay.set_defaults(command=_run_replay)
    failed_invocations.register(commands)


# -------------------------------------------------------------------------------------------------- commands


def _run_weekly(args: argparse.Namespace, out: TextIO) -> int:
    now = int(datetime.now(UTC).timestamp())
    weeks = iso_weeks(args.from_day, args.to_day)
    check_ended(weeks, datetime.now(UTC).date())
    resources = _Resources(args.stack)
    table = resources.optional(args.ledger_table, "LedgerTable")
    function = (
        None
        if args.dry_run
        else resources.resource(args.scheduler_function, SCHEDULER_FUNCTION, "--scheduler-function")
    )
    results = backfill_weeks(
        aws_client("lambda"),
        function or "",
        args.partner,
        weeks,
        ledger=DynamoLedger(dynamodb_client(), table) if table else None,
        force=args.force,
        dry_run=args.dry_run,
    )
    for result in results:
        out.write(f"{result.week}: {_week_line(result, table is not None, args.force)}\n")
    verb = "would request" if args.dry_run else "requested"
    out.write(f"{verb} {len(results)} week(s) for partner {args.partner}\n")
    if not args.dry_run:
        facts = [
            AuditFact(args.partner, "backfill", "run", result.week, ("weekly", result.week, now), _backfill("weekly"))
            for result in results
        ]
        _record(resources, facts, "weekly", out)
    return 0


def _week_line(result: WeekBackfill, ledger_read: bool, force: bool) -> str:
    found = ("run " + result.existing_state if result.existing_state else "no run") if ledger_read else "run unknown"
    if result.totals is not None:
        done = ", ".join(f"{key} {value}" for key, value in sorted(result.totals.items()) if value)
        return f"{found}; scheduler: {done or 'nothing to do'}"
    if result.existing_state and not force:
        return f"{found}; would be left as it is"
    if result.existing_state or (force and not ledger_read):
        return f"{found}; would be replaced (--force)"
    return f"{found}; would be started"


def _run_sessions(args: argparse.Namespace, out: TextIO) -> int:
    since, until = _window(args.from_day, args.to_day, MAX_SESSION_WINDOW_DAYS)
    resources = _Resources(args.stack)
    queue_url = resources.resource(args.events_queue_url, "EventsQueue", "--events-queue-url")
    secrets_arn = resources.parameter(args.partner_secrets_arn, "PartnerSecretsArn", "--partner-secrets-arn")
    table = resources.optional(args.ledger_table, "LedgerTable")
    now = int(datetime.now(UTC).timestamp())
    client = InvocationKaltura(secrets_arn, InvocationBudget())(args.partner)
    items = backfill_sessions(
        client,
        args.partner,
        since,
        min(until, now),
        events=SqsEventQueue(queue_url),
        ledger=DynamoLedger(dynamodb_client(), table) if table else None,
        now=now,
        dry_run=args.dry_run,
    )
    for item in items:
        session = item.session
        out.write(
            f"{session.room_entry_id} {session.session_id} {_iso(session.start)} .. {_iso(session.end)}: "
            f"{item.action.value}\n"
        )
    acted = sum(1 for item in items if item.action.value != "already pulled")
    verb = "would enqueue" if args.dry_run else "enqueued"
    out.write(f"{len(items)} session(s) ended in the window; {verb} {acted}, {len(items) - acted} already pulled\n")
    facts = [
        AuditFact(
            args.partner,
            "backfill",
            "session",
            item.session.session_id,
            ("sessions", item.session.room_entry_id, item.session.session_id, now),
            {
                **_backfill("sessions"),
                "room_entry_id": item.session.room_entry_id,
                "session_id": item.session.session_id,
            },
        )
        for item in items
        if item.action is SessionAction.ENQUEUED
    ]
    _record(resources, facts, "sessions", out)
    return 0


def _run_replay(args: argparse.Namespace, out: TextIO) -> int:
    resources = _Resources(args.stack)
    target_id, dlq_id = DLQ_RESOURCES[args.queue]
    dlq_url = resources.resource(args.dlq_url, dlq_id, "--dlq-url")
    target_url = resources.resource(args.target_url, target_id, "--target-url")
    result = replay_dead_letters(
        sqs_client(),
        dead_letter_url=dlq_url,
        target_url=target_url,
        max_messages=args.max,
        dry_run=args.dry_run,
        message_ids=set(args.message_ids) if args.message_ids else None,
    )
    for message in result.messages:
        received = "?" if message.receive_count is None else str(message.receive_count)
        out.write(f"{message.message_id} (received {received}x) {message.hint}\n")
    if args.dry_run:
        out.write(f"{result.count} message(s) in the dead-letter queue would be moved to {target_url}\n")
        return 0
    out.write(f"moved {result.count} message(s) to {target_url}\n")
    missing = set(args.message_ids or ()) - {message.message_id for message in result.messages}
    if missing:
        out.write(f"not in the dead-letter queue (already replayed?): {', '.join(sorted(missing))}\n")
    facts = [
        AuditFact(
            message.subject[1],
            "replay",
            _SUBJECT_OF_KIND.get(message.subject[0], "notification"),
            message.subject[2],
            ("dlq", message.message_id),
            {"reason": f"kauto-ops replay-dlq --queue {args.queue}", "event": message.message_id},
        )
        for message in result.messages
        if message.subject is not None
    ]
    _record(resources, facts, "replay-dlq", out)
    return 1 if missing else 0


# -------------------------------------------------------------------------------------------------- helpers


_SUBJECT_OF_KIND = {"entry_ready": "entry", "vendor_task_status": "task", "session_ended": "session"}


def _backfill(command: str) -> dict[str, str]:
    return {"reason": f"kauto-ops {command}"}


def _record(resources: _Resources, facts: list[AuditFact], command: str, out: TextIO) -> None:
    """Append the operator's facts to the audit trail when the stack (its reports bucket) is known."""
    if not facts:
        return
    bucket = resources.optional(None, "ReportsBucket")
    if bucket is None:
        out.write("not recorded in the audit trail: pass --stack to name the stack and its reports bucket\n")
        return
    record_operator_facts(s3_client(), bucket, facts, command)


class _Resources:
    """Explicit options win; otherwise the stack named by ``--stack`` (read once) supplies the value."""

    def __init__(self, stack_name: str | None) -> None:
        self._stack_name = stack_name
        self._stack: StackResources | None = None

    def resource(self, explicit: str | None, logical_id: str, option: str) -> str:
        if explicit:
            return explicit
        return self._described(option).resource(logical_id, option=option)

    def optional(self, explicit: str | None, logical_id: str) -> str | None:
        if explicit:
            return explicit
        if not self._stack_name:
            return None
        return self._described("").resources.get(logical_id) or None

    def parameter(self, explicit: str | None, key: str, option: str) -> str:
        if explicit:
            return explicit
        return self._described(option).parameter(key, option=option)

    def _described(self, option: str) -> StackResources:
        if not self._stack_name:
            raise OpsError(f"pass --stack NAME (the deployed stack) or {option}")
        if self._stack is None:
            self._stack = describe_stack(aws_client("cloudformation"), self._stack_name)
        return self._stack


def _window(first: date, last: date, max_days: int) -> tuple[int, int]:
    """``[first 00:00 UTC, the day after last 00:00 UTC)`` as unix seconds."""
    if last < first:
        raise OpsError(f"--to {last.isoformat()} is before --from {first.isoformat()}")
    if last >= datetime.now(UTC).date() + timedelta(days=1):
        raise OpsError(f"--to {last.isoformat()} is in the future")
    if (last - first).days + 1 > max_days:
        raise OpsError(f"the range covers more than {max_days} days; split it into several runs")
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def _partner_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partner", required=True, type=_positive_int, metavar="PARTNER_ID", help="Kaltura partner")
    parser.add_argument(
        "--from", dest="from_day", required=True, type=_day, metavar="YYYY-MM-DD", help="first day (UTC)"
    )
    parser.add_argument("--to", dest="to_day", required=True, type=_day, metavar="YYYY-MM-DD", help="last day (UTC)")


def _stack_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", metavar="NAME", help="the deployed CloudFormation stack (its resources and parameters are looked up)"
    )


def _dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be done, change nothing")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-01-31") from None


def _positive_int(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    sys.exit(main())
