"""REACH and entries over the wire (docs/kaltura.md#reach): ordering through the task lifecycle, catalog items with the
captions filter, caption assets, and ``baseEntry.list`` sliced by time past Kaltura's 10,000-result cap."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from contract_support import PARTNER_ID
from kauto.kaltura import EntryStatus, KalturaClient, ServiceType, VendorTaskStatus
from kauto_local.simulator import KalturaSimulator, TaskBehaviour

pytestmark = pytest.mark.integration

MakeClient = Callable[..., KalturaClient]


def test_caption_order_through_its_lifecycle(sim: KalturaSimulator, make_client: MakeClient) -> None:
    item = sim.add_catalog_item(PARTNER_ID, behaviour=TaskBehaviour(pending_seconds=60, processing_seconds=300))
    profile = sim.add_reach_profile(PARTNER_ID, credit=100, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID, name="Lecture", duration=125)
    client = make_client()

    ordered = client.reach.order_caption(entry.id, item.id, partner_data={"rule": "all-lectures", "v": 1})
    statuses = [client.reach.get_task(ordered.id).status]
    sim.clock.advance(61)
    statuses.append(client.reach.get_task(ordered.id).status)
    sim.clock.advance(300)
    done = client.reach.get_task(ordered.id)

    assert (ordered.entry_id, ordered.catalog_item_id, ordered.reach_profile_id) == (entry.id, item.id, profile.id)
    assert ordered.status == VendorTaskStatus.PENDING
    assert ordered.partner_data == '{"rule":"all-lectures","v":1}'
    assert ordered.price == 3.0, "charged per started minute"
    assert statuses == [VendorTaskStatus.PENDING, VendorTaskStatus.PROCESSING]
    assert done.status == VendorTaskStatus.READY
    assert [task.id for task in client.reach.list_tasks(entry_id=entry.id)] == [ordered.id]
    assert [task.id for task in client.reach.list_tasks(statuses=[VendorTaskStatus.PENDING])] == []
    captions = client.captions.list_for_entry(entry.id)
    assert [(asset.entry_id, asset.language, asset.id) for asset in captions] == [
        (entry.id, "English", done.output_object_id)
    ]


def test_failed_task_carries_the_vendor_error(sim: KalturaSimulator, make_client: MakeClient) -> None:
    item = sim.add_catalog_item(PARTNER_ID)
    sim.add_reach_profile(PARTNER_ID, default_for=[item.id])
    entry = sim.add_entry(PARTNER_ID)
    sim.set_task_behaviour(entry.id, TaskBehaviour(result="error", err_description="Audio track is silent"))
    client = make_client()

    task = client.reach.order_caption(entry.id, item.id)
    sim.clock.advance(3600)
    failed = client.reach.get_task(task.id)

    assert (failed.status, failed.err_description) == (VendorTaskStatus.ERROR, "Audio track is silent")
    assert client.captions.list_for_entry(entry.id) == []


def test_tasks_listed_by_creation_window(sim: KalturaSimulator, make_client: MakeClient) -> None:
    item = sim.add_catalog_item(PARTNER_ID, allow_resubmission=True)
    sim.add_reach_profile(PARTNER_ID, credit=None, default_for=[item.id])
    client = make_client()
    start = sim.clock.now()
    ids = []
    for index in range(3):
        ids.append(client.reach.order_caption(sim.add_entry(PARTNER_ID, name=f"E{index}").id, item.id).id)
        sim.clock.advance(100)

    window = [task.id for task in client.reach.list_tasks(created_between=(start + 50, start + 250))]

    assert window == ids[1:]


def test_caption_catalog_items_are_filtered_by_the_captions_filter(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    english = sim.add_catalog_item(PARTNER_ID, name="Machine English")
    human = sim.add_catalog_item(PARTNER_ID, name="Human English", service_type=1, turn_around_time=172800)
    sim.add_catalog_item(PARTNER_ID, name="Machine Spanish", source_language="Spanish")
    sim.add_catalog_item(PARTNER_ID, name="Translation", service_feature=2, target_language="French")
    sim.add_catalog_item(7654321, name="Someone else's")
    client = make_client()

    english_items = client.reach.list_caption_catalog_items(source_language="English")
    machine_items = client.reach.list_caption_catalog_items(source_language="English", service_type=ServiceType.MACHINE)

    assert sorted(item.id for item in english_items) == sorted([english.id, human.id])
    assert {item.object_type for item in english_items} == {"KalturaVendorCaptionsCatalogItem"}
    assert [(item.id, item.name, item.service_type) for item in machine_items] == [
        (english.id, "Machine English", ServiceType.MACHINE)
    ]


def test_entry_list_slices_time_past_the_10000_result_cap(sim: KalturaSimulator, make_client: MakeClient) -> None:
    start = sim.clock.now() - 200_000
    created = [
        sim.add_entry(PARTNER_ID, name=f"Entry {index}", created_at=start + index * 19).id for index in range(10_050)
    ]
    sim.add_entry(PARTNER_ID, name="Too late", created_at=start + 10_050 * 19)
    sim.add_entry(PARTNER_ID, name="Not ready", status=EntryStatus.PRECONVERT, created_at=start + 5)

    listed = make_client().entries.list(since=start, until=start + 10_050 * 19 - 1, statuses=[EntryStatus.READY])

    assert [entry.id for entry in listed] == created
    calls = sim.calls_to("baseEntry", "list")
    assert all(call.error_code is None for call in calls), "never asked past the cap"
    assert len(calls) > 21, "the window was sliced"
