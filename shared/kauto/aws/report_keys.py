"""The Hive-style keys of report output: ``<kind>/partner_id=<pid>/<time partition>/report=<name>/<name>.csv``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from kauto.aws.object_store import CONTROL_CHARACTERS, S3KeyError, check_object_key

_SAFE_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_REPORT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def hive_value(value: str | int) -> str:
    """A partition value safe inside ``name=value/`` of a Hive-style key.

    Ids may not be empty or contain ``/``, ``\\``, ``..`` or control characters (:class:`S3KeyError`); any other
    character outside ``[A-Za-z0-9_.-]`` (``=``, space, ``%``, ``:``...) is percent-encoded like Hive does, so
    ``=`` can never split a partition.
    """
    text = str(value)
    if not text or "/" in text or "\\" in text or ".." in text or text == "." or CONTROL_CHARACTERS.search(text):
        raise S3KeyError(f"unsafe key component {text!r}")
    return "".join(
        char if char in _SAFE_KEY_CHARACTERS else "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        for char in text
    )


def iso_week(day: date) -> str:
    """The ISO week of ``day`` as ``YYYY-Www`` (e.g. ``2025-W01``; ISO years start on the Monday of week 1)."""
    iso_year, week, _ = day.isocalendar()
    return f"{iso_year:04d}-W{week:02d}"


def session_prefix(partner_id: int, session_day: date, room_entry_id: str, session_id: str) -> str:
    """``sessions/partner_id=<pid>/date=<YYYY-MM-DD>/entry_id=<room>/session_id=<cue point>/``.

    ``session_day`` is a date or a timezone-aware datetime (converted to its UTC date); naive datetimes are refused.
    """
    return (
        f"sessions/partner_id={_partner(partner_id)}/date={_utc_day(session_day).isoformat()}"
        f"/entry_id={hive_value(room_entry_id)}/session_id={hive_value(session_id)}/"
    )


def weekly_prefix(partner_id: int, week: str | date) -> str:
    """``weekly/partner_id=<pid>/week=<YYYY-Www>/``; ``week`` is a ``YYYY-Www`` label or any day of that week."""
    if isinstance(week, date):
        label = iso_week(_utc_day(week))
    else:
        match = _ISO_WEEK.fullmatch(week)
        if not match or not 1 <= int(match.group(2)) <= 53:
            raise S3KeyError(f"week {week!r} is not an ISO week label like 2025-W01")
        label = week
    return f"weekly/partner_id={_partner(partner_id)}/week={label}/"


def report_key(prefix: str, report: str) -> str:
    """The key of one report of a run: ``report=<report>/<report>.csv`` inserted right after the prefix's time
    partition (``date=`` or ``week=``), e.g.
    ``sessions/partner_id=1/date=2025-01-03/report=attendees/entry_id=1_room/session_id=cp1/attendees.csv``.

    Athena reads every object below a table's location, so each report kind needs a folder of its own above the
    per-session partitions (which a month-wide query can't name); the manifest stays at the prefix itself.
    ``report`` is a short lowercase name like ``room_data``.
    """
    if not _REPORT_NAME.fullmatch(report):
        raise S3KeyError(f"report name {report!r} must match {_REPORT_NAME.pattern}")
    parts = _prefix(prefix).rstrip("/").split("/")
    time_partition = next((i for i, part in enumerate(parts) if part.startswith(("date=", "week="))), None)
    if time_partition is None:
        raise S3KeyError("prefix must contain a date= or week= partition")
    parts.insert(time_partition + 1, f"report={report}")
    return "/".join(parts) + f"/{report}.csv"


def manifest_key(prefix: str) -> str:
    """``<prefix>manifest.json``."""
    return f"{_prefix(prefix)}manifest.json"


def _prefix(prefix: str) -> str:
    if not prefix.endswith("/"):
        raise S3KeyError("prefix must end with '/'")
    check_object_key(prefix.rstrip("/"))
    return prefix


def _partner(partner_id: int) -> str:
    if isinstance(partner_id, bool) or not isinstance(partner_id, int) or partner_id <= 0:
        raise S3KeyError("partner_id must be a positive integer")
    return str(partner_id)


def _utc_day(day: date) -> date:
    if isinstance(day, datetime):
        if day.tzinfo is None:
            raise S3KeyError("datetime must be timezone-aware")
        return day.astimezone(UTC).date()
    return day
