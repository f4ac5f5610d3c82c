"""REACH orders and tracking, catalog items, entries (with time slicing), caption assets, and multirequest."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kaltura_fakes import FakeKaltura, Recorded
from kauto.kaltura import (
    CatalogItemStatus,
    EntryStatus,
    KalturaAlreadyDoneError,
    KalturaCall,
    KalturaClient,
    KalturaCreditError,
    KalturaInvalidSessionError,
    KalturaResultLimitError,
    ServiceFeature,
    VendorTask,
    VendorTaskStatus,
)

# A multirequest answer: the task added, then ENTRY_VENDOR_TASK_DUPLICATION (docs/kaltura.md#multirequest).
TASK = {
    "id": 98765440,
    "partnerId": 1234567,
    "vendorPartnerId": 3456789,
    "createdAt": 1767260000,
    "updatedAt": 1767260000,
    "entryId": "1_x4b9c2kq",
    "status": 1,
    "reachProfileId": 112233,
    "catalogItemId": 445566,
    "price": 2.09,
    "userId": "lambda-webhook",
    "entryObjectType": 1,
    "accessKey": "djJ8MzQ1Njc4OXxGQUtFX0FDQ0VTU19LRVlfRk9SX0RPQ1VNRU5UQVRJT05fT05MWQ==",
    "version": 0,
    "creationMode": 1,
    "expectedFinishTime": 1767346400,
    "serviceType": 2,
    "serviceFeature": 1,
    "turnAroundTime": -1,
    "objectType": "KalturaEntryVendorTask",
}
DUPLICATE = {
    "code": "ENTRY_VENDOR_TASK_DUPLICATION",
    "message": "Entry vendor task already exists for entry [1_x4b9c2kq] and catalog item [445566] and version [0]",
    "objectType": "KalturaAPIException",
    "args": {"ENTRY_ID": "1_x4b9c2kq", "CATALOG_ITEM_ID": "445566", "VERSION": "0"},
}


def test_multirequest_returns_per_call_results_and_errors(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("multirequest", "", [TASK, DUPLICATE])
    order = {"entryVendorTask": {"objectType": "KalturaEntryVendorTask", "entryId": "1_x4b9c2kq", "catalogItemId": 1}}
    first, second = make_client().multirequest(
        [KalturaCall("reach_entryvendortask", "add", order), KalturaCall("reach_entryvendortask", "add", order)]
    )
    assert first.ok and VendorTask.from_api(first.unwrap()).id == 98765440
    assert not second.ok
    assert isinstance(second.error, KalturaAlreadyDoneError)
    assert second.error.api_args["VERSION"] == "0"
    with pytest.raises(KalturaAlreadyDoneError):
        second.unwrap()
    [request] = fake_kaltura.requests
    assert request.url == "https://kaltura.test/api_v3/service/multirequest"
    assert request.form["1:service"] == "reach_entryvendortask"
    assert request.form["2:action"] == "add"
    assert request.form["2:entryVendorTask[objectType]"] == "KalturaEntryVendorTask"
    assert request.form["1:entryVendorTask[entryId]"] == "1_x4b9c2kq"
    assert request.form["format"] == "1" and request.form["ks"].startswith("djJ8")


def test_multirequest_refreshes_the_session_when_every_call_was_rejected(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    def handler(request: Recorded) -> Any:
        if len(fake_kaltura.requests) == 1:
            error = {"code": "INVALID_KS", "message": "m", "objectType": "KalturaAPIException", "args": []}
            return [error, error]
        return [TASK, TASK]

    fake_kaltura.route("multirequest", "", handler)
    outcomes = make_client().multirequest([KalturaCall("reach_entryvendortask", "get", {"id": 1})] * 2)
    assert all(o.ok for o in outcomes)
    assert len({r.form["ks"] for r in fake_kaltura.requests}) == 2


def test_multirequest_with_a_partially_rejected_session_is_not_resent(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    error = {"code": "INVALID_KS", "message": "m", "objectType": "KalturaAPIException", "args": []}
    fake_kaltura.route("multirequest", "", [TASK, error])
    outcomes = make_client().multirequest([KalturaCall("reach_entryvendortask", "get", {"id": 1})] * 2)
    assert [o.ok for o in outcomes] == [True, False]
    assert isinstance(outcomes[1].error, KalturaInvalidSessionError)
    assert len(fake_kaltura.requests) == 1


def test_order_caption_sends_the_task_and_parses_it_without_the_access_key(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("reach_entryvendortask", "add", TASK)
    task = make_client().reach.order_caption(
        "1_x4b9c2kq", 445566, reach_profile_id=112233, partner_data={"job": "abc", "v": 1}
    )
    [request] = fake_kaltura.requests
    assert request.form["entryVendorTask[objectType]"] == "KalturaEntryVendorTask"
    assert request.form["entryVendorTask[entryId]"] == "1_x4b9c2kq"
    assert request.form["entryVendorTask[catalogItemId]"] == "445566"
    assert request.form["entryVendorTask[reachProfileId]"] == "112233"
    assert json.loads(request.form["entryVendorTask[partnerData]"]) == {"job": "abc", "v": 1}
    assert task.id == 98765440 and task.status == VendorTaskStatus.PENDING and not task.is_final
    assert task.catalog_item_id == 445566 and task.price == 2.09 and task.turn_around_time == -1
    assert TASK["accessKey"] not in repr(task)


def test_order_caption_without_profile_leaves_it_to_the_catalog_default(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("reach_entryvendortask", "add", TASK)
    make_client().reach.order_caption("1_x4b9c2kq", 445566)
    form = fake_kaltura.requests[0].form
    assert "entryVendorTask[reachProfileId]" not in form
    assert "entryVendorTask[partnerData]" not in form


def test_order_caption_refuses_partner_data_that_is_not_json(make_client: Callable[..., KalturaClient]) -> None:
    with pytest.raises(ValueError):
        make_client().reach.order_caption("1_x", 1, partner_data="{not json")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (DUPLICATE, KalturaAlreadyDoneError),
        (
            {
                "code": "EXCEEDED_MAX_CREDIT_ALLOWED",
                "message": "credit",
                "objectType": "KalturaAPIException",
                "args": {"ENTRY_ID": "1_x4b9c2kq", "CATALOG_ITEM_ID": "445566"},
            },
            KalturaCreditError,
        ),
    ],
)
def test_order_caption_raises_typed_order_errors(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, reply: Any, error: type
) -> None:
    fake_kaltura.route("reach_entryvendortask", "add", reply)
    with pytest.raises(error):
        make_client().reach.order_caption("1_x4b9c2kq", 445566)
    assert len(fake_kaltura.requests) == 1


def test_vendor_task_enums_accept_int_or_string() -> None:
    task = VendorTask.from_api({**TASK, "status": "2", "serviceFeature": "1", "serviceType": "reach.Custom"})
    assert task.status == VendorTaskStatus.READY and task.is_final
    assert task.service_feature == ServiceFeature.CAPTIONS
    assert task.service_type == "reach.Custom"


def test_error_task_carries_its_description(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("reach_entryvendortask", "get", {**TASK, "status": 6, "errDescription": "Vendor failed"})
    task = make_client().reach.get_task(98765440)
    assert fake_kaltura.requests[0].form["id"] == "98765440"
    assert task.status == VendorTaskStatus.ERROR and task.err_description == "Vendor failed"


def test_list_tasks_pages_until_a_short_page(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    def handler(request: Recorded) -> Any:
        index = int(request.form["pager[pageIndex]"])
        count = 500 if index == 1 else 3
        objects = [{**TASK, "id": index * 1000 + i} for i in range(count)]
        return {"objects": objects, "totalCount": 503, "objectType": "KalturaEntryVendorTaskListResponse"}

    fake_kaltura.route("reach_entryvendortask", "list", handler)
    tasks = list(make_client().reach.list_tasks(entry_id="1_x4b9c2kq", statuses=[VendorTaskStatus.PENDING, 3]))
    assert len(tasks) == 503
    first = fake_kaltura.requests[0].form
    assert first["filter[objectType]"] == "KalturaEntryVendorTaskFilter"
    assert first["filter[entryIdEqual]"] == "1_x4b9c2kq"
    assert first["filter[statusIn]"] == "1,3"
    assert first["pager[pageSize]"] == "500"


def test_caption_catalog_items_use_the_captions_filter_subclass(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    item = {
        "id": 445566,
        "name": "English machine captions",
        "status": 2,
        "serviceType": 2,
        "serviceFeature": 1,
        "turnAroundTime": -1,
        "sourceLanguage": "English",
        "outputFormat": 1,
        "defaultReachProfileId": 112233,
        "pricing": {
            "pricePerUnit": 0.1,
            "priceFunction": "PRICE_PER_MINUTE",
            "objectType": "KalturaVendorCatalogItemPricing",
        },
        "objectType": "KalturaVendorCaptionsCatalogItem",
    }
    fake_kaltura.route(
        "reach_vendorcatalogitem",
        "list",
        {"objects": [item], "totalCount": 1, "objectType": "KalturaVendorCatalogItemListResponse"},
    )
    [found] = make_client().reach.list_caption_catalog_items(source_language="English", service_type=2)
    form = fake_kaltura.requests[0].form
    assert form["filter[objectType]"] == "KalturaVendorCaptionsCatalogItemFilter"
    assert form["filter[sourceLanguageEqual]"] == "English"
    assert form["filter[serviceFeatureEqual]"] == "1"
    assert form["filter[serviceTypeEqual]"] == "2"
    assert form["filter[statusEqual]"] == str(int(CatalogItemStatus.ACTIVE))
    assert "filter[turnAroundTimeEqual]" not in form
    assert (found.id, found.default_reach_profile_id, found.price_per_unit) == (445566, 112233, 0.1)
    assert found.object_type == "KalturaVendorCaptionsCatalogItem"


def test_entries_get_parses_string_or_int_enums(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route(
        "baseentry",
        "get",
        {
            "id": "1_room",
            "name": "Room",
            "status": "2",
            "type": "room.room",
            "sourceType": "36",
            "rootEntryId": "1_live",
            "replacedEntryId": "",
            "createdAt": 1767254400,
            "roomType": 1,
            "objectType": "KalturaRoomEntry",
        },
    )
    entry = make_client().entries.get("1_room")
    assert fake_kaltura.requests[0].form["entryId"] == "1_room"
    assert entry.is_ready and entry.status == EntryStatus.READY
    assert (entry.type, entry.source_type, entry.root_entry_id) == ("room.room", 36, "1_live")
    assert entry.replaced_entry_id is None
    assert entry.raw["roomType"] == 1


class EntryCatalog:
    """A fake baseEntry.list over entries created one per 10 s, honouring filters, ordering and the 10,000 cap."""

    def __init__(self, count: int, start: int = 1_700_000_000) -> None:
        self.created = [start + 10 * i for i in range(count)]

    def __call__(self, request: Recorded) -> Any:
        form = request.form
        low = int(form["filter[createdAtGreaterThanOrEqual]"])
        high = int(form["filter[createdAtLessThanOrEqual]"])
        assert form["filter[orderBy]"] == "+createdAt"
        matching = [t for t in self.created if low <= t <= high]
        size, index = int(form["pager[pageSize]"]), int(form["pager[pageIndex]"])
        visible = matching[:10_000]
        page = visible[(index - 1) * size : index * size]
        objects = [{"id": f"0_{t}", "name": "e", "createdAt": t, "objectType": "KalturaMediaEntry"} for t in page]
        return {"objects": objects, "totalCount": len(matching), "objectType": "KalturaBaseEntryListResponse"}


def test_entries_list_slices_time_to_stay_under_the_list_cap(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    catalog = EntryCatalog(23_456)
    fake_kaltura.route("baseentry", "list", catalog)
    since, until = catalog.created[0], catalog.created[-1]
    entries = list(make_client().entries.list(since=since, until=until, statuses=[EntryStatus.READY]))
    assert [e.created_at for e in entries] == catalog.created
    assert fake_kaltura.requests[0].form["filter[statusIn]"] == "2"


def test_entries_list_fails_rather_than_truncating_one_crowded_second(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    catalog = EntryCatalog(0)
    catalog.created = [1_700_000_000] * 10_001
    fake_kaltura.route("baseentry", "list", catalog)
    with pytest.raises(KalturaResultLimitError):
        list(make_client().entries.list(since=1_700_000_000, until=1_700_000_000))


def test_caption_assets_of_an_entry(make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura) -> None:
    asset = {
        "id": "1_cap9zq1e",
        "entryId": "1_x4b9c2kq",
        "status": 2,
        "language": "English",
        "languageCode": "en",
        "format": "1",
        "isDefault": True,
        "accuracy": 99,
        "objectType": "KalturaCaptionAsset",
    }
    fake_kaltura.route(
        "caption_captionasset",
        "list",
        {"objects": [asset], "totalCount": 1, "objectType": "KalturaCaptionAssetListResponse"},
    )
    [found] = make_client().captions.list_for_entry("1_x4b9c2kq")
    form = fake_kaltura.requests[0].form
    assert (form["filter[objectType]"], form["filter[entryIdEqual]"]) == ("KalturaCaptionAssetFilter", "1_x4b9c2kq")
    assert (found.id, found.language_code, found.format, found.is_default) == ("1_cap9zq1e", "en", 1, True)
