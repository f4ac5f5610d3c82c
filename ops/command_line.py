"""The one way the operator commands (kauto-ops, kauto-backfill, kauto-config) parse and run: exit statuses, not
exceptions, and the errors a command expects printed as one line on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    out: TextIO | None,
    err: TextIO | None,
    expected: tuple[type[Exception], ...],
    error_prefix: str,
) -> int:
    """Parse ``argv`` and run the chosen ``command(args, out)``; an ``expected`` error prints
    ``<error_prefix><error>`` on ``err`` and exits 1."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return int(args.command(args, stdout))
    except expected as error:
        stderr.write(f"{error_prefix}{error}\n")
        return 1
