"""REACH: catalog items, reach profiles with credit, and entry vendor tasks moving on the clock
(docs/kaltura.md#reach)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import errors
from .api import Auth, CallContext, Registry
from .entries import add_caption_asset, find_entry, page
from .errors import ApiError
from .events import VENDOR_TASK_STATUS, SimEvent, TimedEvent
from .ks import SESSION_TYPE_USER
from .params import Params
from .serialize import list_response
from .sessions import issue_ks
from .state import (
    CATALOG_ITEM_ACTIVE,
    ENTRY_NO_CONTENT,
    ENTRY_READY,
    ENTRY_TYPE_MEDIA_CLIP,
    ENTRY_TYPE_ROOM,
    REACH_PROFILE_ACTIVE,
    TASK_ABORTED,
    TASK_ERROR,
    TASK_FINAL_STATUSES,
    TASK_PENDING,
    TASK_PENDING_ENTRY_READY,
    TASK_PENDING_MODERATION,
    TASK_PROCESSING,
    TASK_READY,
    TASK_SCHEDULED,
    CatalogItem,
    ReachProfile,
    VendorTask,
)

if TYPE_CHECKING:
    from .core import SimulatorCore

# A task in one of these states blocks a new order for the same entry, item and version
# (docs/kaltura.md#reach-task-add).
_ACTIVE_STATUSES = frozenset(
    {TASK_PENDING, TASK_PENDING_MODERATION, TASK_PROCESSING, TASK_PENDING_ENTRY_READY, TASK_SCHEDULED}
)
_CAPTION_FORMATS = {1: "1", 2: "2", 3: "3"}  # VendorCatalogItemOutputFormat SRT/DFXP/VTT -> KalturaCaptionType
_DAY = 86400


def _require_reach(ctx: CallContext) -> None:
    partner = ctx.core.state.partner(ctx.require_partner())
    if partner is None or not partner.reach_enabled:
        raise ApiError(errors.FEATURE_FORBIDDEN, "reach")


def _expected_finish(created_at: int, turn_around_time: int) -> int:
    """BEST_EFFORT/IMMEDIATE -> a day; 1-7 are business days; larger values are seconds
    (docs/kaltura.md#reach-enums)."""
    if turn_around_time <= 0:
        return created_at + _DAY
    if turn_around_time <= 7:
        return created_at + turn_around_time * _DAY
    return created_at + turn_around_time


def task_price(item: CatalogItem, ms_duration: int) -> float:
    """``kReachUtils::calcPricePerMinute``: price per started minute."""
    minutes = max(1, math.ceil(ms_duration / 60000))
    return round(item.price_per_unit * minutes, 4)


def _is_duplicate(ctx: CallContext, entry_id: str, item: CatalogItem, version: int) -> bool:
    """docs/kaltura.md#reach-task-add: an active task for the same entry+item+version, a completed one when resubmission
    is not allowed, or one still PROCESSING on an older version."""
    for task in ctx.core.state.tasks.values():
        if task.entry_id != entry_id or task.catalog_item_id != item.id or task.partner_id != ctx.partner_id:
            continue
        if task.version == version and task.status in _ACTIVE_STATUSES:
            return True
        if task.version == version and task.status == TASK_READY and not item.allow_resubmission:
            return True
        if task.version < version and task.status == TASK_PROCESSING:
            return True
    return False


def _task_add(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    partner_id = ctx.require_partner()
    state = ctx.core.state
    request = params.obj("entryVendorTask")
    entry_id = request.get_str("entryId")
    if not entry_id:
        raise ApiError(errors.PROPERTY_VALIDATION_CANNOT_BE_NULL, "entryId")
    catalog_item_id = request.get_int("catalogItemId")
    if catalog_item_id is None:
        raise ApiError(errors.PROPERTY_VALIDATION_CANNOT_BE_NULL, "catalogItemId")
    entry = find_entry(ctx, entry_id)
    if entry.entry_type not in (ENTRY_TYPE_MEDIA_CLIP, ENTRY_TYPE_ROOM):
        raise ApiError(errors.ENTRY_TYPE_NOT_SUPPORTED, entry.entry_type)
    item = state.catalog_items.get(catalog_item_id)
    if item is None or item.status != CATALOG_ITEM_ACTIVE:
        raise ApiError(errors.CATALOG_ITEM_NOT_FOUND, catalog_item_id)
    if partner_id not in item.enabled_partners:
        raise ApiError(errors.CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT, catalog_item_id)
    profile_id = request.get_int("reachProfileId") or item.default_reach_profile_ids.get(partner_id)
    if profile_id is None:
        raise ApiError(errors.PROPERTY_VALIDATION_CANNOT_BE_NULL, "reachProfileId")
    profile = state.reach_profiles.get(profile_id)
    if profile is None or profile.partner_id != partner_id or profile.status != REACH_PROFILE_ACTIVE:
        raise ApiError(errors.REACH_PROFILE_NOT_FOUND, profile_id)
    ready = entry.status == ENTRY_READY or (entry.entry_type == ENTRY_TYPE_ROOM and entry.status == ENTRY_NO_CONTENT)
    if not ready:
        raise ApiError(errors.ENTRY_NOT_READY, entry.status)
    partner_data = request.get_str("partnerData")
    if partner_data is not None:
        try:
            json.loads(partner_data)
        except json.JSONDecodeError as exc:
            raise ApiError(errors.PARTNER_DATA_NOT_VALID_JSON_STRING) from exc
    if _is_duplicate(ctx, entry.id, item, entry.version):
        raise ApiError(errors.ENTRY_VENDOR_TASK_DUPLICATION, entry.id, item.id, entry.version)
    now = ctx.now
    if profile.credit_expires_at is not None and profile.credit_expires_at <= now:
        raise ApiError(errors.CREDIT_EXPIRED, entry.id, item.id)
    price = task_price(item, entry.ms_duration)
    remaining = profile.remaining()
    if remaining is not None and price > remaining + 1e-9:
        raise ApiError(errors.EXCEEDED_MAX_CREDIT_ALLOWED, entry.id, item.id)
    profile.used_credit += price
    behaviour = state.entry_behaviours.get(entry.id, item.behaviour)
    expected_finish = _expected_finish(now, item.turn_around_time)
    partner = state.partners[partner_id]
    access_key = issue_ks(
        ctx.core,
        partner,
        session_type=SESSION_TYPE_USER,
        user_id=ctx.ks.user_id if ctx.ks else "",
        expiry_seconds=max(expected_finish - now, _DAY),
        privileges=f"disableentitlementforentry:{entry.id},edit:{entry.id},reachvendor",
    )
    task = VendorTask(
        id=state.next_number("task"),
        partner_id=partner_id,
        vendor_partner_id=item.vendor_partner_id,
        entry_id=entry.id,
        catalog_item_id=item.id,
        reach_profile_id=profile.id,
        price=price,
        user_id=ctx.ks.user_id if ctx.ks else "",
        created_at=now,
        updated_at=now,
        access_key=access_key,
        version=entry.version,
        service_type=item.service_type,
        service_feature=item.service_feature,
        turn_around_time=item.turn_around_time,
        expected_finish_time=expected_finish,
        processing_at=now + behaviour.pending_seconds,
        done_at=now + behaviour.pending_seconds + behaviour.processing_seconds,
        behaviour=behaviour,
        notes=request.get_str("notes"),
        partner_data=partner_data,
        context=request.get_str("context"),
    )
    state.tasks[task.id] = task
    return task.to_api()


def _find_task(ctx: CallContext, task_id: int) -> VendorTask:
    task = ctx.core.state.tasks.get(task_id)
    if task is None or task.partner_id != ctx.partner_id:
        raise ApiError(errors.ENTRY_VENDOR_TASK_NOT_FOUND, task_id)
    return task


def _task_get(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    return _find_task(ctx, params.required_int("id")).to_api()


def _task_filter(params: Params) -> Callable[[VendorTask], bool]:
    id_equal = params.get_int("idEqual")
    id_in = params.int_list("idIn")
    entry_id_equal = params.get_str("entryIdEqual")
    entry_id_in = params.str_list("entryIdIn")
    status_equal = params.get_int("statusEqual")
    status_in = params.int_list("statusIn")
    catalog_item_id_equal = params.get_int("catalogItemIdEqual")
    catalog_item_id_in = params.int_list("catalogItemIdIn")
    profile_id_equal = params.get_int("reachProfileIdEqual")
    created_low = params.get_int("createdAtGreaterThanOrEqual")
    created_high = params.get_int("createdAtLessThanOrEqual")
    updated_low = params.get_int("updatedAtGreaterThanOrEqual")
    updated_high = params.get_int("updatedAtLessThanOrEqual")

    def accept(task: VendorTask) -> bool:
        return all(
            (
                id_equal is None or task.id == id_equal,
                id_in is None or task.id in id_in,
                entry_id_equal is None or task.entry_id == entry_id_equal,
                entry_id_in is None or task.entry_id in entry_id_in,
                status_equal is None or task.status == status_equal,
                status_in is None or task.status in status_in,
                catalog_item_id_equal is None or task.catalog_item_id == catalog_item_id_equal,
                catalog_item_id_in is None or task.catalog_item_id in catalog_item_id_in,
                profile_id_equal is None or task.reach_profile_id == profile_id_equal,
                created_low is None or task.created_at >= created_low,
                created_high is None or task.created_at <= created_high,
                updated_low is None or task.updated_at >= updated_low,
                updated_high is None or task.updated_at <= updated_high,
            )
        )

    return accept


_TASK_ORDER = {"createdAt": "created_at", "updatedAt": "updated_at", "id": "id"}


def _task_list(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    task_filter = params.obj("filter")
    accept = _task_filter(task_filter)
    matched = [task for task in ctx.core.state.tasks.values() if task.partner_id == ctx.partner_id and accept(task)]
    order = task_filter.get_str("orderBy") or "-createdAt"
    attribute = _TASK_ORDER.get(order.lstrip("+-"), "created_at")
    matched.sort(key=lambda task: (getattr(task, attribute), task.id), reverse=order.startswith("-"))
    objects = [task.to_api() for task in page(matched, params.obj("pager"))]
    return list_response("KalturaEntryVendorTaskListResponse", objects, len(matched))


def _task_abort(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    task = _find_task(ctx, params.required_int("id"))
    if task.status in TASK_FINAL_STATUSES:
        raise ApiError(errors.CANNOT_UPDATE_STATUS_OF_TASK_WHICH_IS_IN_FINAL_STATE, task.id, task.status, TASK_ABORTED)
    task.status = TASK_ABORTED
    task.updated_at = ctx.now
    task.err_description = params.get_str("abortReason")
    _refund(ctx.core, task)
    snapshot = task.to_api()
    ctx.events.append(SimEvent(VENDOR_TASK_STATUS, task.partner_id, snapshot, ctx.now))
    return snapshot


def _refund(core: SimulatorCore, task: VendorTask) -> None:
    profile = core.state.reach_profiles.get(task.reach_profile_id)
    if profile is not None:
        profile.used_credit = max(0.0, profile.used_credit - task.price)


_CATALOG_INT_FIELDS: dict[str, Callable[[CatalogItem], int]] = {
    "id": lambda item: item.id,
    "vendorPartnerId": lambda item: item.vendor_partner_id,
    "status": lambda item: item.status,
    "serviceType": lambda item: item.service_type,
    "serviceFeature": lambda item: item.service_feature,
    "turnAroundTime": lambda item: item.turn_around_time,
    "outputFormat": lambda item: item.output_format,
}
_CATALOG_TEXT_FIELDS: dict[str, Callable[[CatalogItem], str | None]] = {
    "sourceLanguage": lambda item: item.source_language,
    "targetLanguage": lambda item: item.target_language,
}
_CATALOG_FILTER_TYPES = {
    "KalturaVendorCaptionsCatalogItemFilter": "KalturaVendorCaptionsCatalogItem",
    "KalturaVendorTranslationCatalogItemFilter": "KalturaVendorTranslationCatalogItem",
}


def _catalog_filter(params: Params) -> Callable[[CatalogItem], bool]:
    """``KalturaVendorCatalogItemFilter`` fields; the captions/translation filter subclasses add language/format
    fields and restrict the item type (docs/kaltura.md#reach-catalog). Items are never updated here, so updatedAt equals
    createdAt."""
    wanted_type = _CATALOG_FILTER_TYPES.get(params.get_str("objectType") or "")
    int_filters = [
        (getter, params.get_int(f"{name}Equal"), params.int_list(f"{name}In"))
        for name, getter in _CATALOG_INT_FIELDS.items()
    ]
    text_filters = [
        (text_getter, params.get_str(f"{name}Equal"), params.str_list(f"{name}In"))
        for name, text_getter in _CATALOG_TEXT_FIELDS.items()
    ]
    id_not_in = params.int_list("idNotIn")
    catalog_item_id = params.get_int("catalogItemIdEqual")
    low = max(
        (
            value
            for value in (params.get_int("createdAtGreaterThanOrEqual"), params.get_int("updatedAtGreaterThanOrEqual"))
            if value is not None
        ),
        default=None,
    )
    high = min(
        (
            value
            for value in (params.get_int("createdAtLessThanOrEqual"), params.get_int("updatedAtLessThanOrEqual"))
            if value is not None
        ),
        default=None,
    )

    def accept(item: CatalogItem) -> bool:
        for getter, equal, values in int_filters:
            if (equal is not None and getter(item) != equal) or (values is not None and getter(item) not in values):
                return False
        for text_getter, text_equal, text_values in text_filters:
            text = text_getter(item)
            if (text_equal is not None and text != text_equal) or (text_values is not None and text not in text_values):
                return False
        return (
            (id_not_in is None or item.id not in id_not_in)
            and (catalog_item_id is None or item.id == catalog_item_id)
            and (low is None or item.created_at >= low)
            and (high is None or item.created_at <= high)
            and (wanted_type is None or item.object_type == wanted_type)
        )

    return accept


def _catalog_list(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    partner_id = ctx.require_partner()
    catalog_filter = params.obj("filter")
    accept = _catalog_filter(catalog_filter)
    # With a partner KS only the items enabled for the partner are listed, newest id first
    # (docs/kaltura.md#reach-catalog).
    matched = [
        item for item in ctx.core.state.catalog_items.values() if partner_id in item.enabled_partners and accept(item)
    ]
    matched.sort(key=lambda item: item.id, reverse=(catalog_filter.get_str("orderBy") or "-id") != "+id")
    objects = [item.to_api(partner_id) for item in page(matched, params.obj("pager"))]
    return list_response("KalturaVendorCatalogItemListResponse", objects, len(matched))


def _catalog_get(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    item_id = params.required_int("id")
    item = ctx.core.state.catalog_items.get(item_id)
    if item is None or ctx.partner_id not in item.enabled_partners:
        raise ApiError(errors.CATALOG_ITEM_NOT_FOUND, item_id)
    return item.to_api(ctx.require_partner())


def _find_profile(ctx: CallContext, profile_id: int) -> ReachProfile:
    profile = ctx.core.state.reach_profiles.get(profile_id)
    if profile is None or profile.partner_id != ctx.partner_id:
        raise ApiError(errors.REACH_PROFILE_NOT_FOUND, profile_id)
    return profile


def _profile_get(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    return _find_profile(ctx, params.required_int("id")).to_api()


def _profile_list(ctx: CallContext, params: Params) -> dict[str, Any]:
    _require_reach(ctx)
    profile_filter = params.obj("filter")
    id_equal = profile_filter.get_int("idEqual")
    id_in = profile_filter.int_list("idIn")
    status_equal = profile_filter.get_int("statusEqual")
    matched = [
        profile
        for profile in ctx.core.state.reach_profiles.values()
        if profile.partner_id == ctx.partner_id
        and (id_equal is None or profile.id == id_equal)
        and (id_in is None or profile.id in id_in)
        and (status_equal is None or profile.status == status_equal)
    ]
    matched.sort(key=lambda profile: profile.id, reverse=True)
    objects = [profile.to_api() for profile in page(matched, params.obj("pager"))]
    return list_response("KalturaReachProfileListResponse", objects, len(matched))


def _finish(core: SimulatorCore, task: VendorTask) -> None:
    """PROCESSING -> READY (with a caption asset) or ERROR (with errDescription, credit refunded)."""
    at = task.done_at
    task.updated_at = at
    task.finish_time = at
    if task.behaviour.result == "error":
        task.status = TASK_ERROR
        task.err_description = task.behaviour.err_description
        _refund(core, task)
        return
    task.status = TASK_READY
    entry = core.state.entries.get(task.entry_id)
    item = core.state.catalog_items.get(task.catalog_item_id)
    if entry is not None and item is not None:
        asset = add_caption_asset(
            core,
            entry,
            language=item.target_language or item.source_language,
            caption_format=_CAPTION_FORMATS.get(item.output_format, "1"),
            at=at,
        )
        task.output_object_id = asset.id


def settle(core: SimulatorCore, now: int) -> list[TimedEvent]:
    """Move tasks PENDING -> PROCESSING -> READY/ERROR as the clock passes their times."""
    events: list[TimedEvent] = []
    for task in core.state.tasks.values():
        if task.status == TASK_PENDING and task.processing_at <= now:
            task.status = TASK_PROCESSING
            task.queue_time = task.processing_at
            task.updated_at = task.processing_at
            event = SimEvent(VENDOR_TASK_STATUS, task.partner_id, task.to_api(), task.processing_at)
            events.append((task.processing_at, task.id * 2, event))
        if task.status == TASK_PROCESSING and task.done_at <= now:
            _finish(core, task)
            events.append(
                (
                    task.done_at,
                    task.id * 2 + 1,
                    SimEvent(VENDOR_TASK_STATUS, task.partner_id, task.to_api(), task.done_at),
                )
            )
    return events


def register(registry: Registry) -> None:
    """Add the REACH services."""
    registry.add("reach_entryvendortask", "add", Auth.ADMIN, _task_add)
    registry.add("reach_entryvendortask", "get", Auth.ADMIN, _task_get)
    registry.add("reach_entryvendortask", "list", Auth.ADMIN, _task_list)
    registry.add("reach_entryvendortask", "abort", Auth.ADMIN, _task_abort)
    registry.add("reach_vendorcatalogitem", "list", Auth.ADMIN, _catalog_list)
    registry.add("reach_vendorcatalogitem", "get", Auth.ADMIN, _catalog_get)
    registry.add("reach_reachprofile", "get", Auth.ADMIN, _profile_get)
    registry.add("reach_reachprofile", "list", Auth.ADMIN, _profile_list)
