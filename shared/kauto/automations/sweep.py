"""The scheduled reconciliation sweep: find what webhooks missed and send it down the same idempotent paths.

Kaltura ships no HTTP template for room sessions ending or for vendor tasks failing (docs/kaltura.md#stock-templates,
#room-session-end), and webhooks can be lost or disabled, so every ``sweep`` interval (15 minutes by default)
:func:`run_sweep` looks, for each partner with a section in the automation configuration, at three things:

- ``sessions``: report 6000 over the window; every main-room session that ended in it and whose ledger row is not
  ``done`` is sent as a ``session_ended`` event (dedupe key ``sweep:session:<pid>:<room>:<session>``); a done
  session whose microservice reports failed is sent again to retry them (a few times, one key per retry).
- ``entries``: ``baseEntry.list`` of READY media clips updated in the window (the client slices the time range to stay
  under Kaltura's 10,000-result cap); every entry without a final caption decision for its current content
  (``caption#<pid>#<entry>`` / ``decision#...``) is sent as an ``entry_ready`` event with the fields the webhook
  would have carried (dedupe key ``sweep:entry:<pid>:<id>:<updatedAt>``). Only when captions are enabled.
- ``tasks``: vendor tasks updated in the window whose status the ledger does not hold yet (and every final status,
  so that the task path can repair a missed alert) are sent as ``vendor_task_status`` events (dedupe key
  ``sweep:task:<pid>:<id>:<status>:<updatedAt>``); then every task in a non-final status (PENDING, PROCESSING,
  PENDING_MODERATION, PENDING_ENTRY_READY, SCHEDULED) goes through :func:`kauto.automations.tasks.check_open_task`,
  which applies its status and alerts once when it is stuck past its SLA.

Everything found goes through the worker exactly like a webhook, so a webhook and the sweep finding the same thing act
once: the session ledger, the caption claims and decisions, the task transitions and the alert claims decide.

Watermarks (ledger ``pk=sweep#<pid>``, ``sk=<part>``, attribute ``watermark``): each part's window runs from its
watermark minus ``overlap_seconds`` (Kaltura's list and report indexes lag a little behind the clock) to now; the
first run looks back ``lookback_seconds``, and a run never covers more than ``lookback_seconds`` (a sweep that was
off for long catches up over several runs). A part advances its watermark only after everything it found was
enqueued. Work is bounded: at most ``max_slice_results`` items per part and run, and a part stops early when the
invocation's time runs low; its watermark then moves to the last item handled (items come oldest first) and the next
run resumes there without the overlap (items of that very second are looked at again, not counted).

An enqueue is claimed in the ledger first (``sk=sent#<dedupe key>``, kept a day), so overlapping windows do not send
the same item twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from kauto.automation_config import PartnerSettings
from kauto.automations.captions import caption_pk, decision_sk
from kauto.automations.config_health import disabled_partners
from kauto.automations.deps import AutomationDeps
from kauto.automations.room_reports import MAX_SESSION_SECONDS, read_session_rows
from kauto.automations.session_events import RoomSession, session_ended_event
from kauto.automations.sessions import STATE_DONE as SESSION_DONE
from kauto.automations.sessions import retryable_reports, session_ledger_key
from kauto.automations.tasks import TASK_SK, check_open_task, task_pk
from kauto.automations.telemetry import count, logger
from kauto.aws.ledger import OWNER_ATTRIBUTE, STATE_ATTRIBUTE
from kauto.errors import KautoError
from kauto.kaltura import Entry, EntryStatus, KalturaClient, VendorTask, VendorTaskStatus
from kauto.kaltura.listing import iter_list_sliced
from kauto.kaltura.reach import TASK_SERVICE
from kauto.kaltura.types import FINAL_TASK_STATUSES, as_int
from kauto.models import EventKind, FieldValue, KalturaEvent
from kauto.tracing import subsegment

T = TypeVar("T")

SENT_CLAIM_TTL_SECONDS = 86400
"""How long an enqueue claim stops the same item from being sent again by overlapping runs."""
MIN_SECONDS_LEFT = 20.0
"""A part stops taking new items when the invocation has less time left than this."""
OPEN_TASK_STATUSES = (
    VendorTaskStatus.PENDING,
    VendorTaskStatus.PROCESSING,
    VendorTaskStatus.PENDING_MODERATION,
    VendorTaskStatus.PENDING_ENTRY_READY,
    VendorTaskStatus.SCHEDULED,
)

ENTRY_OBJECT_TYPE = "KalturaBaseEntry"
MEDIA_CLIP_ENTRY_TYPE = 1
"""``KalturaEntryType.MEDIA_CLIP``."""
TASK_OBJECT_TYPE = "KalturaEntryVendorTask"


class SweepPart(StrEnum):
    """What a sweep looks at; also the ``sk`` of its watermark row."""

    SESSIONS = "sessions"
    ENTRIES = "entries"
    TASKS = "tasks"


class SweepError(KautoError):
    """Some parts could not be swept (the others were); ``failures`` maps (partner id, part) -> error type name."""

    def __init__(self, failures: Mapping[tuple[int, str], str]) -> None:
        listed = ", ".join(f"{pid}/{part}: {name}" for (pid, part), name in sorted(failures.items()))
        super().__init__(f"sweep failed for {listed}")
        self.failures = dict(failures)


@dataclass(slots=True)
class PartResult:
    """What one part of one partner's sweep did. ``complete`` is False when it stopped at its work bound."""

    part: SweepPart
    since: int
    until: int
    found: int = 0
    enqueued: int = 0
    checked: int = 0
    complete: bool = True
    watermark: int | None = None
    resumed: bool = False
    """The previous run stopped early: this one starts at its watermark, without the overlap."""


@dataclass(slots=True)
class PartnerSweep:
    """The parts swept for one partner."""

    partner_id: int
    parts: list[PartResult] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """The result of :func:`run_sweep`, one entry per partner swept."""

    now: int
    partners: tuple[PartnerSweep, ...]

    def totals(self) -> dict[str, int]:
        """Items found and enqueued over every partner and part (for the handler's response and logs)."""
        parts = [part for partner in self.partners for part in partner.parts]
        return {
            "partners": len(self.partners),
            "found": sum(part.found for part in parts),
            "enqueued": sum(part.enqueued for part in parts),
            "checked": sum(part.checked for part in parts),
            "incomplete_parts": sum(1 for part in parts if not part.complete),
        }


TimeLeft = Callable[[], float | None]


def run_sweep(
    deps: AutomationDeps,
    now: int,
    *,
    time_left: TimeLeft = lambda: None,
    partner_ids: Iterable[int] | None = None,
) -> SweepReport:
    """Sweep every configured partner (or ``partner_ids``) at unix time ``now``.

    ``time_left`` returns the invocation's remaining seconds (None: unbounded). A part that fails (one partner's
    outage, a report the partner lacks) does not stop the others: their watermarks advance, then
    :class:`SweepError` names the failed parts (their watermarks stay, so the next run retries the same window).
    Parts not started for lack of time are skipped the same way, without an error. Partners disabled by a broken
    configuration entry are skipped and alerted (:mod:`kauto.automations.config_health`).
    """
    disabled = disabled_partners(deps, now)  # alerts once a day per broken entry; their work is skipped
    partners = tuple(partner_ids) if partner_ids is not None else deps.config.configured_partner_ids
    partners = tuple(partner_id for partner_id in partners if partner_id not in disabled)
    swept: list[PartnerSweep] = []
    failures: dict[tuple[int, str], str] = {}
    for partner_id in partners:
        with subsegment("## partner", partner_id=partner_id, kind="sweep"):
            sweeper = _PartnerSweeper(deps, partner_id, now, time_left)
            swept.append(sweeper.run())
        failures.update({(partner_id, part): name for part, name in sweeper.failures.items()})
    report = SweepReport(now, tuple(swept))
    logger.info("sweep finished", extra=report.totals() | {"failed_parts": len(failures)})
    if failures:
        raise SweepError(failures)
    return report


class _PartnerSweeper:
    def __init__(self, deps: AutomationDeps, partner_id: int, now: int, time_left: TimeLeft) -> None:
        self.deps = deps
        self.partner_id = partner_id
        self.now = now
        self.time_left = time_left
        self.settings: PartnerSettings = deps.config.partner(partner_id)
        self.pk = f"sweep#{partner_id}"
        self.failures: dict[str, str] = {}

    def run(self) -> PartnerSweep:
        """Each part on its own: one failing (e.g. report 6000 refused) neither stops nor rewinds the others."""
        result = PartnerSweep(self.partner_id)
        parts: list[tuple[SweepPart, Callable[[PartResult], None]]] = []
        if self.settings.session_reports.enabled:
            parts.append((SweepPart.SESSIONS, self._sessions))
        if self.settings.captions.enabled:
            parts.append((SweepPart.ENTRIES, self._entries))
        parts.append((SweepPart.TASKS, self._tasks))
        for part, body in parts:
            left = self.time_left()
            if left is not None and left < MIN_SECONDS_LEFT:
                # Not started at all: the watermark stays and the next run covers this window.
                logger.warning("sweep part skipped, out of time", extra={"partner_id": self.partner_id, "part": part})
                count("SweepPartSkipped", part=part.value)
                continue
            try:
                result.parts.append(self._part(part, body))
            except Exception as error:  # isolated per part; every failure is re-raised by run_sweep as SweepError
                logger.exception("sweep part failed", extra={"partner_id": self.partner_id, "part": part.value})
                count("SweepPartFailed", part=part.value, error=type(error).__name__)
                self.failures[part.value] = type(error).__name__
        return result

    # ---------------------------------------------------------------------------------------------- watermarks

    def _part(self, part: SweepPart, body: Callable[[PartResult], None]) -> PartResult:
        rules = self.settings.sweep
        row = self.deps.ledger.get(self.pk, part.value)
        watermark = row.get("watermark") if row is not None else None
        resumed = isinstance(watermark, int) and row is not None and row.get("complete") is False
        if isinstance(watermark, int):
            # After a cut-short run everything before the watermark was handled: resume exactly there.
            since = watermark if resumed else watermark - rules.overlap_seconds
        else:
            since = self.now - rules.lookback_seconds
        until = min(self.now, since + rules.lookback_seconds)
        result = PartResult(part, since, max(since, until), resumed=resumed)
        body(result)
        result.watermark = result.until if result.complete else (result.watermark or since)
        self.deps.ledger.put(
            self.pk,
            part.value,
            {"watermark": result.watermark, "complete": result.complete, "swept_at": self.now, "found": result.found},
        )
        count("SweepItemsEnqueued", result.enqueued, part=part.value)
        logger.info(
            "sweep part done",
            extra={
                "partner_id": self.partner_id,
                "part": part.value,
                "since": result.since,
                "until": result.until,
                "found": result.found,
                "enqueued": result.enqueued,
                "complete": result.complete,
            },
        )
        return result

    def _take(self, result: PartResult, items: Iterable[tuple[int, T]]) -> Iterator[T]:
        """Items in time order until the part's work bound; marks the result incomplete when it stops early.

        ``result.watermark`` follows the time of the last item handled (the caller handles each item before asking
        for the next).
        """
        limit = self.settings.sweep.max_slice_results
        counted = 0
        for moment, item in items:
            left = self.time_left()
            if counted >= limit or (left is not None and left < MIN_SECONDS_LEFT):
                result.complete = False
                return
            # Items at the second a cut-short run stopped in were (partly) handled by it: they are looked at again
            # but not counted, so a run always gets past them.
            if not (result.resumed and moment == result.since):
                counted += 1
            result.found += 1
            yield item
            result.watermark = moment

    def _send_once(self, event: KalturaEvent, result: PartResult) -> None:
        token = uuid.uuid4().hex
        sk = f"sent#{event.dedupe_key}"
        claim = self.deps.ledger.claim(
            self.pk, sk, {OWNER_ATTRIBUTE: token, "sent_at": self.now}, ttl_seconds=SENT_CLAIM_TTL_SECONDS
        )
        if not claim.claimed:
            return
        try:
            self.deps.events.send(event)
        except BaseException:
            self.deps.ledger.delete_if(self.pk, sk, token)
            raise
        result.enqueued += 1

    def _event(
        self,
        kind: EventKind,
        key: str,
        object_type: str,
        object_id: str,
        entry_id: str | None,
        status: str | None,
        fields: Mapping[str, FieldValue],
    ) -> KalturaEvent:
        return KalturaEvent.sweep(
            kind,
            partner_id=self.partner_id,
            dedupe_key=key,
            object_type=object_type,
            object_id=object_id,
            entry_id=entry_id,
            received_at=self.now,
            status=status,
            fields=fields,
        )

    # ------------------------------------------------------------------------------------------------- sessions

    def _sessions(self, result: PartResult) -> None:
        client = self.deps.kaltura(self.partner_id)
        # Report 6000 selects sessions by start time: reach back far enough for a long session ending in the window.
        rows = read_session_rows(client, result.since - MAX_SESSION_SECONDS, result.until)
        ended = sorted(
            (
                (row.end, RoomSession(self.partner_id, row.room_entry_id, row.session_id, row.start, row.end))
                for row in rows
                if not row.parent_entry_id
                and row.start is not None
                and row.end is not None
                and row.start <= row.end
                and result.since <= row.end <= result.until
            ),
            key=lambda item: (item[0], item[1].room_entry_id, item[1].session_id),
        )
        for session in self._take(result, ended):
            pk, sk = session_ledger_key(self.partner_id, session.room_entry_id, session.session_id)
            existing = self.deps.ledger.get(pk, sk)
            key = f"sweep:session:{self.partner_id}:{session.room_entry_id}:{session.session_id}"
            retry = False
            if existing is not None and existing.get(STATE_ATTRIBUTE) == SESSION_DONE:
                if not retryable_reports(existing):
                    continue
                # Done, but some of its microservice reports failed: send it again to retry those only.
                retry = True
                key += f":retry-reports:{existing.get('report_retries') or 0}"
            event = session_ended_event(session, dedupe_key=key, received_at=self.now, retry_reports=retry)
            self._send_once(event, result)

    # -------------------------------------------------------------------------------------------------- entries

    def _entries(self, result: PartResult) -> None:
        client = self.deps.kaltura(self.partner_id)
        # Media clips only: REACH captions media (and meeting or live recordings are media clips too); rooms and
        # playlists change often and would be listed only to be skipped.
        entries = client.entries.list(
            since=result.since,
            until=result.until,
            time_field="updatedAt",
            statuses=(EntryStatus.READY,),
            entry_types=(MEDIA_CLIP_ENTRY_TYPE,),
        )
        for entry in self._take(result, ((entry.updated_at or result.since, entry) for entry in entries)):
            decision = self.deps.ledger.get(caption_pk(self.partner_id, entry.id), decision_sk(entry))
            if decision is not None and decision.get("final"):
                continue
            key = f"sweep:entry:{self.partner_id}:{entry.id}:{entry.updated_at or 0}"
            status = None if entry.status is None else str(entry.status)
            event = self._event(
                EventKind.ENTRY_READY,
                key,
                entry.object_type or ENTRY_OBJECT_TYPE,
                entry.id,
                entry.id,
                status,
                entry_fields(entry),
            )
            self._send_once(event, result)

    # ---------------------------------------------------------------------------------------------------- tasks

    def _tasks(self, result: PartResult) -> None:
        client = self.deps.kaltura(self.partner_id)
        task_filter = {"objectType": "KalturaEntryVendorTaskFilter"}
        # ReachAPI.list_tasks slices by createdAt only; a status change shows in updatedAt.
        updated = (
            VendorTask.from_api(obj)
            for obj in iter_list_sliced(
                client,
                TASK_SERVICE,
                "list",
                task_filter,
                kind="entryVendorTask",
                time_field="updatedAt",
                since=result.since,
                until=result.until,
            )
        )
        for task in self._take(result, ((task.updated_at or result.since, task) for task in updated)):
            status = as_int(task.status)
            if status is None or self._task_known(task, status):
                continue
            fields = task_fields(task)
            key = f"sweep:task:{self.partner_id}:{task.id}:{status}:{task.updated_at or 0}"
            event = self._event(
                EventKind.VENDOR_TASK_STATUS, key, TASK_OBJECT_TYPE, str(task.id), task.entry_id, str(status), fields
            )
            self._send_once(event, result)
        if not result.complete:
            return  # out of time or work for this run: the open tasks are checked by the next one
        self._check_open_tasks(client, result)

    def _task_known(self, task: VendorTask, status: int) -> bool:
        """Whether the ledger already holds this open status as recent as ``task``'s. A final status is always
        sent (once per run window): the task path re-applies what a final status implies, idempotently, which
        repairs a worker that died between recording it and alerting."""
        if status in FINAL_TASK_STATUSES:
            return False
        row = self.deps.ledger.get(task_pk(self.partner_id, task.id), TASK_SK)
        if row is None:
            return False
        seen = row.get("updated_at")
        return row.get("status") == status and isinstance(seen, int) and seen >= (task.updated_at or 0)

    def _check_open_tasks(self, client: KalturaClient, result: PartResult) -> None:
        limit = self.settings.sweep.max_slice_results
        # Sliced by createdAt from the epoch: the client halves the range whenever it holds more than 10,000 tasks.
        for task in client.reach.list_tasks(statuses=OPEN_TASK_STATUSES, created_between=(0, self.now)):
            left = self.time_left()
            if result.checked >= limit or (left is not None and left < MIN_SECONDS_LEFT):
                logger.warning("open task check cut short", extra={"partner_id": self.partner_id})
                count("SweepOpenTasksCutShort")
                return
            check_open_task(task, self.deps, partner_id=self.partner_id)
            result.checked += 1


def task_fields(task: VendorTask) -> dict[str, FieldValue]:
    """The ``fields`` of a ``vendor_task_status`` event for ``task``, named like the webhook's (Kaltura's names)."""
    values: dict[str, FieldValue | None] = {
        "id": task.id,
        "entryId": task.entry_id or None,
        "status": as_int(task.status),
        "catalogItemId": task.catalog_item_id,
        "reachProfileId": task.reach_profile_id,
        "serviceType": task.service_type,
        "serviceFeature": task.service_feature,
        "turnAroundTime": task.turn_around_time,
        "errDescription": task.err_description,
        "outputObjectId": task.output_object_id,
        "createdAt": task.created_at,
        "updatedAt": task.updated_at,
        "finishTime": task.finish_time,
        "expectedFinishTime": task.expected_finish_time,
        "version": task.version,
        "price": task.price,
    }
    return {name: value for name, value in values.items() if value is not None}


# Entry fields as the webhook's normalizer keeps them (kauto.intake.normalize.ENTRY_FIELDS): the worker and the
# caption rules read the same names whichever path the event took.
_ENTRY_STRING_FIELDS = (
    "id",
    "name",
    "tags",
    "adminTags",
    "categories",
    "categoriesIds",
    "replacedEntryId",
    "sourceType",
    "rootEntryId",
)
_ENTRY_INT_FIELDS = ("duration", "msDuration", "createdAt", "updatedAt")
_ENTRY_ENUM_FIELDS = ("type", "mediaType", "status", "replacementStatus")


def entry_fields(entry: Entry) -> dict[str, FieldValue]:
    """The ``fields`` of an ``entry_ready`` event for ``entry``, named and typed like the webhook's."""
    raw = entry.raw
    fields: dict[str, FieldValue] = {}
    for name in _ENTRY_STRING_FIELDS:
        value = raw.get(name)
        if value is not None and value != "" and not isinstance(value, bool | dict | list):
            fields[name] = str(value)
    for name in _ENTRY_INT_FIELDS:
        number = _int(raw.get(name))
        if number is not None:
            fields[name] = number
    for name in _ENTRY_ENUM_FIELDS:
        value = raw.get(name)
        if value is None or value == "" or isinstance(value, bool | dict | list):
            continue
        number = _int(value)
        fields[name] = number if number is not None else str(value)
    return fields


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return None
