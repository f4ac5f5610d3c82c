"""Fakes for the caption, task and router unit tests: an in-memory Kaltura (entries, captions, REACH) with the
client's typed surface, a fake clock, events and the AutomationDeps built from the in-memory AWS fakes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers import SettableClock
from kauto.automation_config import build_automation_config
from kauto.automations.deps import AutomationDeps
from kauto.kaltura import CaptionAsset, CatalogItem, Entry, VendorTask
from kauto.kaltura.errors import error_from_body
from kauto.models import BodyFormat, EventKind, KalturaEvent
from kauto_local.fakes import InMemoryAlertPublisher, InMemoryEventQueue, InMemoryLedger, InMemoryObjectStore

PARTNER_ID = 1234567
NOW = 1_767_254_400  # 2026-01-01T08:00:00Z, a Thursday
ITEM_ID = 445566


class FakeClock(SettableClock):
    """Starts at ``NOW``."""

    def __init__(self, now: float = NOW) -> None:
        super().__init__(now)


def api_error(code: str) -> Exception:
    """The typed error the real client raises for a ``KalturaAPIException`` with ``code``."""
    return error_from_body({"objectType": "KalturaAPIException", "code": code, "message": f"{code} (fake)"})


@dataclass
class FakeKaltura:
    """Entries, caption assets, catalog items and vendor tasks in memory; ``calls`` lists ``(api, args)``.

    ``add_failures`` are raised by the next ``order_caption`` calls (one each); ``lose_add_response`` makes the next
    ``order_caption`` create the task and then raise (the answer was lost, as with a fault ``when="after"``).
    """

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    captions: list[dict[str, Any]] = field(default_factory=list)
    catalog: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    add_failures: list[Exception] = field(default_factory=list)
    lose_add_response: Exception | None = None
    before_add: Callable[[], None] | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(9001))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- test setup -------------------------------------------------------------------------------------------

    def add_entry(self, entry_id: str = "1_entry", **overrides: Any) -> dict[str, Any]:
        entry = {
            "objectType": "KalturaMediaEntry",
            "id": entry_id,
            "name": "Quarterly all-hands",
            "partnerId": PARTNER_ID,
            "status": 2,
            "type": 1,
            "mediaType": 1,
            "duration": 125,
            "msDuration": 125_400,
            "version": 0,
            "createdAt": NOW - 600,
            "updatedAt": NOW - 10,
            "tags": "",
            "adminTags": "",
            "categories": "",
            "categoriesIds": "",
        }
        entry.update(overrides)
        self.entries[entry_id] = entry
        return entry

    def add_catalog_item(self, item_id: int = ITEM_ID, **overrides: Any) -> dict[str, Any]:
        item = {
            "objectType": "KalturaVendorCaptionsCatalogItem",
            "id": item_id,
            "name": f"Machine captions {item_id}",
            "status": 2,
            "serviceType": 2,
            "serviceFeature": 1,
            "turnAroundTime": -1,
            "sourceLanguage": "English",
        }
        item.update(overrides)
        self.catalog.append(item)
        return item

    def add_caption(self, entry_id: str, language: str = "English", status: int = 2) -> None:
        self.captions.append(
            {"id": f"1_cap{len(self.captions)}", "entryId": entry_id, "language": language, "status": status}
        )

    def add_task(self, entry_id: str, catalog_item_id: int = ITEM_ID, status: int = 1, **overrides: Any) -> int:
        task_id = next(self._ids)
        self.tasks[task_id] = {
            "id": task_id,
            "partnerId": PARTNER_ID,
            "entryId": entry_id,
            "catalogItemId": catalog_item_id,
            "status": status,
            "createdAt": NOW,
            "updatedAt": NOW,
            "turnAroundTime": -1,
            **overrides,
        }
        return task_id

    def adds(self) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == "reach.order_caption"]

    def count(self, api: str) -> int:
        return sum(1 for name, _ in self.calls if name == api)

    # -- the client's surface -------------------------------------------------------------------------------------

    def _record(self, name: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((name, args))

    def get_entry(self, entry_id: str) -> Entry:
        self._record("entries.get", entry_id)
        if entry_id not in self.entries:
            raise api_error("ENTRY_ID_NOT_FOUND")
        return Entry.from_api(self.entries[entry_id])

    def list_for_entry(self, entry_id: str) -> list[CaptionAsset]:
        self._record("captions.list_for_entry", entry_id)
        return [CaptionAsset.from_api(c) for c in self.captions if c["entryId"] == entry_id]

    def list_caption_catalog_items(
        self,
        *,
        source_language: str | None = None,
        service_type: int | None = None,
        turn_around_time: int | None = None,
    ) -> list[CatalogItem]:
        self._record("reach.list_caption_catalog_items", source_language, service_type, turn_around_time)
        wanted = {"sourceLanguage": source_language, "serviceType": service_type, "turnAroundTime": turn_around_time}
        return [
            CatalogItem.from_api(item)
            for item in self.catalog
            if all(value is None or item.get(key) == value for key, value in wanted.items())
        ]

    def list_tasks(self, *, entry_id: str | None = None, catalog_item_id: int | None = None) -> Iterator[VendorTask]:
        self._record("reach.list_tasks", entry_id, catalog_item_id)
        with self._lock:
            matching = [
                dict(task)
                for task in self.tasks.values()
                if (entry_id is None or task["entryId"] == entry_id)
                and (catalog_item_id is None or task["catalogItemId"] == catalog_item_id)
            ]
        return iter([VendorTask.from_api(task) for task in matching])

    def get_task(self, task_id: int) -> VendorTask:
        self._record("reach.get_task", task_id)
        if task_id not in self.tasks:
            raise api_error("ENTRY_VENDOR_TASK_NOT_FOUND")
        return VendorTask.from_api(self.tasks[task_id])

    def order_caption(
        self, entry_id: str, catalog_item_id: int, *, reach_profile_id: int | None = None, partner_data: Any = None
    ) -> VendorTask:
        self._record("reach.order_caption", entry_id, catalog_item_id, reach_profile_id)
        if self.before_add is not None:
            self.before_add()
        with self._lock:
            if self.add_failures:
                raise self.add_failures.pop(0)
            task_id = self.add_task(entry_id, catalog_item_id)
            lost, self.lose_add_response = self.lose_add_response, None
        if lost is not None:
            raise lost
        return VendorTask.from_api(self.tasks[task_id])

    def client(self) -> FakeClient:
        return FakeClient(self)


class _Entries:
    def __init__(self, fake: FakeKaltura) -> None:
        self.get = fake.get_entry


class _Captions:
    def __init__(self, fake: FakeKaltura) -> None:
        self.list_for_entry = fake.list_for_entry


class _Reach:
    def __init__(self, fake: FakeKaltura) -> None:
        self.list_caption_catalog_items = fake.list_caption_catalog_items
        self.list_tasks = fake.list_tasks
        self.get_task = fake.get_task
        self.order_caption = fake.order_caption


class FakeClient:
    """What the automations use of ``KalturaClient``: ``entries``, ``captions``, ``reach``."""

    def __init__(self, fake: FakeKaltura) -> None:
        self.entries = _Entries(fake)
        self.captions = _Captions(fake)
        self.reach = _Reach(fake)


@dataclass
class Harness:
    """Deps on fakes plus handles on each fake."""

    deps: AutomationDeps
    kaltura: FakeKaltura
    ledger: InMemoryLedger
    alerts: InMemoryAlertPublisher
    events: InMemoryEventQueue
    clock: FakeClock

    def rows(self, prefix: str) -> dict[tuple[str, str], dict[str, Any]]:
        return {key: item for key, item in self.ledger.items.items() if key[0].startswith(prefix)}

    def with_config(self, **partner_settings: Any) -> Harness:
        """The same fakes with the partner's settings overridden (e.g. ``captions={"dry_run": True}``)."""
        return build_harness(partner_settings, kaltura=self.kaltura, ledger=self.ledger, clock=self.clock)


def build_harness(
    partner_settings: Mapping[str, Any] | None = None,
    *,
    kaltura: FakeKaltura | None = None,
    ledger: InMemoryLedger | None = None,
    clock: FakeClock | None = None,
    worker_timeout_seconds: int = 120,
) -> Harness:
    """Deps for PARTNER_ID with captions enabled for catalog item ITEM_ID, plus ``partner_settings`` overrides."""
    clock = clock or FakeClock()
    kaltura = kaltura or FakeKaltura()
    ledger = ledger or InMemoryLedger(clock=clock)
    alerts = InMemoryAlertPublisher(clock=clock, ledger=ledger)
    events = InMemoryEventQueue()
    settings: dict[str, Any] = {"captions": {"enabled": True}}
    for section, values in (partner_settings or {}).items():
        settings[section] = {**settings.get(section, {}), **values}
    config = build_automation_config({"partners": {str(PARTNER_ID): settings}})
    client = kaltura.client()
    deps = AutomationDeps(
        config=config,
        ledger=ledger,
        alerts=alerts,
        store=InMemoryObjectStore(),
        kaltura=lambda partner_id: client,
        events=events,
        clock=clock,
        worker_timeout_seconds=worker_timeout_seconds,
    )
    return Harness(deps, kaltura, ledger, alerts, events, clock)


def catalog_harness() -> Harness:
    """:func:`build_harness` whose Kaltura has catalog item ITEM_ID and entry ``1_entry``: a caption can be ordered."""
    harness = build_harness()
    harness.kaltura.add_catalog_item()
    harness.kaltura.add_entry()
    return harness


def entry_ready_event(entry_id: str = "1_entry", *, dedupe_key: str = "1234567:job:1") -> KalturaEvent:
    return KalturaEvent(
        kind=EventKind.ENTRY_READY,
        partner_id=PARTNER_ID,
        dedupe_key=dedupe_key,
        job_id=1,
        template_id=None,
        template_system_name=None,
        event_type=3,
        event_object_type=1,
        object_type="KalturaMediaEntry",
        object_id=entry_id,
        entry_id=entry_id,
        status="2",
        fields={"id": entry_id, "status": 2},
        body_format=BodyFormat.OBJECT_JSON,
        received_at=NOW,
    )


def task_event(task_id: int, status: int, *, updated_at: int, entry_id: str = "1_entry", **fields: Any) -> KalturaEvent:
    return KalturaEvent(
        kind=EventKind.VENDOR_TASK_STATUS,
        partner_id=PARTNER_ID,
        dedupe_key=f"1234567:job:{task_id}-{status}-{updated_at}",
        job_id=None,
        template_id=None,
        template_system_name=None,
        event_type=3,
        event_object_type=42,
        object_type="KalturaEntryVendorTask",
        object_id=str(task_id),
        entry_id=entry_id,
        status=str(status),
        fields={
            "id": task_id,
            "entryId": entry_id,
            "status": status,
            "catalogItemId": ITEM_ID,
            "createdAt": NOW,
            "updatedAt": updated_at,
            "turnAroundTime": -1,
            **fields,
        },
        body_format=BodyFormat.OBJECT_JSON,
        received_at=NOW,
    )
