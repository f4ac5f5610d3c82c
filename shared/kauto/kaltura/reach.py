"""REACH: ordering and tracking vendor tasks, listing catalog items (docs/kaltura.md#reach)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kauto.kaltura.errors import KalturaProtocolError
from kauto.kaltura.listing import iter_list, iter_list_sliced
from kauto.kaltura.types import CatalogItem, CatalogItemStatus, ServiceFeature, VendorTask

if TYPE_CHECKING:
    from kauto.kaltura.client import KalturaClient

TASK_SERVICE = "reach_entryvendortask"
CATALOG_SERVICE = "reach_vendorcatalogitem"


def _joined(values: Iterable[int]) -> str | None:
    text = ",".join(str(int(v)) for v in values)
    return text or None


class ReachAPI:
    """Typed access to ``entryVendorTask`` and ``vendorCatalogItem``."""

    def __init__(self, client: KalturaClient) -> None:
        self._client = client

    def order_caption(
        self,
        entry_id: str,
        catalog_item_id: int,
        *,
        reach_profile_id: int | None = None,
        partner_data: Mapping[str, Any] | str | None = None,
    ) -> VendorTask:
        """``entryVendorTask.add`` for ``entry_id`` with the given catalog item (docs/kaltura.md#reach-task-add).

        ``partner_data`` (a mapping, or a JSON string) is stored on the task, e.g. an idempotency key.
        Raises :class:`KalturaAlreadyDoneError` when the same order exists, :class:`KalturaCreditError` when credit is
        exhausted or expired, :class:`KalturaNotReadyError` when the entry is not READY yet.
        """
        if isinstance(partner_data, Mapping):
            partner_data = json.dumps(partner_data, separators=(",", ":"), sort_keys=True)
        elif partner_data is not None:
            json.loads(partner_data)  # Kaltura refuses a non-JSON partnerData; fail before the call
        task = {
            "objectType": "KalturaEntryVendorTask",
            "entryId": entry_id,
            "catalogItemId": catalog_item_id,
            "reachProfileId": reach_profile_id,
            "partnerData": partner_data,
        }
        return self._task(self._client.call(TASK_SERVICE, "add", {"entryVendorTask": task}), "entryVendorTask.add")

    def get_task(self, task_id: int) -> VendorTask:
        """``entryVendorTask.get``."""
        return self._task(self._client.call(TASK_SERVICE, "get", {"id": task_id}), "entryVendorTask.get")

    def list_tasks(
        self,
        *,
        entry_id: str | None = None,
        catalog_item_id: int | None = None,
        statuses: Iterable[int] = (),
        created_between: tuple[int, int] | None = None,
    ) -> Iterator[VendorTask]:
        """``entryVendorTask.list`` filtered by entry, catalog item and statuses, paged (and time-sliced when
        ``created_between`` is given, so more than 10,000 tasks can be walked).
        """
        task_filter = {
            "objectType": "KalturaEntryVendorTaskFilter",
            "entryIdEqual": entry_id,
            "catalogItemIdEqual": catalog_item_id,
            "statusIn": _joined(statuses),
        }
        kind = "entryVendorTask"
        if created_between is None:
            objects = iter_list(self._client, TASK_SERVICE, "list", task_filter, kind=kind)
        else:
            since, until = created_between
            objects = iter_list_sliced(
                self._client,
                TASK_SERVICE,
                "list",
                task_filter,
                kind=kind,
                time_field="createdAt",
                since=since,
                until=until,
            )
        return (VendorTask.from_api(obj) for obj in objects)

    def list_caption_catalog_items(
        self,
        *,
        source_language: str | None = None,
        service_type: int | None = None,
        turn_around_time: int | None = None,
        status: int | None = CatalogItemStatus.ACTIVE,
    ) -> list[CatalogItem]:
        """Caption catalog items enabled for the partner (``vendorCatalogItem.list`` with the captions filter
        subclass, since language filters exist only there; docs/kaltura.md#reach-catalog).
        """
        item_filter = {
            "objectType": "KalturaVendorCaptionsCatalogItemFilter",
            "serviceFeatureEqual": ServiceFeature.CAPTIONS,
            "sourceLanguageEqual": source_language,
            "serviceTypeEqual": service_type,
            "turnAroundTimeEqual": turn_around_time,
            "statusEqual": status,
        }
        objects = iter_list(self._client, CATALOG_SERVICE, "list", item_filter, kind="vendorCatalogItem")
        return [CatalogItem.from_api(obj) for obj in objects]

    @staticmethod
    def _task(body: Any, what: str) -> VendorTask:
        if not isinstance(body, Mapping):
            raise KalturaProtocolError(f"{what} did not return a KalturaEntryVendorTask")
        return VendorTask.from_api(body)
