"""kauto-ops: the operator's commands for a deployed stack (or ``make serve``'s local one).

Commands::

    kauto-ops explain entry|task|session|notification ID --partner PID [--stack NAME]
    kauto-ops failures [--since 24h] [--partner PID] [--stack NAME]
    kauto-ops replay entry|task|session ID --partner PID [--room ENTRY_ID] [--stack NAME]
    kauto-ops weekly | sessions | replay-dlq ...        (the kauto-backfill commands, same options)
    kauto-ops smoke [--stack NAME]                      (checks a deployed stack end to end; make smoke)

Each module of :data:`COMMAND_MODULES` exposes ``register(commands)``, adding its subcommand(s) to the argparse
subparsers with ``set_defaults(command=fn)``, where ``fn(args, out) -> int`` returns the exit status. Exit status: what
the command returns (0 done; 1 failed or, for explain, nothing known), 1 for an error the message explains, 2 for
invalid arguments.

AWS credentials and region come from the standard chain (``AWS_PROFILE``, ``AWS_REGION``...); ``AWS_ENDPOINT_URL``
points every client elsewhere (``make serve`` prints the value for its moto server).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TextIO

from kauto.errors import KautoError
from kauto_ops import backfill, explain, failures, replay, smoke
from kauto_ops.command_line import run_command
from kauto_ops.stack import OpsError

PROG = "kauto-ops"
COMMAND_MODULES: tuple[ModuleType, ...] = (explain, failures, replay, backfill, smoke)
"""The modules whose ``register(commands)`` builds the subcommands, in help order."""


def build_parser() -> argparse.ArgumentParser:
    """The ``kauto-ops`` parser with every module's subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Find, understand and replay what the Kaltura automations did: explain one object, list failures, "
            "replay, backfill."
        ),
        epilog="AWS credentials and region come from the standard chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    return run_command(
        build_parser(), argv, out=out, err=err, expected=(OpsError, KautoError), error_prefix=f"{PROG}: error: "
    )


if __name__ == "__main__":
    sys.exit(main())
