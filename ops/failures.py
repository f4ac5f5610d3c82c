"""``kauto-ops failures [--since 24h]``: what failed and waits for an operator, grouped, each with its replay command.

Three sources:

- permanent failures the worker recorded in the ledger (``failure#<pid>`` rows: Kaltura refused a call the
  automation needs; the record was not retried), grouped by event kind and Kaltura error code;
- REACH tasks that ended ERROR / REJECTED / ABORTED, from the audit trail (the automation never re-orders them);
- the dead-letter queues and the on-failure queues of the scheduled functions, listed without consuming them (each
  message is made visible again at once), grouped by what they hold. They are shown whatever their age: they wait
  until someone acts.

``--since`` limits the first two (default 24 h). Partners: ``--partner`` (repeatable), else every partner that has
an audit partition in the bucket.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from kauto.aws.clients import dynamodb_client, s3_client, sqs_client
from kauto.aws.ledger import DynamoLedger, Ledger
from kauto_ops.dlq import DeadLetter, replay_dead_letters
from kauto_ops.stack_options import DEFAULT_STACK, Stack, add_stack_option, positive_int
from kauto_ops.trail import days_back, partners_in_trail, read_facts

SHOWN_PER_GROUP = 10
_DURATION = re.compile(r"(\d+)([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_SUBJECT_OF_KIND = {"entry_ready": "entry", "vendor_task_status": "task", "session_ended": "session"}
_TASK_FAILED = ("error", "rejected", "aborted")

# Queues whose messages wait for an operator, by logical id -> the command that replays one message (``{id}``: its
# message id, ``{stack}``: the stack option), or None for failed deliveries of a schedule (the next run covers them).
DEAD_LETTER_QUEUES: Mapping[str, str | None] = {
    "EventsDeadLetterQueue": "kauto-ops replay-dlq --queue events --message-id {id}{stack}",
    "ReportJobsDeadLetterQueue": "kauto-ops replay-dlq --queue report-jobs --message-id {id}{stack}",
    "SweepFailedInvocationsQueue": "kauto-ops replay-failed-invocations --function sweep{stack}",
    "WeeklySchedulerFailedInvocationsQueue": "kauto-ops replay-failed-invocations --function weekly-scheduler{stack}",
    "SweepScheduleDeadLetterQueue": None,
    "WeeklyScheduleDeadLetterQueue": None,
}


def register(commands: Any) -> None:
    """Add ``failures`` to the ``kauto-ops`` subcommands."""
    parser = commands.add_parser(
        "failures",
        help="permanent failures, failed REACH tasks and dead letters, grouped, each with the command that replays it",
        description=(
            "Permanent failures recorded by the worker, REACH tasks that ended in error, and the dead-letter queues "
            "(listed without consuming them), grouped, each with the command that replays it."
        ),
    )
    parser.add_argument(
        "--since", type=duration, default=24 * 3600, metavar="AGE", help="how far back: 90m, 24h, 7d (default 24h)"
    )
    parser.add_argument(
        "--partner", type=positive_int, action="append", metavar="PID", help="only this partner (repeatable)"
    )
    add_stack_option(parser)
    parser.set_defaults(command=run)


def duration(text: str) -> int:
    """``90m`` / ``24h`` / ``7d`` as seconds (argparse type)."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age like 90m, 24h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass
class Group:
    """Failures of one kind: a heading, how many, and up to :data:`SHOWN_PER_GROUP` items with their command."""

    heading: str
    items: list[tuple[str, str]] = field(default_factory=list)

    def render(self) -> list[str]:
        lines = [f"{self.heading}: {len(self.items)}"]
        for text, command in self.items[:SHOWN_PER_GROUP]:
            lines.append(f"    {text}")
            lines.append(f"      {command}")
        if len(self.items) > SHOWN_PER_GROUP:
            lines.append(f"    ... and {len(self.items) - SHOWN_PER_GROUP} more")
        return lines


def run(args: argparse.Namespace, out: TextIO) -> int:
    """The ``failures`` command."""
    stack = Stack(args.stack)
    bucket = stack.resource("ReportsBucket")
    ledger = DynamoLedger(dynamodb_client(), stack.resource("LedgerTable"))
    partners = args.partner or partners_in_trail(s3_client(), bucket)
    now = time.time()
    since = now - args.since
    suffix = "" if stack.name == DEFAULT_STACK else f" --stack {stack.name}"
    out.write(f"Failures since {_age(args.since)} ago, partners {partners or '(none in the audit trail)'}\n")
    groups: list[Group] = []
    for partner in partners:
        groups += permanent_failures(ledger, partner, since, suffix)
        facts = read_facts(s3_client(), bucket, partner, days_back(args.since // 86400 + 1))
        groups += failed_tasks(facts, partner, since, suffix)
    out.write("\n".join(line for group in groups for line in group.render()) + "\n" if groups else "  none\n")
    out.write("Dead-letter queues (peeked, nothing consumed):\n")
    dead = 0
    for logical_id, queue in DEAD_LETTER_QUEUES.items():
        url = stack.optional(logical_id)
        if url is None:
            continue
        letters = replay_dead_letters(sqs_client(), dead_letter_url=url, target_url=url, dry_run=True).messages
        dead += len(letters)
        out.write(f"  {logical_id}: {len(letters)}\n")
        for group in dead_letter_groups(letters, queue, logical_id, suffix):
            out.write("\n".join(f"  {line}" for line in group.render()) + "\n")
    total = sum(len(group.items) for group in groups) + dead
    out.write(f"{total} failure(s) need attention\n" if total else "Nothing failed.\n")
    return 0


def permanent_failures(ledger: Ledger, partner: int, since: float, suffix: str) -> list[Group]:
    """The partner's ``failure#`` rows since ``since``, grouped by event kind and error code."""
    grouped: dict[tuple[str, str], Group] = {}
    for row in ledger.query(f"failure#{partner}"):
        failed_at = row.get("failed_at")
        if not isinstance(failed_at, int | float) or failed_at < since:
            continue
        kind, code = str(row.get("kind")), str(row.get("code"))
        group = grouped.setdefault((kind, code), Group(f"partner {partner}: {kind} failed permanently with {code}"))
        subject = _SUBJECT_OF_KIND.get(kind, "entry")
        object_id = str(row.get("object_id"))
        room = ""
        if subject == "session":
            room = " --room ROOM"  # the failure row has no room: explain shows it
        group.items.append(
            (
                f"{subject} {object_id} (event {str(row['sk']).split('#', 2)[-1]}; "
                f"kauto-ops explain {subject} {object_id} --partner {partner}{suffix})",
                f"kauto-ops replay {subject} {object_id}{room} --partner {partner}{suffix}",
            )
        )
    return list(grouped.values())


def failed_tasks(facts: list[dict[str, Any]], partner: int, since: float, suffix: str) -> list[Group]:
    """REACH tasks that reached ERROR / REJECTED / ABORTED since ``since`` (from the audit trail)."""
    since_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    grouped: dict[str, Group] = {}
    for fact in facts:
        if fact.get("kind") != "task_status" or fact.get("state") not in _TASK_FAILED:
            continue
        if str(fact.get("at")) < since_text:
            continue
        state = str(fact["state"])
        group = grouped.setdefault(state, Group(f"partner {partner}: REACH tasks ended {state.upper()}"))
        group.items.append(
            (
                f"task {fact['subject_id']} of entry {fact.get('entry_id')} at {fact.get('at')} (not re-ordered "
                "automatically: check the media, then order again in KMC)",
                f"kauto-ops explain task {fact['subject_id']} --partner {partner}{suffix}",
            )
        )
    return list(grouped.values())


def dead_letter_groups(letters: list[DeadLetter], queue: str | None, logical_id: str, suffix: str) -> list[Group]:
    """Dead letters grouped by what they hold, each with the command that replays it (``queue``: the command
    template of :data:`DEAD_LETTER_QUEUES`)."""
    grouped: dict[str, Group] = defaultdict(lambda: Group(""))
    for letter in letters:
        group = grouped[letter.hint]
        group.heading = f"  {letter.hint}"
        explain = ""
        if letter.subject is not None:
            kind, partner, object_id = letter.subject
            subject = _SUBJECT_OF_KIND.get(kind, "entry")
            explain = f"; kauto-ops explain {subject} {object_id} --partner {partner}{suffix}"
        text = f"message {letter.message_id}, received {letter.receive_count or '?'}x{explain}"
        if queue is None:
            command = (
                f"a delivery of the {logical_id.removesuffix('DeadLetterQueue')} that failed: the next scheduled run "
                "covers it; weeks can be re-run with kauto-ops weekly --partner PID --from ... --to ..."
            )
        else:
            stack = suffix or f" --stack {DEFAULT_STACK}"  # these commands have no default stack
            command = queue.format(id=letter.message_id, stack=stack)
        group.items.append((text, command))
    return list(grouped.values())


def _age(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"
