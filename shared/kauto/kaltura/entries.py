"""Entries (``baseEntry``) and their caption assets (``caption_captionAsset``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from kauto.kaltura.errors import KalturaProtocolError
from kauto.kaltura.listing import TimeField, iter_list, iter_list_sliced
from kauto.kaltura.types import CaptionAsset, Entry

if TYPE_CHECKING:
    from kauto.kaltura.client import KalturaClient

ENTRY_SERVICE = "baseentry"
CAPTION_SERVICE = "caption_captionasset"


class EntriesAPI:
    """Typed access to ``baseEntry.get`` and ``baseEntry.list``."""

    def __init__(self, client: KalturaClient) -> None:
        self._client = client

    def get(self, entry_id: str) -> Entry:
        """``baseEntry.get``: the entry as it is now (re-read before acting on a webhook,
        docs/kaltura.md#delivery-and-retries)."""
        body = self._client.call(ENTRY_SERVICE, "get", {"entryId": entry_id})
        if not isinstance(body, Mapping):
            raise KalturaProtocolError("baseEntry.get did not return an entry")
        return Entry.from_api(body)

    def list(
        self,
        *,
        since: int,
        until: int,
        time_field: TimeField = "createdAt",
        statuses: Iterable[int] = (),
        entry_types: Iterable[int | str] = (),
        admin_tags_any: Iterable[str] = (),
    ) -> Iterator[Entry]:
        """Entries with ``since <= time_field <= until`` (unix seconds), oldest first, in pages of 500.

        The window is sliced by time whenever it holds more than Kaltura's 10,000 list results.
        """
        entry_filter = {
            "objectType": "KalturaBaseEntryFilter",
            "statusIn": ",".join(str(s) for s in statuses) or None,
            "typeIn": ",".join(str(t) for t in entry_types) or None,
            "adminTagsMultiLikeOr": ",".join(admin_tags_any) or None,
        }
        objects = iter_list_sliced(
            self._client,
            ENTRY_SERVICE,
            "list",
            entry_filter,
            kind="baseEntry",
            time_field=time_field,
            since=since,
            until=until,
        )
        return (Entry.from_api(obj) for obj in objects)


class CaptionsAPI:
    """Typed access to ``captionAsset.list``."""

    def __init__(self, client: KalturaClient) -> None:
        self._client = client

    def list_for_entry(self, entry_id: str) -> list[CaptionAsset]:
        """Every caption asset of ``entry_id``."""
        caption_filter = {"objectType": "KalturaCaptionAssetFilter", "entryIdEqual": entry_id}
        objects = iter_list(self._client, CAPTION_SERVICE, "list", caption_filter, kind="captionAsset")
        return [CaptionAsset.from_api(obj) for obj in objects]
