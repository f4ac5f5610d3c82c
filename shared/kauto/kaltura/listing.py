"""Paging through ``*.list`` actions, with time slicing to stay under Kaltura's 10,000-result list cap."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from kauto.kaltura.errors import KalturaResultLimitError
from kauto.kaltura.types import list_objects

if TYPE_CHECKING:
    from kauto.kaltura.client import KalturaClient

LIST_RESULT_CAP = 10_000  # object lists return at most this many results, whatever the pager says
LIST_PAGE_SIZE = 500  # KalturaFilterPager maximum
TimeField = Literal["createdAt", "updatedAt"]


def _pages(
    client: KalturaClient, service: str, action: str, list_filter: Mapping[str, Any], kind: str
) -> Generator[tuple[list[Mapping[str, Any]], int], None, None]:
    page_index = 1
    while True:
        pager = {"objectType": "KalturaFilterPager", "pageSize": LIST_PAGE_SIZE, "pageIndex": page_index}
        objects, total = list_objects(client.call(service, action, {"filter": list_filter, "pager": pager}), kind)
        yield objects, total
        if len(objects) < LIST_PAGE_SIZE or page_index * LIST_PAGE_SIZE >= min(total, LIST_RESULT_CAP):
            return
        page_index += 1


def iter_list(
    client: KalturaClient, service: str, action: str, list_filter: Mapping[str, Any], *, kind: str
) -> Iterator[Mapping[str, Any]]:
    """Every object of a list whose total stays under the cap; raises :class:`KalturaResultLimitError` otherwise."""
    for objects, total in _pages(client, service, action, list_filter, kind):
        if total > LIST_RESULT_CAP:
            raise KalturaResultLimitError(
                "RESULT_LIMIT_EXCEEDED", f"{service}.{action}: {total} results, more than the {LIST_RESULT_CAP} cap"
            )
        yield from objects


def iter_list_sliced(
    client: KalturaClient,
    service: str,
    action: str,
    list_filter: Mapping[str, Any],
    *,
    kind: str,
    time_field: TimeField,
    since: int,
    until: int,
) -> Iterator[Mapping[str, Any]]:
    """Every object with ``since <= time_field <= until``, oldest first.

    A time window holding more than 10,000 results is halved until each part fits, so nothing is silently cut off.
    """
    windows = [(since, until)]  # a stack: the earliest window is on top
    while windows:
        start, end = windows.pop()
        window_filter = {
            **list_filter,
            f"{time_field}GreaterThanOrEqual": start,
            f"{time_field}LessThanOrEqual": end,
            "orderBy": f"+{time_field}",
        }
        pages = _pages(client, service, action, window_filter, kind)
        objects, total = next(pages)
        if total > LIST_RESULT_CAP:
            if end <= start:
                raise KalturaResultLimitError(
                    "RESULT_LIMIT_EXCEEDED",
                    f"{service}.{action}: {total} results share one {time_field} second; cannot slice further",
                )
            middle = (start + end) // 2
            windows += [(middle + 1, end), (start, middle)]
            pages.close()
            continue
        yield from objects
        for more, _ in pages:
            yield from more
