"""The ``--stack`` option of the ``kauto-ops`` commands and the stack's resources, read once per command."""

from __future__ import annotations

import argparse
from typing import Any

from kauto.aws.clients import aws_client
from kauto_ops.stack import StackResources, describe_stack

DEFAULT_STACK = "kaltura-automations"
"""The stack name ``make deploy`` uses (``samconfig.toml``); ``make serve``'s local stack is ``kauto-local``."""


def add_stack_option(parser: argparse.ArgumentParser) -> None:
    """``--stack NAME`` with the default stack."""
    parser.add_argument(
        "--stack",
        default=DEFAULT_STACK,
        metavar="NAME",
        help=(
            f"the CloudFormation stack (default {DEFAULT_STACK}); with AWS_ENDPOINT_URL pointing at make serve's moto "
            "server, kauto-local"
        ),
    )


def positive_int(text: str) -> int:
    """An argparse type: a positive integer."""
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


class Stack:
    """The named stack's resources by logical id, described on first use."""

    def __init__(self, name: str, cloudformation: Any | None = None) -> None:
        self.name = name
        self._cloudformation = cloudformation
        self._described: StackResources | None = None

    def resource(self, logical_id: str) -> str:
        """The physical id (table or bucket name, queue URL, function name) of ``logical_id``."""
        return self._stack().resource(logical_id, option="--stack")

    def optional(self, logical_id: str) -> str | None:
        """Like :meth:`resource`, but None when the stack has no such resource."""
        return self._stack().resources.get(logical_id) or None

    def _stack(self) -> StackResources:
        if self._described is None:
            self._described = describe_stack(self._cloudformation or aws_client("cloudformation"), self.name)
        return self._described
