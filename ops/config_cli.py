"""kauto-config: check the configuration documents before deploying them, print their JSON Schema, show a partner's
effective settings.

Commands (offline: nothing is read from AWS)::

    kauto-config check --secret partners.json --automation automation.json   # every problem; exit 1 on any
    kauto-config schema secret > partner-secret.schema.json                    # JSON Schema for editors
    kauto-config schema automation > automation-config.schema.json
    kauto-config show --partner 1234567 --automation automation.json [--secret partners.json]

``show`` prints the partner's effective configuration: the schema defaults merged with the document's ``defaults``
and the partner's own sections, its weekly settings, and with ``--secret`` its secret entry with every secret masked.

``make serve``, ``make demo`` and ``make smoke`` run the same check (:func:`check_documents`) at start and refuse a
broken document with the same output (:func:`refuse_broken_documents`).

Exit status: 0 valid, 1 a document is invalid or unreadable, 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import msgspec
from kauto.automation_config import AUTOMATION_DOCUMENT, AutomationDocument, automation_problems
from kauto.automation_config import parse_automation_config as parse_automation
from kauto.config import SECRET_DOCUMENT, PartnerSecretDocument, parse_partner_secrets, secret_problems
from kauto.validation import ConfigErrors, Problem
from kauto_ops.command_line import run_command

PROG = "kauto-config"
MASK = "********"
SECRET_FIELDS = ("admin_secret", "previous_admin_secret")
SCHEMAS: Mapping[str, type[msgspec.Struct]] = {"secret": PartnerSecretDocument, "automation": AutomationDocument}


class DocumentError(Exception):
    """A document could not be read or is invalid; the message is what to print."""


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    return run_command(build_parser(), argv, out=out, err=err, expected=(DocumentError,), error_prefix=f"{PROG}: ")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with ``check``, ``schema`` and ``show``."""
    parser = argparse.ArgumentParser(prog=PROG, description="Check the configuration documents before you deploy.")
    commands = parser.add_subparsers(required=True, metavar="command")
    check = commands.add_parser("check", help="validate documents offline; prints every problem, exit 1 on any")
    check.add_argument("--secret", type=Path, help="the partner secret document (JSON file)")
    check.add_argument("--automation", type=Path, help="the automation configuration document (JSON file)")
    check.set_defaults(command=_check)
    schema = commands.add_parser("schema", help="print the JSON Schema of a document")
    schema.add_argument("document", choices=sorted(SCHEMAS))
    schema.set_defaults(command=_schema)
    show = commands.add_parser("show", help="print a partner's effective configuration (secrets masked)")
    show.add_argument("--partner", type=int, required=True, help="the partner id")
    show.add_argument("--automation", type=Path, help="the automation configuration (default: {})")
    show.add_argument("--secret", type=Path, help="also show the partner's secret entry, masked")
    show.set_defaults(command=_show)
    return parser


def check_documents(*, secret: str | None = None, automation: str | None = None) -> list[str]:
    """Every problem of the given documents' texts, one line each (``<document>: <path>: <expected>``)."""
    lines: list[str] = []
    checks = ((SECRET_DOCUMENT, secret, secret_problems), (AUTOMATION_DOCUMENT, automation, automation_problems))
    for name, text, problems_of in checks:
        if text is not None:
            lines += [f"{name}: {problem}" for problem in problems_of(text)]
    return lines


def refuse_broken_documents(*, secret: Any = None, automation: Any = None, err: TextIO | None = None) -> None:
    """Exit with status 1 after printing every problem when a document is broken (for serve, demo and smoke).

    ``secret`` and ``automation`` are parsed documents (objects), as the local stack holds them.
    """
    lines = check_documents(
        secret=None if secret is None else json.dumps(secret),
        automation=None if automation is None else json.dumps(automation),
    )
    if lines:
        stream = err if err is not None else sys.stderr
        stream.write(f"{PROG}: the configuration is invalid ({len(lines)} problem(s)):\n")
        stream.writelines(f"  {line}\n" for line in lines)
        raise SystemExit(1)


def _check(args: argparse.Namespace, out: TextIO) -> int:
    if args.secret is None and args.automation is None:
        raise DocumentError("check: give --secret FILE, --automation FILE or both")
    failed = False
    for name, path, problems_of in (
        (SECRET_DOCUMENT, args.secret, secret_problems),
        (AUTOMATION_DOCUMENT, args.automation, automation_problems),
    ):
        if path is None:
            continue
        problems: list[Problem] = problems_of(_read(path))
        if problems:
            failed = True
            out.write(f"{path}: {name} has {len(problems)} problem(s):\n")
            out.writelines(f"  {problem}\n" for problem in problems)
        else:
            out.write(f"{path}: {name} is valid\n")
    return 1 if failed else 0


def _schema(args: argparse.Namespace, out: TextIO) -> int:
    out.write(json.dumps(msgspec.json.schema(SCHEMAS[args.document]), indent=2) + "\n")
    return 0


def _show(args: argparse.Namespace, out: TextIO) -> int:
    from kauto.weekly.config import parse_weekly_config

    partner_id = args.partner
    try:
        config = parse_automation(_read(args.automation) if args.automation else "{}")
        secrets = parse_partner_secrets(_read(args.secret)) if args.secret is not None else None
    except ConfigErrors as error:
        lines = [f"the {error.document} is invalid:", *(f"  {problem}" for problem in error.problems)]
        raise DocumentError("\n".join(lines)) from None
    problems = config.broken.get(str(partner_id))
    if problems:
        raise _partner_error(partner_id, AUTOMATION_DOCUMENT, problems)
    effective: dict[str, Any] = {"partner_id": partner_id, **msgspec.to_builtins(config.partner(partner_id))}
    effective["weekly"] = msgspec.to_builtins(parse_weekly_config(config.weekly).for_partner(partner_id))
    if secrets is not None:
        problems = secrets.problems_of(partner_id)
        if problems:
            raise _partner_error(partner_id, SECRET_DOCUMENT, problems)
        entry = secrets.partners.get(partner_id)
        if entry is None:
            raise DocumentError(f"partner {partner_id} is not in the partner secret")
        effective["secret"] = mask(msgspec.to_builtins(entry))
    out.write(json.dumps(effective, indent=2) + "\n")
    return 0


def _partner_error(partner_id: int, document: str, problems: Sequence[Problem]) -> DocumentError:
    lines = [f"partner {partner_id} is disabled: its {document} entry is invalid:", *(f"  {p}" for p in problems)]
    return DocumentError("\n".join(lines))


def mask(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` (a secret entry as JSON) with every secret value replaced by :data:`MASK`."""
    masked = {key: (MASK if key in SECRET_FIELDS and value is not None else value) for key, value in entry.items()}
    token = masked.get("app_token")
    if isinstance(token, dict):
        masked["app_token"] = {**token, "token": MASK}
    masked.pop("partner_id", None)
    return masked


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DocumentError(f"cannot read {path}: {error.__class__.__name__}") from None


if __name__ == "__main__":
    raise SystemExit(main())
