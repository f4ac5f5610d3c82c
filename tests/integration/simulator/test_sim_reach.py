"""Entries, caption assets and the REACH task lifecycle on the simulator clock (docs/kaltura.md#recognising-events,
#reach)."""

from __future__ import annotations

import pytest
from kauto_local.simulator import KalturaSimulator, TaskBehaviour, decode_ks
from sim_support import PARTNER_ID, Api

pytestmark = pytest.mark.integration


@pytest.fixture
def item_id(sim: KalturaSimulator) -> int:
    item = sim.add_catalog_item(
        PARTNER_ID, price_per_unit=1.045, behaviour=TaskBehaviour(pending_seconds=60, processing_seconds=300)
    )
    sim.add_reach_profile(PARTNER_ID, credit=10, default_for=[item.id])
    return item.id


def _order(api: Api, ks: str, entry_id: str, item_id: int, **extra: object) -> dict:
    fields = {f"entryVendorTask[{name}]": value for name, value in extra.items()}
    return api.call(
        "reach_entryVendorTask",
        "add",
        ks=ks,
        **{
            "entryVendorTask[objectType]": "KalturaEntryVendorTask",
            "entryVendorTask[entryId]": entry_id,
            "entryVendorTask[catalogItemId]": item_id,
        },
        **fields,
    )


def test_list_filters_order_and_paging(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    start = sim.clock.now()
    ids = [sim.add_entry(PARTNER_ID, name=f"e{i}", created_at=start + i * 10).id for i in range(5)]
    sim.add_entry(PARTNER_ID, name="deleted", status=3, created_at=start)
    sim.add_entry(PARTNER_ID, name="importing", status=0, created_at=start + 100)

    default = api.call("baseEntry", "list", ks=admin_ks)
    window = api.call(
        "baseEntry",
        "list",
        ks=admin_ks,
        **{
            "filter[createdAtGreaterThanOrEqual]": start + 10,
            "filter[createdAtLessThanOrEqual]": start + 30,
            "filter[statusIn]": "2,0",
            "filter[orderBy]": "+createdAt",
        },
    )
    paged = api.call("baseEntry", "list", ks=admin_ks, **{"pager[pageSize]": 2, "pager[pageIndex]": 2})

    assert default["totalCount"] == 6, "deleted entries are not listed by default"
    assert default["objects"][0]["name"] == "importing", "default order is -createdAt"
    assert [obj["id"] for obj in window["objects"]] == ids[1:4]
    assert [obj["name"] for obj in paged["objects"]] == ["e3", "e2"]
    assert paged["totalCount"] == 6


def test_list_cannot_reach_past_the_first_10000_results(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    for index in range(10_050):
        sim.add_entry(PARTNER_ID, name=f"bulk {index}", created_at=1_700_000_000 + index)

    last_page = api.call("baseEntry", "list", ks=admin_ks, **{"pager[pageSize]": 500, "pager[pageIndex]": 20})
    beyond = api.call("baseEntry", "list", ks=admin_ks, **{"pager[pageSize]": 500, "pager[pageIndex]": 21})
    straddling = api.call("baseEntry", "list", ks=admin_ks, **{"pager[pageSize]": 300, "pager[pageIndex]": 34})
    too_big_page = api.call("baseEntry", "list", ks=admin_ks, **{"pager[pageSize]": 1000})

    assert len(last_page["objects"]) == 500 and last_page["totalCount"] == 10_050
    assert beyond["code"] == "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED"
    assert len(straddling["objects"]) == 100, "the page that crosses 10,000 is cut there"
    assert len(too_big_page["objects"]) == 500, "object lists are capped at 500 per page"


def test_task_lifecycle_pending_processing_ready_with_caption_asset(
    sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int
) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Lecture", duration=125)
    created_at = sim.clock.now()

    task = _order(api, admin_ks, entry.id, item_id)

    assert task["status"] == 1
    assert (task["price"], task["userId"], task["version"], task["catalogItemId"]) == (3.135, "tester", 0, item_id)
    assert task["expectedFinishTime"] == created_at + 86400
    assert "outputObjectId" not in task and "queueTime" not in task
    access = decode_ks(task["accessKey"], lambda pid: sim.core.state.admin_secrets(pid))
    assert access.partner_id == PARTNER_ID and not access.is_admin
    # Same fields, same order as the PENDING task in tests/unit/kaltura/test_kaltura_reach_entries.py.
    assert list(task) == [
        "id",
        "partnerId",
        "vendorPartnerId",
        "createdAt",
        "updatedAt",
        "entryId",
        "status",
        "reachProfileId",
        "catalogItemId",
        "price",
        "userId",
        "entryObjectType",
        "accessKey",
        "version",
        "creationMode",
        "expectedFinishTime",
        "serviceType",
        "serviceFeature",
        "turnAroundTime",
        "objectType",
    ]

    sim.clock.advance(59)
    assert api.call("reach_entryVendorTask", "get", ks=admin_ks, id=task["id"])["status"] == 1
    sim.clock.advance(1)
    processing = api.call("reach_entryVendorTask", "get", ks=admin_ks, id=task["id"])
    assert (processing["status"], processing["queueTime"]) == (3, created_at + 60)
    sim.clock.advance(300)
    ready = api.call("reach_entryVendorTask", "get", ks=admin_ks, id=task["id"])

    assert (ready["status"], ready["finishTime"], ready["updatedAt"]) == (2, created_at + 360, created_at + 360)
    captions = api.call("caption_captionAsset", "list", ks=admin_ks, **{"filter[entryIdEqual]": entry.id})
    assert captions["totalCount"] == 1
    caption = captions["objects"][0]
    assert (caption["id"], caption["language"], caption["format"], caption["status"]) == (
        ready["outputObjectId"],
        "English",
        "1",
        2,
    )


def test_duplicates_are_refused_until_the_task_failed(
    sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int
) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Dup", duration=60)
    sim.set_task_behaviour(entry.id, TaskBehaviour(result="error", err_description="Audio missing"))
    _order(api, admin_ks, entry.id, item_id)

    pending_duplicate = _order(api, admin_ks, entry.id, item_id)
    sim.clock.advance(360)
    failed = api.call("reach_entryVendorTask", "list", ks=admin_ks, **{"filter[entryIdEqual]": entry.id})
    retry = _order(api, admin_ks, entry.id, item_id)

    assert pending_duplicate["code"] == "ENTRY_VENDOR_TASK_DUPLICATION"
    assert pending_duplicate["args"] == {"ENTRY_ID": entry.id, "CATALOG_ITEM_ID": str(item_id), "VERSION": "0"}
    assert (failed["objects"][0]["status"], failed["objects"][0]["errDescription"]) == (6, "Audio missing")
    assert "outputObjectId" not in failed["objects"][0]
    assert retry["status"] == 1, "an ERROR task does not block a new order"


def test_completed_task_blocks_reorders_unless_resubmission_or_new_version(
    sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int
) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Done", duration=60)
    _order(api, admin_ks, entry.id, item_id)
    sim.clock.advance(400)

    assert _order(api, admin_ks, entry.id, item_id)["code"] == "ENTRY_VENDOR_TASK_DUPLICATION"
    sim.update_entry(entry.id, version=1)
    assert _order(api, admin_ks, entry.id, item_id)["version"] == 1


def test_credit_is_charged_refunded_and_exhausted(sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int) -> None:
    long_entry = sim.add_entry(PARTNER_ID, name="Long", duration=8 * 60)
    other = sim.add_entry(PARTNER_ID, name="Other", duration=3 * 60)

    first = _order(api, admin_ks, long_entry.id, item_id)
    exhausted = _order(api, admin_ks, other.id, item_id)

    assert first["price"] == 8.36
    assert exhausted == {
        "code": "EXCEEDED_MAX_CREDIT_ALLOWED",
        "message": (
            f"Exceeded max credit allowed, Cannot add request for entry [{other.id}] and catalog item [{item_id}]"
        ),
        "objectType": "KalturaAPIException",
        "args": {"ENTRY_ID": other.id, "CATALOG_ITEM_ID": str(item_id)},
    }
    profile = api.call("reach_reachProfile", "get", ks=admin_ks, id=first["reachProfileId"])
    assert profile["usedCredit"] == 8.36 and profile["credit"]["credit"] == 10

    assert api.call("reach_entryVendorTask", "abort", ks=admin_ks, id=first["id"])["status"] == 7
    assert _order(api, admin_ks, other.id, item_id)["status"] == 1, "aborting refunded the credit"


def test_credit_expired(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    item = sim.add_catalog_item(PARTNER_ID)
    sim.add_reach_profile(PARTNER_ID, credit=None, credit_expires_at=sim.clock.now() + 10, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID, name="Late")

    sim.clock.advance(10)

    result = _order(api, admin_ks, entry.id, item.id)
    assert (result["code"], result["args"]) == (
        "CREDIT_EXPIRED",
        {"ENTRY_ID": entry.id, "CATALOG_ITEM_ID": str(item.id)},
    )


def test_order_validation_errors(sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int) -> None:
    converting = sim.add_entry(PARTNER_ID, name="Converting", status=1)
    ready = sim.add_entry(PARTNER_ID, name="Ready")
    no_default = sim.add_catalog_item(PARTNER_ID, name="No default profile")
    foreign_item = sim.add_catalog_item(99, name="Other partner")
    shared_item = sim.add_catalog_item(99, name="Shared with us")
    sim.enable_catalog_item(shared_item.id, PARTNER_ID)

    assert _order(api, admin_ks, "1_missing", item_id)["args"] == {"ENTRY_ID": "1_missing"}
    not_ready = _order(api, admin_ks, converting.id, item_id)
    assert (not_ready["code"], not_ready["args"]) == ("ENTRY_NOT_READY", {"STATUS": "1"})
    assert _order(api, admin_ks, ready.id, 1)["code"] == "CATALOG_ITEM_NOT_FOUND"
    assert _order(api, admin_ks, ready.id, foreign_item.id)["code"] == "CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT"
    assert _order(api, admin_ks, ready.id, shared_item.id, reachProfileId=_profile_id(api, admin_ks))["status"] == 1
    assert _order(api, admin_ks, ready.id, no_default.id)["code"] == "PROPERTY_VALIDATION_CANNOT_BE_NULL"
    assert _order(api, admin_ks, ready.id, item_id, reachProfileId=42)["code"] == "REACH_PROFILE_NOT_FOUND"
    assert _order(api, admin_ks, ready.id, item_id, partnerData="{oops")["code"] == "PARTNER_DATA_NOT_VALID_JSON_STRING"
    assert api.call("reach_entryVendorTask", "get", ks=admin_ks, id=1)["code"] == "ENTRY_VENDOR_TASK_NOT_FOUND"


def _profile_id(api: Api, ks: str) -> int:
    return api.call("reach_reachProfile", "list", ks=ks)["objects"][0]["id"]


def test_reach_needs_the_plugin(sim: KalturaSimulator, api: Api) -> None:
    sim.add_partner(777, "no-reach-secret", reach_enabled=False)

    result = api.call("reach_vendorCatalogItem", "list", ks=sim.ks(777))

    assert result["message"] == "The usage of feature [reach] is forbidden"


def test_catalog_list_with_the_captions_filter(sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int) -> None:
    spanish = sim.add_catalog_item(PARTNER_ID, name="Spanish captions", source_language="Spanish", output_format=3)
    translation = sim.add_catalog_item(PARTNER_ID, name="To French", service_feature=2, target_language="French")
    sim.add_catalog_item(99, name="Not enabled here")

    everything = api.call("reach_vendorCatalogItem", "list", ks=admin_ks)
    captions = api.call(
        "reach_vendorCatalogItem",
        "list",
        ks=admin_ks,
        **{
            "filter[objectType]": "KalturaVendorCaptionsCatalogItemFilter",
            "filter[serviceFeatureEqual]": 1,
            "filter[sourceLanguageEqual]": "Spanish",
            "filter[outputFormatIn]": "2,3",
        },
    )

    assert [obj["id"] for obj in everything["objects"]] == [translation.id, spanish.id, item_id]
    assert everything["objects"][0]["objectType"] == "KalturaVendorTranslationCatalogItem"
    assert everything["objects"][2]["defaultReachProfileId"] > 0
    assert [obj["id"] for obj in captions["objects"]] == [spanish.id]
    assert captions["objects"][0]["objectType"] == "KalturaVendorCaptionsCatalogItem"
    assert captions["objects"][0]["pricing"]["objectType"] == "KalturaVendorCatalogItemPricing"


def test_task_list_filters(sim: KalturaSimulator, api: Api, admin_ks: str, item_id: int) -> None:
    first = sim.add_entry(PARTNER_ID, name="one", duration=30)
    second = sim.add_entry(PARTNER_ID, name="two", duration=30)
    _order(api, admin_ks, first.id, item_id)
    sim.clock.advance(100)
    _order(api, admin_ks, second.id, item_id)

    processing = api.call("reach_entryVendorTask", "list", ks=admin_ks, **{"filter[statusEqual]": 3})
    all_tasks = api.call("reach_entryVendorTask", "list", ks=admin_ks, **{"filter[statusIn]": "1,3"})

    assert [obj["entryId"] for obj in processing["objects"]] == [first.id]
    assert [obj["entryId"] for obj in all_tasks["objects"]] == [second.id, first.id]
