"""The simulator's world: partners, entries, caption assets, REACH objects and room sessions, with their API shapes."""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from .serialize import kaltura_object

# KalturaEntryStatus (docs/kaltura.md#recognising-events)
ENTRY_READY = 2
ENTRY_DELETED = 3
ENTRY_NO_CONTENT = 7

# KalturaEntryType: core ints, plugin types as strings (docs/kaltura.md#notification-envelope)
ENTRY_TYPE_MEDIA_CLIP = 1
ENTRY_TYPE_ROOM = "room.room"

# KalturaEntryVendorTaskStatus (docs/kaltura.md#reach-enums)
TASK_PENDING = 1
TASK_READY = 2
TASK_PROCESSING = 3
TASK_PENDING_MODERATION = 4
TASK_REJECTED = 5
TASK_ERROR = 6
TASK_ABORTED = 7
TASK_PENDING_ENTRY_READY = 8
TASK_SCHEDULED = 9
TASK_FINAL_STATUSES = frozenset({TASK_READY, TASK_REJECTED, TASK_ERROR, TASK_ABORTED})

APP_TOKEN_ACTIVE = 1
REACH_PROFILE_ACTIVE = 2
CATALOG_ITEM_ACTIVE = 2
UNLIMITED_CREDIT = -9999  # ReachProfileCreditValues::UNLIMITED_CREDIT

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class AppToken:
    """An app token (docs/kaltura.md#app-tokens): the token's own session settings win over the caller's."""

    id: str
    partner_id: int
    token: str
    hash_type: str = "SHA256"
    status: int = APP_TOKEN_ACTIVE
    session_type: int | None = 2
    session_user_id: str | None = None
    session_privileges: str | None = None
    session_duration: int = 86400
    expiry: int | None = None


@dataclass(slots=True)
class Partner:
    """A Kaltura account: id, admin secrets (the first is primary: KS signing and webhook signatures), app tokens."""

    partner_id: int
    admin_secrets: list[str]
    user_secret: str
    name: str
    ks_version: int = 2
    reach_enabled: bool = True
    app_tokens: dict[str, AppToken] = field(default_factory=dict)

    @property
    def admin_secret(self) -> str:
        """The primary admin secret."""
        return self.admin_secrets[0]


@dataclass(slots=True)
class Entry:
    """A media entry (type 1) or a Kaltura Room entry (type ``"room.room"``)."""

    id: str
    partner_id: int
    name: str
    entry_type: int | str = ENTRY_TYPE_MEDIA_CLIP
    media_type: int | None = 1
    status: int | str = ENTRY_READY
    duration: int = 0
    ms_duration: int = 0
    tags: str = ""
    admin_tags: str = ""
    categories: str = ""
    categories_ids: str = ""
    description: str = ""
    reference_id: str | None = None
    user_id: str = "owner@example.com"
    creator_id: str = "owner@example.com"
    created_at: int = 0
    updated_at: int = 0
    version: int = 0
    source_type: str = "1"
    replaced_entry_id: str | None = None
    replacing_entry_id: str | None = None
    root_entry_id: str | None = None
    room_type: int | None = None
    template_room_entry_id: str | None = None
    broadcast_entry_id: str | None = None
    recorded_entry_id: str | None = None
    virtual_event_id: str | None = None
    ready_at: int | None = None

    @property
    def is_room(self) -> bool:
        """True for a Kaltura Room entry."""
        return self.entry_type == ENTRY_TYPE_ROOM

    @property
    def object_type(self) -> str:
        """The API class this entry serialises as."""
        return "KalturaRoomEntry" if self.is_room else "KalturaMediaEntry"

    def duration_type(self) -> str:
        """Kaltura's ``durationType``: short (< 4 min), medium (< 20 min), long, or notavailable."""
        if self.duration <= 0:
            return "notavailable"
        if self.duration < 240:
            return "short"
        return "medium" if self.duration < 1200 else "long"

    def to_api(self, cdn_url: str) -> dict[str, Any]:
        """The entry as ``baseEntry.get`` / ``media.get`` / a webhook ``object`` carries it (sample field order)."""
        play_base = f"{cdn_url}/p/{self.partner_id}/sp/{self.partner_id}00/playManifest/entryId/{self.id}"
        fields: dict[str, Any] = {}
        if self.is_room:
            fields |= {
                "roomType": self.room_type,
                "broadcastEntryId": self.broadcast_entry_id,
                "templateRoomEntryId": self.template_room_entry_id,
                "recordedEntryId": self.recorded_entry_id,
            }
            if self.virtual_event_id:
                # Not confirmed on Kaltura's wire: how a room names its virtual event (the product reads this).
                fields["virtualEventId"] = self.virtual_event_id
        else:
            fields |= {
                "mediaType": self.media_type,
                "conversionQuality": 18921322,
                "sourceType": self.source_type,
                "dataUrl": f"{play_base}/format/url/protocol/https",
                "flavorParamsIds": "0,487041,487051,487061",
                "plays": 0,
                "views": 0,
                "width": 1280,
                "height": 720,
                "duration": self.duration,
                "msDuration": self.ms_duration,
                "durationType": self.duration_type(),
            }
        fields |= {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "partnerId": self.partner_id,
            "userId": self.user_id,
            "creatorId": self.creator_id,
            "tags": self.tags,
            "adminTags": self.admin_tags,
            "categories": self.categories,
            "categoriesIds": self.categories_ids,
            "status": self.status,
            "moderationStatus": 6,
            "moderationCount": 0,
            "type": self.entry_type,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "rank": 0,
            "totalRank": 0,
            "votes": 0,
            "downloadUrl": None if self.is_room else f"{play_base}/format/download/protocol/https/flavorParamIds/0",
            "searchText": f"_PAR_ONLY_ _{self.partner_id}_ _MEDIA_TYPE_{self.media_type}|  {self.name} ",
            "licenseType": -1,
            "version": self.version,
            "thumbnailUrl": f"{cdn_url}/p/{self.partner_id}/sp/{self.partner_id}00/thumbnail/entry_id/{self.id}",
            "accessControlId": 2345678,
            "replacementStatus": 0,
            "partnerSortValue": 0,
            "conversionProfileId": 18921322,
            "replacingEntryId": self.replacing_entry_id,
            "replacedEntryId": self.replaced_entry_id,
            "referenceId": self.reference_id,
            "rootEntryId": self.root_entry_id or self.id,
            "operationAttributes": [],
            "entitledUsersEdit": "",
            "entitledUsersPublish": "",
            "entitledUsersView": "",
            "capabilities": "",
            "displayInSearch": 1,
            "blockAutoTranscript": False,
        }
        return kaltura_object(self.object_type, fields)


@dataclass(slots=True)
class CaptionAsset:
    """A caption asset; REACH creates one when a captions task becomes READY."""

    id: str
    entry_id: str
    partner_id: int
    language: str
    format: str
    created_at: int
    updated_at: int
    label: str = ""
    status: int = 2
    accuracy: int = 99
    is_default: bool = False
    size: int = 0

    def to_api(self) -> dict[str, Any]:
        """``KalturaCaptionAsset``."""
        return kaltura_object(
            "KalturaCaptionAsset",
            {
                "captionParamsId": 0,
                "language": self.language,
                "languageCode": _language_code(self.language),
                "isDefault": self.is_default,
                "label": self.label or self.language,
                "format": self.format,
                "status": self.status,
                "accuracy": self.accuracy,
                "displayOnPlayer": True,
                "id": self.id,
                "entryId": self.entry_id,
                "partnerId": self.partner_id,
                "version": "1",
                "size": self.size,
                "tags": "",
                "fileExt": {"1": "srt", "2": "xml", "3": "vtt"}.get(self.format, "txt"),
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "description": "",
                "sizeInBytes": str(self.size),
            },
        )


def _language_code(language: str) -> str:
    codes = {"English": "en", "Spanish": "es", "French": "fr", "German": "de", "Hebrew": "he", "Arabic": "ar"}
    return codes.get(language, "en")


@dataclass(frozen=True, slots=True)
class TaskBehaviour:
    """How the simulated vendor handles a task: time spent PENDING and PROCESSING, then READY or ERROR."""

    result: str = "ready"
    err_description: str = "Vendor failed to process the media"
    pending_seconds: int = 60
    processing_seconds: int = 300

    def __post_init__(self) -> None:
        if self.result not in {"ready", "error"}:
            raise ValueError("result must be 'ready' or 'error'")


@dataclass(slots=True)
class CatalogItem:
    """A REACH vendor catalog item (captions or translation), enabled for some partners."""

    id: int
    name: str
    system_name: str
    service_feature: int
    service_type: int
    turn_around_time: int
    price_per_unit: float
    source_language: str
    output_format: int
    created_at: int
    vendor_partner_id: int = 3456789
    target_language: str | None = None
    status: int = CATALOG_ITEM_ACTIVE
    allow_resubmission: bool = False
    enable_speaker_id: bool = False
    enabled_partners: set[int] = field(default_factory=set)
    default_reach_profile_ids: dict[int, int] = field(default_factory=dict)
    behaviour: TaskBehaviour = field(default_factory=TaskBehaviour)

    @property
    def object_type(self) -> str:
        """``KalturaVendorCaptionsCatalogItem`` or ``KalturaVendorTranslationCatalogItem``."""
        return "KalturaVendorTranslationCatalogItem" if self.target_language else "KalturaVendorCaptionsCatalogItem"

    def to_api(self, partner_id: int) -> dict[str, Any]:
        """The item as a partner sees it (with that partner's ``defaultReachProfileId``)."""
        return kaltura_object(
            self.object_type,
            {
                "outputFormat": self.output_format,
                "enableSpeakerId": self.enable_speaker_id,
                "fixedPriceAddons": 0,
                "targetLanguage": self.target_language,
                "requireSource": False if self.target_language else None,
                "id": self.id,
                "vendorPartnerId": self.vendor_partner_id,
                "name": self.name,
                "systemName": self.system_name,
                "createdAt": self.created_at,
                "updatedAt": self.created_at,
                "status": self.status,
                "serviceType": self.service_type,
                "serviceFeature": self.service_feature,
                "turnAroundTime": self.turn_around_time,
                "pricing": kaltura_object(
                    "KalturaVendorCatalogItemPricing",
                    {"pricePerUnit": self.price_per_unit, "priceFunction": "kReachUtils::calcPricePerMinute"},
                ),
                "sourceLanguage": self.source_language,
                "allowResubmission": self.allow_resubmission,
                "payPerUse": False,
                "stage": 3,
                "partnerId": 0,
                "defaultReachProfileId": self.default_reach_profile_ids.get(partner_id),
            },
        )


@dataclass(slots=True)
class ReachProfile:
    """A partner's REACH profile holding the credit that tasks are charged against."""

    id: int
    partner_id: int
    name: str
    credit: float | None
    created_at: int
    overage_credit: float = 0.0
    used_credit: float = 0.0
    credit_expires_at: int | None = None
    status: int = REACH_PROFILE_ACTIVE

    def remaining(self) -> float | None:
        """Credit still available (None = unlimited)."""
        if self.credit is None:
            return None
        return self.credit + self.overage_credit - self.used_credit

    def to_api(self) -> dict[str, Any]:
        """``KalturaReachProfile`` with a ``KalturaTimeRangeVendorCredit``."""
        return kaltura_object(
            "KalturaReachProfile",
            {
                "id": self.id,
                "name": self.name,
                "partnerId": self.partner_id,
                "createdAt": self.created_at,
                "updatedAt": self.created_at,
                "status": self.status,
                "profileType": 1,
                "defaultOutputFormat": 1,
                "enableMachineModeration": False,
                "enableHumanModeration": False,
                "autoDisplayMachineCaptionsOnPlayer": False,
                "autoDisplayHumanCaptionsOnPlayer": False,
                "rules": [],
                "credit": kaltura_object(
                    "KalturaTimeRangeVendorCredit",
                    {
                        "credit": UNLIMITED_CREDIT if self.credit is None else self.credit,
                        "overageCredit": self.overage_credit,
                        "fromDate": self.created_at,
                        "toDate": self.credit_expires_at,
                    },
                ),
                "usedCredit": round(self.used_credit, 4),
                "dictionaries": [],
            },
        )


@dataclass(slots=True)
class VendorTask:
    """An ``EntryVendorTask``; ``processing_at`` / ``done_at`` drive its progress on the simulator clock."""

    id: int
    partner_id: int
    entry_id: str
    catalog_item_id: int
    reach_profile_id: int
    price: float
    user_id: str
    created_at: int
    access_key: str
    version: int
    service_type: int
    service_feature: int
    turn_around_time: int
    expected_finish_time: int
    processing_at: int
    done_at: int
    behaviour: TaskBehaviour
    vendor_partner_id: int = 3456789
    status: int = TASK_PENDING
    updated_at: int = 0
    queue_time: int | None = None
    finish_time: int | None = None
    output_object_id: str | None = None
    err_description: str | None = None
    notes: str | None = None
    partner_data: str | None = None
    context: str | None = None
    creation_mode: int = 1

    def to_api(self) -> dict[str, Any]:
        """``KalturaEntryVendorTask`` in the sample's field order (``accessKey`` is present: treat as secret)."""
        return kaltura_object(
            "KalturaEntryVendorTask",
            {
                "id": self.id,
                "partnerId": self.partner_id,
                "vendorPartnerId": self.vendor_partner_id,
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "queueTime": self.queue_time,
                "finishTime": self.finish_time,
                "entryId": self.entry_id,
                "status": self.status,
                "reachProfileId": self.reach_profile_id,
                "catalogItemId": self.catalog_item_id,
                "price": self.price,
                "userId": self.user_id,
                "notes": self.notes,
                "entryObjectType": 1,
                "accessKey": self.access_key,
                "version": self.version,
                "errDescription": self.err_description,
                "outputObjectId": self.output_object_id,
                "partnerData": self.partner_data,
                "creationMode": self.creation_mode,
                "expectedFinishTime": self.expected_finish_time,
                "serviceType": self.service_type,
                "serviceFeature": self.service_feature,
                "turnAroundTime": self.turn_around_time,
                "context": self.context,
            },
        )


@dataclass(frozen=True, slots=True)
class Attendee:
    """One participant of a room session (a row of report 6001)."""

    user_id: str
    name: str
    email: str
    user_type: str = "Attendee"
    view_time: int = 0
    engagement: float = 0.0


@dataclass(frozen=True, slots=True)
class Breakout:
    """A breakout room session inside a main room session (a row of report 6002)."""

    entry_id: str
    name: str
    cue_point_id: str
    initiator: str
    start: int
    end: int
    participant_count: int
    engagement_rate: float


@dataclass(slots=True)
class RoomSession:
    """A Kaltura Room session: the session cue point on a room entry, its attendees and breakouts."""

    cue_point_id: str
    partner_id: int
    room_entry_id: str
    name: str
    start: int
    end: int
    host_user_id: str
    attendees: list[Attendee]
    breakouts: list[Breakout]
    virtual_event_id: str | None = None
    parent_entry_id: str | None = None
    chat_messages: int = 0
    polls: int = 0
    announce: bool = True
    announced: bool = False

    def to_api(self) -> dict[str, Any]:
        """``KalturaSessionCuePoint``: ``triggeredAt`` is the session start, ``duration`` its length in ms
        (docs/kaltura.md#room-session-end)."""
        duration_ms = (self.end - self.start) * 1000
        return kaltura_object(
            "KalturaSessionCuePoint",
            {
                "id": self.cue_point_id,
                "cuePointType": "sessionCuePoint.Session",
                "status": 1,
                "entryId": self.room_entry_id,
                "partnerId": self.partner_id,
                "createdAt": self.start,
                "updatedAt": self.end,
                "triggeredAt": self.start,
                "tags": "",
                "startTime": 0,
                "userId": self.host_user_id,
                "partnerSortValue": 0,
                "forceStop": 0,
                "thumbOffset": 0,
                "isMomentary": False,
                "name": self.name,
                "endTime": duration_ms,
                "duration": duration_ms,
                "sessionOwner": self.host_user_id,
            },
        )


class SimState:
    """All mutable simulator state behind one re-entrant lock; ids come from a seeded RNG so runs repeat exactly."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.partners: dict[int, Partner] = {}
        self.entries: dict[str, Entry] = {}
        self.caption_assets: dict[str, CaptionAsset] = {}
        self.catalog_items: dict[int, CatalogItem] = {}
        self.reach_profiles: dict[int, ReachProfile] = {}
        self.tasks: dict[int, VendorTask] = {}
        self.room_sessions: dict[str, RoomSession] = {}
        self.entry_behaviours: dict[str, TaskBehaviour] = {}
        self._counters = {"catalog": 445566, "profile": 112233, "task": 98765432}

    def next_number(self, kind: str) -> int:
        """Sequential numeric ids (catalog items, reach profiles, tasks) starting at the samples' values."""
        with self.lock:
            value = self._counters[kind]
            self._counters[kind] = value + 1
            return value

    def new_object_id(self) -> str:
        """A Kaltura-style object id such as ``1_x4b9c2kq`` (entries, assets, cue points)."""
        with self.lock:
            while True:
                candidate = "1_" + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(8))
                if candidate not in self.entries and candidate not in self.caption_assets:
                    return candidate

    def random_bytes(self, size: int) -> bytes:
        """Deterministic random bytes (the KS random block)."""
        with self.lock:
            return self.rng.randbytes(size)

    def partner(self, partner_id: int) -> Partner | None:
        """The partner, or None."""
        return self.partners.get(partner_id)

    def admin_secrets(self, partner_id: int) -> list[str]:
        """All admin secrets of a partner (empty for an unknown partner), for KS decoding."""
        partner = self.partners.get(partner_id)
        return list(partner.admin_secrets) if partner else []
