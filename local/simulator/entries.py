"""Entries and caption assets: ``baseEntry``, ``media`` and ``caption_captionasset`` services, plus state helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors
from .api import Auth, CallContext, Registry
from .errors import ApiError
from .events import ENTRY_READY as EVENT_ENTRY_READY
from .events import SimEvent, TimedEvent
from .params import Params
from .serialize import list_response
from .state import ENTRY_DELETED, ENTRY_READY, ENTRY_TYPE_MEDIA_CLIP, ENTRY_TYPE_ROOM, CaptionAsset, Entry

if TYPE_CHECKING:
    from .core import SimulatorCore

DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 500  # KalturaFilterPager caps object lists at 500 per page
MAX_MATCHES = 10_000  # Sphinx max matches: nothing past the first 10,000 results can be listed

T = TypeVar("T")


def add_entry(
    core: SimulatorCore,
    partner_id: int,
    *,
    name: str = "Untitled entry",
    entry_id: str | None = None,
    entry_type: int | str = ENTRY_TYPE_MEDIA_CLIP,
    media_type: int | None = 1,
    status: int | str = ENTRY_READY,
    duration: int = 120,
    ms_duration: int | None = None,
    tags: str = "",
    admin_tags: str = "",
    categories: str = "",
    categories_ids: str = "",
    description: str = "",
    reference_id: str | None = None,
    user_id: str = "owner@example.com",
    created_at: int | None = None,
    updated_at: int | None = None,
    version: int = 0,
    source_type: str = "1",
    replaced_entry_id: str | None = None,
    root_entry_id: str | None = None,
    room_type: int | None = None,
    template_room_entry_id: str | None = None,
    ready_in: int | None = None,
) -> Entry:
    """Create an entry. ``ready_in`` seconds: it becomes READY (raising an entry-ready event) on the clock."""
    if core.state.partner(partner_id) is None:
        raise KeyError(f"unknown partner {partner_id}")
    now = core.clock.now()
    is_room = entry_type == ENTRY_TYPE_ROOM
    with core.state.lock:
        new_id = entry_id or core.state.new_object_id()
        if new_id in core.state.entries:
            raise ValueError(f"entry {new_id} already exists")
        entry = Entry(
            id=new_id,
            partner_id=partner_id,
            name=name,
            entry_type=entry_type,
            media_type=None if is_room else media_type,
            status=status,
            duration=duration,
            ms_duration=duration * 1000 if ms_duration is None else ms_duration,
            tags=tags,
            admin_tags=admin_tags,
            categories=categories,
            categories_ids=categories_ids,
            description=description,
            reference_id=reference_id,
            user_id=user_id,
            creator_id=user_id,
            created_at=now if created_at is None else created_at,
            updated_at=(now if created_at is None else created_at) if updated_at is None else updated_at,
            version=version,
            source_type=source_type,
            replaced_entry_id=replaced_entry_id,
            root_entry_id=root_entry_id,
            room_type=(room_type or 1) if is_room else None,
            template_room_entry_id=template_room_entry_id,
            ready_at=None if ready_in is None else now + ready_in,
        )
        core.state.entries[new_id] = entry
        return entry


_UPDATABLE = {field.name for field in dataclasses.fields(Entry)} - {"id", "partner_id", "entry_type"}


def update_entry(core: SimulatorCore, entry_id: str, changes: dict[str, Any]) -> list[SimEvent]:
    """Change entry fields; a change of ``status`` to READY returns the entry-ready event Kaltura would raise."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    now = core.clock.now()
    with core.state.lock:
        entry = core.state.entries[entry_id]
        became_ready = "status" in changes and changes["status"] == ENTRY_READY and entry.status != ENTRY_READY
        for name, value in changes.items():
            setattr(entry, name, value)
        if "duration" in changes and "ms_duration" not in changes:
            entry.ms_duration = entry.duration * 1000
        entry.updated_at = now
        if "status" in changes:
            entry.ready_at = None
        if not became_ready:
            return []
        return [SimEvent(EVENT_ENTRY_READY, entry.partner_id, entry.to_api(core.cdn_url), now)]


def settle(core: SimulatorCore, now: int) -> list[TimedEvent]:
    """Entries whose ``ready_in`` has elapsed become READY."""
    events: list[TimedEvent] = []
    for index, entry in enumerate(core.state.entries.values()):
        if entry.ready_at is not None and entry.ready_at <= now:
            entry.status = ENTRY_READY
            entry.updated_at = entry.ready_at
            events.append(
                (
                    entry.ready_at,
                    index,
                    SimEvent(EVENT_ENTRY_READY, entry.partner_id, entry.to_api(core.cdn_url), entry.ready_at),
                )
            )
            entry.ready_at = None
    return events


def page(items: list[T], pager: Params, *, max_matches: int | None = None) -> list[T]:
    """One page of an object list: pageSize default 30, at most 500; pageIndex from 1.

    With ``max_matches`` (search-backed lists), offsets past it are refused and the last page is cut at it.
    """
    size = pager.get_int("pageSize") or DEFAULT_PAGE_SIZE
    size = max(1, min(size, MAX_PAGE_SIZE))
    index = max(1, pager.get_int("pageIndex") or 1)
    start = (index - 1) * size
    end = start + size
    if max_matches is not None:
        if start >= max_matches:
            raise ApiError(errors.QUERY_EXCEEDED_MAX_MATCHES_ALLOWED)
        end = min(end, max_matches)
    return items[start:end]


def _status_matches(status: int | str, wanted: Iterable[str]) -> bool:
    return str(status) in set(wanted)


def _entry_filter(params: Params) -> Callable[[Entry], bool]:
    id_equal = params.get_str("idEqual")
    id_in = params.str_list("idIn")
    status_equal = params.get_str("statusEqual")
    status_in = params.str_list("statusIn")
    status_not_in = params.str_list("statusNotIn")
    type_equal = params.get_str("typeEqual")
    type_in = params.str_list("typeIn")
    media_type_equal = params.get_int("mediaTypeEqual")
    media_type_in = params.int_list("mediaTypeIn")
    user_id_equal = params.get_str("userIdEqual")
    reference_id_equal = params.get_str("referenceIdEqual")
    tags_like = params.get_str("tagsLike")
    admin_tags_like = params.get_str("adminTagsLike")
    categories_match_or = params.str_list("categoriesIdsMatchOr")
    ranges = {
        "created_at": (params.get_int("createdAtGreaterThanOrEqual"), params.get_int("createdAtLessThanOrEqual")),
        "updated_at": (params.get_int("updatedAtGreaterThanOrEqual"), params.get_int("updatedAtLessThanOrEqual")),
    }
    no_status_filter = status_equal is None and status_in is None and status_not_in is None

    def accept(entry: Entry) -> bool:
        checks = [
            id_equal is None or entry.id == id_equal,
            id_in is None or entry.id in id_in,
            status_equal is None or str(entry.status) == status_equal,
            status_in is None or _status_matches(entry.status, status_in),
            status_not_in is None or not _status_matches(entry.status, status_not_in),
            # Deleted entries are not listed unless asked for by status.
            not no_status_filter or entry.status != ENTRY_DELETED,
            type_equal is None or str(entry.entry_type) == type_equal,
            type_in is None or str(entry.entry_type) in type_in,
            media_type_equal is None or entry.media_type == media_type_equal,
            media_type_in is None or entry.media_type in media_type_in,
            user_id_equal is None or entry.user_id == user_id_equal,
            reference_id_equal is None or entry.reference_id == reference_id_equal,
            tags_like is None or tags_like in entry.tags,
            admin_tags_like is None or admin_tags_like in entry.admin_tags,
            categories_match_or is None or bool(set(categories_match_or) & set(entry.categories_ids.split(","))),
        ]
        for attribute, (low, high) in ranges.items():
            value = getattr(entry, attribute)
            checks.append(low is None or value >= low)
            checks.append(high is None or value <= high)
        return all(checks)

    return accept


_ENTRY_ORDER = {"createdAt": "created_at", "updatedAt": "updated_at", "name": "name", "duration": "duration"}


def _ordered(entries: list[Entry], order_by: str | None) -> list[Entry]:
    order = order_by or "-createdAt"
    field_name = _ENTRY_ORDER.get(order.lstrip("+-"), "created_at")
    return sorted(entries, key=lambda entry: getattr(entry, field_name), reverse=order.startswith("-"))


def _list_entries(ctx: CallContext, params: Params, *, media_only: bool) -> dict[str, Any]:
    entry_filter = params.obj("filter")
    accept = _entry_filter(entry_filter)
    partner_id = ctx.require_partner()
    matched = [
        entry
        for entry in ctx.core.state.entries.values()
        if entry.partner_id == partner_id
        and (not media_only or entry.entry_type == ENTRY_TYPE_MEDIA_CLIP)
        and accept(entry)
    ]
    matched = _ordered(matched, entry_filter.get_str("orderBy"))
    objects = [entry.to_api(ctx.core.cdn_url) for entry in page(matched, params.obj("pager"), max_matches=MAX_MATCHES)]
    response_type = "KalturaMediaListResponse" if media_only else "KalturaBaseEntryListResponse"
    return list_response(response_type, objects, len(matched))


def find_entry(ctx: CallContext, entry_id: str) -> Entry:
    """The partner's non-deleted entry, or ``ENTRY_ID_NOT_FOUND``."""
    entry = ctx.core.state.entries.get(entry_id)
    if entry is None or entry.partner_id != ctx.partner_id or entry.status == ENTRY_DELETED:
        raise ApiError(errors.ENTRY_ID_NOT_FOUND, entry_id)
    return entry


def _base_entry_get(ctx: CallContext, params: Params) -> dict[str, Any]:
    return find_entry(ctx, params.required_str("entryId")).to_api(ctx.core.cdn_url)


def _media_get(ctx: CallContext, params: Params) -> dict[str, Any]:
    entry_id = params.required_str("entryId")
    entry = find_entry(ctx, entry_id)
    if entry.entry_type != ENTRY_TYPE_MEDIA_CLIP:
        raise ApiError(errors.ENTRY_ID_NOT_FOUND, entry_id)
    return entry.to_api(ctx.core.cdn_url)


def _base_entry_list(ctx: CallContext, params: Params) -> dict[str, Any]:
    return _list_entries(ctx, params, media_only=False)


def _media_list(ctx: CallContext, params: Params) -> dict[str, Any]:
    return _list_entries(ctx, params, media_only=True)


def add_caption_asset(
    core: SimulatorCore, entry: Entry, *, language: str, caption_format: str, at: int
) -> CaptionAsset:
    """Attach a READY caption asset to ``entry`` (what a finished captions task produces)."""
    with core.state.lock:
        asset = CaptionAsset(
            id=core.state.new_object_id(),
            entry_id=entry.id,
            partner_id=entry.partner_id,
            language=language,
            format=caption_format,
            created_at=at,
            updated_at=at,
            size=max(1024, entry.duration * 40),
        )
        core.state.caption_assets[asset.id] = asset
        return asset


def _caption_list(ctx: CallContext, params: Params) -> dict[str, Any]:
    asset_filter = params.obj("filter")
    entry_id_equal = asset_filter.get_str("entryIdEqual")
    entry_id_in = asset_filter.str_list("entryIdIn")
    id_equal = asset_filter.get_str("idEqual")
    language_equal = asset_filter.get_str("languageEqual")
    status_equal = asset_filter.get_int("statusEqual")
    matched = [
        asset
        for asset in ctx.core.state.caption_assets.values()
        if asset.partner_id == ctx.partner_id
        and (entry_id_equal is None or asset.entry_id == entry_id_equal)
        and (entry_id_in is None or asset.entry_id in entry_id_in)
        and (id_equal is None or asset.id == id_equal)
        and (language_equal is None or asset.language == language_equal)
        and (status_equal is None or asset.status == status_equal)
    ]
    objects = [asset.to_api() for asset in page(matched, params.obj("pager"))]
    return list_response("KalturaCaptionAssetListResponse", objects, len(matched))


def _caption_get(ctx: CallContext, params: Params) -> dict[str, Any]:
    asset_id = params.required_str("captionAssetId")
    asset = ctx.core.state.caption_assets.get(asset_id)
    if asset is None or asset.partner_id != ctx.partner_id:
        raise ApiError(errors.CAPTION_ASSET_ID_NOT_FOUND, asset_id)
    return asset.to_api()


def register(registry: Registry) -> None:
    """Add the entry and caption services."""
    registry.add("baseentry", "get", Auth.ADMIN, _base_entry_get)
    registry.add("baseentry", "list", Auth.ADMIN, _base_entry_list)
    registry.add("media", "get", Auth.ADMIN, _media_get)
    registry.add("media", "list", Auth.ADMIN, _media_list)
    registry.add("caption_captionasset", "list", Auth.ADMIN, _caption_list)
    registry.add("caption_captionasset", "get", Auth.ADMIN, _caption_get)
