"""Typed results of the API calls the automations use, parsed from format=1 JSON.

Enum fields arrive as ints for core enums and strings for plugin values (``"virusScan.Infected"``), and some
numbers arrive as strings (``sourceType "1"``); parsers accept either (docs/kaltura.md#notification-envelope
serialisation rules). Compare enum fields with the IntEnums below: ``task.status == VendorTaskStatus.READY``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kauto.kaltura.errors import KalturaProtocolError


class EntryStatus(enum.IntEnum):
    """``KalturaEntryStatus`` (docs/kaltura.md#recognising-events)."""

    ERROR_IMPORTING = -2
    ERROR_CONVERTING = -1
    IMPORT = 0
    PRECONVERT = 1
    READY = 2
    DELETED = 3
    PENDING = 4
    MODERATE = 5
    BLOCKED = 6
    NO_CONTENT = 7


class VendorTaskStatus(enum.IntEnum):
    """``KalturaEntryVendorTaskStatus`` (docs/kaltura.md#reach-enums). READY, ERROR, REJECTED and ABORTED are final."""

    PENDING = 1
    READY = 2
    PROCESSING = 3
    PENDING_MODERATION = 4
    REJECTED = 5
    ERROR = 6
    ABORTED = 7
    PENDING_ENTRY_READY = 8
    SCHEDULED = 9


FINAL_TASK_STATUSES = frozenset(
    {VendorTaskStatus.READY, VendorTaskStatus.ERROR, VendorTaskStatus.REJECTED, VendorTaskStatus.ABORTED}
)


class ServiceFeature(enum.IntEnum):
    """``KalturaVendorServiceFeature`` (docs/kaltura.md#reach-enums), the features the automations order."""

    CAPTIONS = 1
    TRANSLATION = 2
    ALIGNMENT = 3
    AUDIO_DESCRIPTION = 4
    CHAPTERING = 5


class ServiceType(enum.IntEnum):
    """``KalturaVendorServiceType``."""

    HUMAN = 1
    MACHINE = 2


class CatalogItemStatus(enum.IntEnum):
    """``KalturaVendorCatalogItemStatus``."""

    DEPRECATED = 1
    ACTIVE = 2
    DELETED = 3


def enum_value(value: Any) -> int | str | None:
    """An enum field as int when it is numeric (``2`` or ``"2"``), else the string (``"room.room"``)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return text


def as_int(value: Any) -> int | None:
    """An int field that may arrive as a string; None when absent or not numeric."""
    parsed = enum_value(value)
    return parsed if isinstance(parsed, int) else None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _require(obj: Mapping[str, Any], key: str, kind: str) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        raise KalturaProtocolError(f"{kind} without {key!r}")
    return value


@dataclass(frozen=True, slots=True)
class VendorTask:
    """A REACH ``KalturaEntryVendorTask``. The task's ``accessKey`` (a KS) is deliberately not kept."""

    id: int
    entry_id: str
    catalog_item_id: int | None
    status: int | str | None
    reach_profile_id: int | None = None
    partner_id: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    finish_time: int | None = None
    expected_finish_time: int | None = None
    price: float | None = None
    service_type: int | str | None = None
    service_feature: int | str | None = None
    turn_around_time: int | None = None
    output_object_id: str | None = None
    err_description: str | None = None
    partner_data: str | None = None
    version: int | None = None

    @property
    def is_final(self) -> bool:
        """True for READY, ERROR, REJECTED and ABORTED."""
        return self.status in FINAL_TASK_STATUSES

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> VendorTask:
        """Parse a ``KalturaEntryVendorTask`` JSON object."""
        task_id = as_int(_require(obj, "id", "KalturaEntryVendorTask"))
        if task_id is None:
            raise KalturaProtocolError("KalturaEntryVendorTask with a non-numeric id")
        return cls(
            id=task_id,
            entry_id=str(obj.get("entryId") or ""),
            catalog_item_id=as_int(obj.get("catalogItemId")),
            status=enum_value(obj.get("status")),
            reach_profile_id=as_int(obj.get("reachProfileId")),
            partner_id=as_int(obj.get("partnerId")),
            created_at=as_int(obj.get("createdAt")),
            updated_at=as_int(obj.get("updatedAt")),
            finish_time=as_int(obj.get("finishTime")),
            expected_finish_time=as_int(obj.get("expectedFinishTime")),
            price=_float(obj.get("price")),
            service_type=enum_value(obj.get("serviceType")),
            service_feature=enum_value(obj.get("serviceFeature")),
            turn_around_time=as_int(obj.get("turnAroundTime")),
            output_object_id=_str(obj.get("outputObjectId")),
            err_description=_str(obj.get("errDescription")),
            partner_data=_str(obj.get("partnerData")),
            version=as_int(obj.get("version")),
        )


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A REACH ``KalturaVendorCatalogItem`` (any subclass; ``object_type`` names it)."""

    id: int
    name: str
    object_type: str
    status: int | str | None = None
    service_type: int | str | None = None
    service_feature: int | str | None = None
    turn_around_time: int | None = None
    source_language: str | None = None
    target_language: str | None = None
    output_format: int | str | None = None
    system_name: str | None = None
    vendor_partner_id: int | None = None
    default_reach_profile_id: int | None = None
    allow_resubmission: bool | None = None
    price_per_unit: float | None = None

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> CatalogItem:
        """Parse a ``KalturaVendor*CatalogItem`` JSON object."""
        item_id = as_int(_require(obj, "id", "KalturaVendorCatalogItem"))
        if item_id is None:
            raise KalturaProtocolError("KalturaVendorCatalogItem with a non-numeric id")
        pricing = obj.get("pricing")
        return cls(
            id=item_id,
            name=str(obj.get("name") or ""),
            object_type=str(obj.get("objectType") or ""),
            status=enum_value(obj.get("status")),
            service_type=enum_value(obj.get("serviceType")),
            service_feature=enum_value(obj.get("serviceFeature")),
            turn_around_time=as_int(obj.get("turnAroundTime")),
            source_language=_str(obj.get("sourceLanguage")),
            target_language=_str(obj.get("targetLanguage")),
            output_format=enum_value(obj.get("outputFormat")),
            system_name=_str(obj.get("systemName")),
            vendor_partner_id=as_int(obj.get("vendorPartnerId")),
            default_reach_profile_id=as_int(obj.get("defaultReachProfileId")),
            allow_resubmission=_bool(obj.get("allowResubmission")),
            price_per_unit=_float(pricing.get("pricePerUnit")) if isinstance(pricing, Mapping) else None,
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """A ``KalturaBaseEntry`` (or subclass). ``raw`` keeps every field for type-specific needs (room entries)."""

    id: str
    name: str
    object_type: str
    status: int | str | None = None
    type: int | str | None = None
    media_type: int | str | None = None
    partner_id: int | None = None
    duration: int | None = None
    ms_duration: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    source_type: int | str | None = None
    root_entry_id: str | None = None
    replaced_entry_id: str | None = None
    admin_tags: str | None = None
    tags: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_ready(self) -> bool:
        """True when the entry status is READY."""
        return self.status == EntryStatus.READY

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Entry:
        """Parse a ``Kaltura*Entry`` JSON object."""
        return cls(
            id=str(_require(obj, "id", "KalturaBaseEntry")),
            name=str(obj.get("name") or ""),
            object_type=str(obj.get("objectType") or ""),
            status=enum_value(obj.get("status")),
            type=enum_value(obj.get("type")),
            media_type=enum_value(obj.get("mediaType")),
            partner_id=as_int(obj.get("partnerId")),
            duration=as_int(obj.get("duration")),
            ms_duration=as_int(obj.get("msDuration")),
            created_at=as_int(obj.get("createdAt")),
            updated_at=as_int(obj.get("updatedAt")),
            source_type=enum_value(obj.get("sourceType")),
            root_entry_id=_str(obj.get("rootEntryId")),
            replaced_entry_id=_str(obj.get("replacedEntryId")) or None,
            admin_tags=_str(obj.get("adminTags")),
            tags=_str(obj.get("tags")),
            raw=dict(obj),
        )


@dataclass(frozen=True, slots=True)
class CaptionAsset:
    """A ``KalturaCaptionAsset``."""

    id: str
    entry_id: str
    status: int | str | None = None
    language: str | None = None
    language_code: str | None = None
    label: str | None = None
    format: int | str | None = None
    is_default: bool | None = None
    accuracy: int | None = None
    created_at: int | None = None
    updated_at: int | None = None

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> CaptionAsset:
        """Parse a ``KalturaCaptionAsset`` JSON object."""
        return cls(
            id=str(_require(obj, "id", "KalturaCaptionAsset")),
            entry_id=str(obj.get("entryId") or ""),
            status=enum_value(obj.get("status")),
            language=_str(obj.get("language")),
            language_code=_str(obj.get("languageCode")),
            label=_str(obj.get("label")),
            format=enum_value(obj.get("format")),
            is_default=_bool(obj.get("isDefault")),
            accuracy=as_int(obj.get("accuracy")),
            created_at=as_int(obj.get("createdAt")),
            updated_at=as_int(obj.get("updatedAt")),
        )


def list_objects(response: Any, kind: str) -> tuple[list[Mapping[str, Any]], int]:
    """``(objects, totalCount)`` of a ``Kaltura*ListResponse`` (docs/kaltura.md#api-success)."""
    if not isinstance(response, Mapping):
        raise KalturaProtocolError(f"{kind} list did not return an object")
    objects = response.get("objects") or []
    if not isinstance(objects, list) or not all(isinstance(o, Mapping) for o in objects):
        raise KalturaProtocolError(f"{kind} list returned malformed objects")
    return objects, as_int(response.get("totalCount")) or 0
