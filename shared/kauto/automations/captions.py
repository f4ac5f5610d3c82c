"""REACH captions when an entry becomes ready, ordered exactly once per (partner, entry, catalog item).

:func:`order_captions` takes the entry as the router re-read it through the API (a webhook snapshot can be stale or
late; a READY can recur after re-conversion, docs/kaltura.md#recognising-events) and decides, in this order:

1. captions disabled for the partner: nothing (not a decision; the automation is off).
2. entry not READY any more: still converting (IMPORT, PRECONVERT, PENDING) -> :class:`RetryLaterError`; anything
   else (deleted, blocked, errored) -> skipped.
3. a final decision already recorded for this content (``decision#v<version>``, else ``decision#u<updatedAt>``):
   a repeated READY of the same content -> nothing more.
4. rules that need no API call: temporary replacement entry (``replacedEntryId``), media type, duration, categories,
   tags, admin tags -> skipped with the rule as the reason.
5. the catalog item: ``catalog_item_id``, or chosen from ``vendorCatalogItem.list`` by the configured feature, service
   type, language and turnaround (the lowest id wins when several match; cached per invocation). None enabled for
   the partner -> skipped, and an alert once per partner per period (a person must enable one).
6. the ledger row ``caption#<pid>#<entry>`` / ``item#<catalog item>`` already ``ordered``/``done`` -> nothing.
7. with no claim yet: an existing caption in the wanted language -> skipped; dry run -> recorded, nothing ordered.
8. ordered exactly once (below).

Exactly once. Kaltura has no idempotency key on ``entryVendorTask.add`` (its own duplicate check covers only some
states, docs/kaltura.md#reach-task-add), so the ledger row is claimed *before* ordering:

- ``claim`` is a conditional put (state ``claimed``, a random owner token, ``claimed_at``). Of racing workers only
  one creates it.
- The claim winner first asks Kaltura (``entryVendorTask.list`` for the entry and catalog item): a task that exists
  already (ordered in KMC, by a rule, or by a worker that died after ``add``) is *adopted*: recorded as ordered.
  Only when none exists does it call ``add``, then records ``ordered`` with the task id (conditional on still owning
  the claim). ``ENTRY_VENDOR_TASK_DUPLICATION`` means Kaltura has the task: it is looked up and recorded as ordered.
- A loser finds the row: ``ordered``/``done`` -> nothing to do. ``claimed`` by someone else -> it checks Kaltura the
  same way and adopts an existing task (the owner may have died after ``add``); otherwise, if the claim is older than
  the worker timeout its owner is certainly dead and the claim is taken over with a conditional update (one taker
  wins) before ordering; a fresh claim means an order is in flight -> :class:`RetryLaterError`.
- A worker that dies after ``add`` but before recording leaves the row ``claimed``; the retry finds the task through
  ``entryVendorTask.list`` and adopts it: no second order. Any existing task counts, even one that ended in ERROR:
  ordering again would spend credit a second time, and the error alert asks a person to decide.
- ``add`` failing for sure (credit, entry not ready, rejected) releases the claim so a later event can order. An
  ambiguous failure (timeout, 5xx: the task may exist) keeps it and retries; the retry adopts or, once the claim is
  stale, orders.

Every decision is recorded under ``decision#<content>`` (ordered, adopted, skipped and why, dry run, credit).
Credit problems (``EXCEEDED_MAX_CREDIT_ALLOWED``, ``CREDIT_EXPIRED``) alert once per partner per ``alerts.
credit_period`` and are not retried; their decision is not final, so a later READY or the sweep tries again. Setup
problems a person must fix (no enabled catalog item, item or profile missing, REACH forbidden) alert at the same pace;
refusals about one entry (too short, unsupported type) are only recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kauto.automation_config import CaptionRules, CatalogItemSelector
from kauto.automations.deps import AutomationDeps
from kauto.automations.errors import RetryLaterError
from kauto.automations.tasks import record_ordered_task
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, Severity
from kauto.aws.ledger import OWNER_ATTRIBUTE, STATE_ATTRIBUTE, Item, LedgerConflictError
from kauto.kaltura import (
    CaptionAsset,
    CatalogItem,
    Disposition,
    Entry,
    EntryStatus,
    KalturaAlreadyDoneError,
    KalturaAPIError,
    KalturaClient,
    KalturaCreditError,
    KalturaNotReadyError,
    VendorTask,
)
from kauto.kaltura.types import as_int
from kauto.models import KalturaEvent

DECISION_TTL_SECONDS = 400 * 24 * 3600
"""Decisions are an audit trail: kept a little over a year. Caption rows never expire (they guard credit)."""

CAPTION_CATALOG_MEMO = "caption_catalog_items"

# Statuses an entry passes through on its way to READY again (re-conversion, replacement): worth waiting for.
_CONVERTING = frozenset({EntryStatus.IMPORT, EntryStatus.PRECONVERT, EntryStatus.PENDING})
# Caption assets that do not count as "a caption exists" (KalturaFlavorAssetStatus -1 ERROR, 3 DELETED).
_DEAD_CAPTION_STATUSES = frozenset({-1, 3})
# Errors of entryVendorTask.add that need a person (catalog item, profile or plugin missing or disabled).
_SETUP_ERROR_CODES = frozenset(
    {
        "CATALOG_ITEM_NOT_FOUND",
        "CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT",
        "REACH_PROFILE_NOT_FOUND",
        "FEATURE_FORBIDDEN",
        "SERVICE_FORBIDDEN",
        "PROPERTY_VALIDATION_CANNOT_BE_NULL",
    }
)


class ClaimState(StrEnum):
    """``state`` of a caption ledger row."""

    CLAIMED = "claimed"
    """An order is being placed (or its worker died; see the module docstring)."""
    ORDERED = "ordered"
    """A REACH task exists for this entry and catalog item (``task_id``)."""
    DONE = "done"
    """The task finished READY (``caption_asset_id``); set by :mod:`kauto.automations.tasks`."""


class Outcome(StrEnum):
    """What happened to one entry-ready event."""

    ORDERED = "ordered"
    """``entryVendorTask.add`` succeeded here."""
    ADOPTED = "adopted"
    """A task already existed in Kaltura (listed, or reported as a duplicate) and was recorded as the order."""
    ALREADY_ORDERED = "already_ordered"
    """The ledger had the order already."""
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    CREDIT = "credit"
    REJECTED = "rejected"
    REPEATED = "repeated"
    """A final decision exists for this content; nothing was recorded again."""
    DISABLED = "disabled"


# Outcomes whose decision is final: a repeated READY of the same content is not evaluated again.
_FINAL_OUTCOMES = frozenset(
    {Outcome.ORDERED, Outcome.ADOPTED, Outcome.ALREADY_ORDERED, Outcome.SKIPPED, Outcome.DRY_RUN, Outcome.REJECTED}
)


@dataclass(frozen=True, slots=True)
class CaptionDecision:
    """The outcome for one entry; ``reason`` says why it was skipped or rejected."""

    outcome: Outcome
    entry_id: str
    reason: str | None = None
    catalog_item_id: int | None = None
    task_id: int | None = None


def caption_pk(partner_id: int, entry_id: str) -> str:
    """Ledger partition of an entry's caption orders and decisions."""
    return f"caption#{partner_id}#{entry_id}"


def item_sk(catalog_item_id: int) -> str:
    """Ledger sort key of the order of one catalog item."""
    return f"item#{catalog_item_id}"


def decision_sk(entry: Entry) -> str:
    """Ledger sort key of the decision about this content of the entry (its version, else its updatedAt)."""
    version = as_int(entry.raw.get("version"))
    if version is not None:
        return f"decision#v{version}"
    return f"decision#u{entry.updated_at or 0}"


def order_captions(event: KalturaEvent, entry: Entry, deps: AutomationDeps) -> CaptionDecision:
    """Decide about captions for ``entry`` (re-read through the API) and order them at most once.

    Raises :class:`RetryLaterError` when the entry is still converting, Kaltura says ``ENTRY_NOT_READY`` or another
    worker is placing the same order; retryable Kaltura and AWS errors propagate.
    """
    partner_id = event.partner_id
    rules = deps.config.partner(partner_id).captions
    if not rules.enabled:
        return CaptionDecision(Outcome.DISABLED, entry.id)
    context = _Context(event, entry, rules, deps)
    decision = context.decide()
    count("CaptionDecision", outcome=decision.outcome.value)
    logger.info(
        "caption decision",
        extra={
            "partner_id": partner_id,
            "entry_id": entry.id,
            "outcome": decision.outcome.value,
            "reason": decision.reason,
            "catalog_item_id": decision.catalog_item_id,
            "task_id": decision.task_id,
        },
    )
    return decision


class _Context:
    """One decision: the entry, the partner's rules and the ports."""

    def __init__(self, event: KalturaEvent, entry: Entry, rules: CaptionRules, deps: AutomationDeps) -> None:
        self.event = event
        self.entry = entry
        self.rules = rules
        self.deps = deps
        self.partner_id = event.partner_id
        self.pk = caption_pk(event.partner_id, entry.id)
        self.decision_sk = decision_sk(entry)

    @property
    def client(self) -> KalturaClient:
        return self.deps.kaltura(self.partner_id)

    def decide(self) -> CaptionDecision:
        if not self.entry.is_ready:
            if self.entry.status in _CONVERTING:
                raise RetryLaterError(f"entry {self.entry.id} is converting (status {self.entry.status})")
            return self.record(Outcome.SKIPPED, "entry_not_ready")
        previous = self.deps.ledger.get(self.pk, self.decision_sk)
        if previous is not None and previous.get("final") and bool(previous.get("dry_run")) == self.rules.dry_run:
            return CaptionDecision(Outcome.REPEATED, self.entry.id, previous.get("reason"))
        reason = rule_violation(self.entry, self.rules)
        if reason is not None:
            return self.record(Outcome.SKIPPED, reason)
        item = self.catalog_item()
        if item is None:
            self.alert_setup_problem("no_catalog_item", "No REACH caption catalog item matches the configuration")
            return self.record(Outcome.SKIPPED, "no_catalog_item")
        sk = item_sk(item.id)
        row = self.deps.ledger.get(self.pk, sk)
        if row is not None and row.get(STATE_ATTRIBUTE) in (ClaimState.ORDERED, ClaimState.DONE):
            return self.record(Outcome.ALREADY_ORDERED, None, item.id, _task_id(row))
        if row is None and self.rules.skip_if_caption_exists and self.caption_exists(item):
            return self.record(Outcome.SKIPPED, "caption_exists", item.id)
        if self.rules.dry_run:
            return self.record(Outcome.DRY_RUN, None, item.id)
        return self.order_once(item, sk)

    # ---------------------------------------------------------------------------------------------- lookups

    def catalog_item(self) -> CatalogItem | None:
        rules = self.rules
        selector = rules.catalog_item if rules.catalog_item_id is None else None
        items = self.enabled_caption_items(selector)
        if rules.catalog_item_id is not None:
            return next((item for item in items if item.id == rules.catalog_item_id), None)
        return min(items, key=lambda item: item.id, default=None)

    def enabled_caption_items(self, selector: CatalogItemSelector | None) -> list[CatalogItem]:
        key = (CAPTION_CATALOG_MEMO, self.partner_id, selector)
        items: list[CatalogItem] | None = self.deps.memo.get(key)
        if items is None:
            items = self.client.reach.list_caption_catalog_items(
                source_language=selector.source_language if selector else None,
                service_type=selector.service_type if selector else None,
                turn_around_time=selector.turn_around_time if selector else None,
            )
            self.deps.memo[key] = items
        return items

    def caption_exists(self, item: CatalogItem) -> bool:
        language = self.rules.caption_language or item.source_language
        assets = self.client.captions.list_for_entry(self.entry.id)
        return any(_caption_matches(asset, language) for asset in assets)

    def existing_task(self, catalog_item_id: int) -> VendorTask | None:
        """The newest task Kaltura has for this entry and catalog item, whatever its status."""
        tasks = self.client.reach.list_tasks(entry_id=self.entry.id, catalog_item_id=catalog_item_id)
        return max(tasks, key=lambda task: task.id, default=None)

    # ------------------------------------------------------------------------------------------ exactly once

    def order_once(self, item: CatalogItem, sk: str) -> CaptionDecision:
        ledger = self.deps.ledger
        token = uuid.uuid4().hex
        now = int(self.deps.clock())
        claim = ledger.claim(
            self.pk,
            sk,
            {
                STATE_ATTRIBUTE: ClaimState.CLAIMED.value,
                OWNER_ATTRIBUTE: token,
                "claimed_at": now,
                "entry_id": self.entry.id,
                "catalog_item_id": item.id,
            },
        )
        if not claim.claimed:
            current = claim.item
            if current.get(STATE_ATTRIBUTE) in (ClaimState.ORDERED, ClaimState.DONE):
                return self.record(Outcome.ALREADY_ORDERED, None, item.id, _task_id(current))
            existing = self.existing_task(item.id)
            if existing is not None:
                return self.adopt(existing, item, sk, str(current.get(OWNER_ATTRIBUTE)))
            claimed_at = current.get("claimed_at")
            age = now - claimed_at if isinstance(claimed_at, int | float) else float("inf")
            if age < self.deps.worker_timeout_seconds:
                raise RetryLaterError(f"the caption order of entry {self.entry.id} is in flight in another worker")
            try:
                ledger.update(
                    self.pk,
                    sk,
                    {OWNER_ATTRIBUTE: token, "claimed_at": now, "taken_over_at": now},
                    expect={STATE_ATTRIBUTE: ClaimState.CLAIMED.value, OWNER_ATTRIBUTE: current.get(OWNER_ATTRIBUTE)},
                )
            except LedgerConflictError as conflict:
                raise RetryLaterError(f"another worker took over the order of entry {self.entry.id}") from conflict
            logger.warning(
                "took over an abandoned caption claim",
                extra={"partner_id": self.partner_id, "entry_id": self.entry.id, "claim_age_s": age},
            )
        else:
            existing = self.existing_task(item.id)
            if existing is not None:
                return self.adopt(existing, item, sk, token)
        return self.add(item, sk, token)

    def add(self, item: CatalogItem, sk: str, token: str) -> CaptionDecision:
        try:
            task = self.client.reach.order_caption(self.entry.id, item.id, reach_profile_id=self.rules.reach_profile_id)
        except KalturaAlreadyDoneError:
            # ENTRY_VENDOR_TASK_DUPLICATION: Kaltura has the task (docs/kaltura.md#reach-task-add).
            existing = self.existing_task(item.id)
            if existing is None:
                raise RetryLaterError(
                    f"Kaltura reports a duplicate order for entry {self.entry.id} but lists no task yet"
                ) from None
            return self.adopt(existing, item, sk, token)
        except KalturaCreditError as error:
            self.release(sk, token)
            return self.credit_problem(error, item)
        except KalturaNotReadyError as error:
            self.release(sk, token)
            raise RetryLaterError(f"entry {self.entry.id} is not ready for REACH ({error.code})") from error
        except KalturaAPIError as error:
            if error.disposition is not Disposition.PERMANENT:
                raise  # ambiguous (rate limit, server error): keep the claim, the retry adopts or orders
            self.release(sk, token)
            return self.rejected(error, item)
        # Any other failure (timeout, 5xx, cut or malformed answer) is ambiguous: the task may exist. The claim
        # stays; the retry adopts the task or, once the claim is stale, orders.
        self.mark_ordered(task, item, sk, token, via="add")
        count("CaptionOrdered")
        return self.record(Outcome.ORDERED, None, item.id, task.id)

    def adopt(self, task: VendorTask, item: CatalogItem, sk: str, owner: str) -> CaptionDecision:
        self.mark_ordered(task, item, sk, owner, via="existing")
        return self.record(Outcome.ADOPTED, None, item.id, task.id)

    def mark_ordered(self, task: VendorTask, item: CatalogItem, sk: str, owner: str, *, via: str) -> None:
        now = int(self.deps.clock())
        # The task row first: a status webhook may arrive any moment, and a retry after a crash here adopts the
        # same task again, so both writes are safe to repeat.
        record_ordered_task(self.partner_id, task, entry=self.entry, catalog_item=item, deps=self.deps)
        try:
            self.deps.ledger.update(
                self.pk,
                sk,
                {STATE_ATTRIBUTE: ClaimState.ORDERED.value, "task_id": task.id, "ordered_at": now, "ordered_via": via},
                expect={STATE_ATTRIBUTE: ClaimState.CLAIMED.value, OWNER_ATTRIBUTE: owner},
            )
        except LedgerConflictError as conflict:
            if conflict.current_state in (ClaimState.ORDERED, ClaimState.DONE):
                return  # recorded concurrently (the same task: Kaltura has one per entry and item)
            # Our claim was taken over (we ran past the worker timeout). The task exists, so the retry adopts it.
            raise RetryLaterError(f"lost the caption claim of entry {self.entry.id} before recording") from conflict

    def release(self, sk: str, token: str) -> None:
        """Give the claim up after an order that certainly did not happen, so a later event can order."""
        self.deps.ledger.delete_if(self.pk, sk, token)

    # ------------------------------------------------------------------------------------------- outcomes

    def credit_problem(self, error: KalturaCreditError, item: CatalogItem) -> CaptionDecision:
        period = self.deps.config.partner(self.partner_id).alerts.credit_period
        alert = Alert(
            rule="reach_credit",
            severity=Severity.CRITICAL,
            partner_id=self.partner_id,
            subject=f"Kaltura partner {self.partner_id}: REACH credit problem ({error.code})",
            summary=(
                "REACH refused a caption order because the credit is exhausted or expired. Captions are not being "
                "ordered for new entries until the credit is renewed."
            ),
            details={"code": error.code, "entry_id": self.entry.id, "catalog_item_id": item.id},
        )
        self.deps.alerts.publish(alert, dedupe_key="credit", period=period)
        count("CaptionCreditProblem")
        return self.record(Outcome.CREDIT, error.code, item.id, final=False)

    def rejected(self, error: KalturaAPIError, item: CatalogItem) -> CaptionDecision:
        if error.code in _SETUP_ERROR_CODES:
            self.alert_setup_problem(error.code, f"REACH refused caption orders ({error.code})", item.id)
        return self.record(Outcome.REJECTED, error.code, item.id)

    def alert_setup_problem(self, code: str, summary: str, catalog_item_id: int | None = None) -> None:
        period = self.deps.config.partner(self.partner_id).alerts.credit_period
        alert = Alert(
            rule="reach_order_setup",
            severity=Severity.CRITICAL,
            partner_id=self.partner_id,
            subject=f"Kaltura partner {self.partner_id}: captions cannot be ordered ({code})",
            summary=f"{summary}. Check the REACH catalog items, profile and the automation configuration.",
            details={"code": code, "entry_id": self.entry.id, "catalog_item_id": catalog_item_id},
        )
        self.deps.alerts.publish(alert, dedupe_key=code.lower(), period=period)

    def record(
        self,
        outcome: Outcome,
        reason: str | None,
        catalog_item_id: int | None = None,
        task_id: int | None = None,
        *,
        final: bool | None = None,
    ) -> CaptionDecision:
        """Write the decision for this content. Ours wins over a concurrent "already ordered"; others don't
        overwrite an existing final decision."""
        attrs: dict[str, Any] = {
            "outcome": outcome.value,
            "reason": reason,
            "catalog_item_id": catalog_item_id,
            "task_id": task_id,
            "dry_run": self.rules.dry_run,
            "final": outcome in _FINAL_OUTCOMES if final is None else final,
            "decided_at": int(self.deps.clock()),
            "entry_version": as_int(self.entry.raw.get("version")),
            "entry_updated_at": self.entry.updated_at,
            "event": self.event.dedupe_key,
            "source": self.event.body_format.value,
        }
        ledger = self.deps.ledger
        if outcome in (Outcome.ORDERED, Outcome.ADOPTED):
            ledger.put(self.pk, self.decision_sk, attrs, ttl_seconds=DECISION_TTL_SECONDS)
        else:
            claim = ledger.claim(self.pk, self.decision_sk, attrs, ttl_seconds=DECISION_TTL_SECONDS)
            if not claim.claimed and not claim.item.get("final"):
                ledger.put(self.pk, self.decision_sk, attrs, ttl_seconds=DECISION_TTL_SECONDS)
        return CaptionDecision(outcome, self.entry.id, reason, catalog_item_id, task_id)


# ------------------------------------------------------------------------------------------------------ rules


def rule_violation(entry: Entry, rules: CaptionRules) -> str | None:
    """The first configured rule ``entry`` fails (the skip reason), or ``None`` when it qualifies.

    Needs no API call: everything comes from the re-read entry.
    """
    if entry.replaced_entry_id:
        # A temporary replacement entry: HTTP templates do not filter them out (docs/kaltura.md#recognising-events).
        return "replacement_entry"
    if rules.media_types and as_int(entry.media_type) not in rules.media_types:
        return "media_type"
    duration = _duration_seconds(entry)
    if rules.min_duration_seconds is not None and (duration is None or duration < rules.min_duration_seconds):
        return "too_short"
    if rules.max_duration_seconds is not None and duration is not None and duration > rules.max_duration_seconds:
        return "too_long"
    categories = _categories(entry.raw)
    if rules.include_categories and not _any_category(categories, rules.include_categories):
        return "category_not_included"
    if _any_category(categories, rules.exclude_categories):
        return "category_excluded"
    for field_name, value, include, exclude in (
        ("tag", entry.tags, rules.include_tags, rules.exclude_tags),
        ("admin_tag", entry.admin_tags, rules.include_admin_tags, rules.exclude_admin_tags),
    ):
        tags = split_tags(value)
        if include and not tags & _lowered(include):
            return f"{field_name}_not_included"
        if tags & _lowered(exclude):
            return f"{field_name}_excluded"
    return None


def split_tags(value: str | None) -> frozenset[str]:
    """Kaltura's comma-separated tags (``"a, b,c"``) as a set of lower-case tags."""
    if not value:
        return frozenset()
    return frozenset(tag.strip().lower() for tag in value.split(",") if tag.strip())


def _lowered(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value.lower() for value in values)


def _duration_seconds(entry: Entry) -> float | None:
    if entry.ms_duration is not None:
        return entry.ms_duration / 1000
    return None if entry.duration is None else float(entry.duration)


def _categories(raw: Mapping[str, Any]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(category ids, full names) of an entry: ``categoriesIds`` "12,34", ``categories`` "A>B,C"."""
    ids = frozenset(part.strip() for part in str(raw.get("categoriesIds") or "").split(",") if part.strip())
    names = tuple(part.strip().lower() for part in str(raw.get("categories") or "").split(",") if part.strip())
    return ids, names


def _any_category(categories: tuple[frozenset[str], tuple[str, ...]], wanted: Iterable[str]) -> bool:
    """Whether a wanted id or full name matches; a name also matches its sub-categories ("A" covers "A>B")."""
    ids, names = categories
    for item in wanted:
        lowered = item.lower()
        if item in ids or any(name == lowered or name.startswith(lowered + ">") for name in names):
            return True
    return False


def _caption_matches(asset: CaptionAsset, language: str | None) -> bool:
    if as_int(asset.status) in _DEAD_CAPTION_STATUSES:
        return False
    if language is None:
        return True
    wanted = language.lower()
    return wanted in {(asset.language or "").lower(), (asset.language_code or "").lower()}


def _task_id(row: Item) -> int | None:
    task_id = row.get("task_id")
    return task_id if isinstance(task_id, int) else None
