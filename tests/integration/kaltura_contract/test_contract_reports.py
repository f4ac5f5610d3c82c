"""Analytics tables over the wire (docs/kaltura.md#report-gettable): getTable paging and window splitting past 12,000
rows against the simulator's own generator, getTotal and getGraphs, and aggregated reports that must not be split."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from contract_support import DAY, MONDAY, PARTNER_ID, WEEK
from kauto.kaltura import KalturaClient, KalturaResultLimitError, ReportFilter, ReportInterval
from kauto_local.simulator import VIEWER_SESSIONS, KalturaSimulator

pytestmark = pytest.mark.integration

MakeClient = Callable[..., KalturaClient]


def _pulled(
    client: KalturaClient, report_filter: ReportFilter, *, page_size: int | None = None, concurrency: int | None = None
) -> tuple[int, list[list[str]]]:
    table = client.reports.table(VIEWER_SESSIONS, report_filter, page_size=page_size, concurrency=concurrency)
    return table.total_count, [list(row.values()) for row in table]


def _reference(sim: KalturaSimulator, report_filter: ReportFilter, **filters: str) -> list[list[str]]:
    return sim.report_rows(
        PARTNER_ID,
        VIEWER_SESSIONS,
        from_date=report_filter.from_date,
        to_date=report_filter.to_date,
        time_zone_offset=report_filter.time_zone_offset,
        filters=filters,
        delimiter="|",
    )[1]


def _table_requests(sim: KalturaSimulator) -> list[tuple[int, int, int]]:
    """(fromDate, toDate, pageIndex) of every getTable request, checking none hit the 12,000-row limit."""
    calls = sim.calls_to("report", "getTable")
    assert all(call.error_code is None for call in calls)
    return [
        (
            int(call.params["reportInputFilter"]["fromDate"]),
            int(call.params["reportInputFilter"]["toDate"]),
            int(call.params["pager"]["pageIndex"]),
        )
        for call in calls
    ]


def test_a_week_of_35000_rows_is_split_and_equals_the_unsplit_reference(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=5000)
    report_filter = ReportFilter(MONDAY, MONDAY + WEEK)

    total, rows = _pulled(make_client(), report_filter, page_size=1000, concurrency=4)

    assert total == 35_000
    assert rows == _reference(sim, report_filter), "same rows, same order, nothing twice"
    windows = {(start, end) for start, end, _ in _table_requests(sim)}
    assert len(windows) > 3, "the week was cut into windows of at most 12,000 rows"


def test_uneven_days_make_a_part_split_again(sim: KalturaSimulator, make_client: MakeClient) -> None:
    # Weekdays heavy, weekends nearly empty: an even cut leaves parts above 12,000 rows that must be cut again.
    sim.configure_report(VIEWER_SESSIONS, rows_per_weekday=(14_000, 14_000, 400, 300, 200, 10, 0))
    report_filter = ReportFilter(MONDAY + 3600, MONDAY + 2 * DAY + 7)

    total, rows = _pulled(make_client(), report_filter, page_size=2000)

    assert total == len(rows) > 27_000
    assert rows == _reference(sim, report_filter)


def test_split_in_a_time_zone_on_day_boundaries(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=3000)
    report_filter = ReportFilter(
        MONDAY + 5 * 3600, MONDAY + 8 * DAY + 5 * 3600, time_zone_offset=300, interval=ReportInterval.DAYS
    )

    total, rows = _pulled(make_client(), report_filter)

    assert total == 24_000
    assert rows == _reference(sim, report_filter)
    cuts = {start for start, _, _ in _table_requests(sim)} - {report_filter.from_date}
    assert cuts and all((cut - 5 * 3600) % DAY == 0 for cut in cuts), "cuts at local midnight (UTC-5)"


def test_paging_below_the_limit_with_a_small_page(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=1100)
    report_filter = ReportFilter(MONDAY, MONDAY + 10 * DAY)

    total, rows = _pulled(make_client(), report_filter, page_size=700, concurrency=3)

    assert total == 11_000
    assert rows == _reference(sim, report_filter)
    assert sorted(page for _, _, page in _table_requests(sim)) == list(range(1, 17)), "one window, 16 pages"


def test_empty_window(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_weekday=(0, 0, 0, 0, 0, 0, 50))

    total, rows = _pulled(make_client(), ReportFilter(MONDAY, MONDAY + 5 * DAY))

    assert (total, rows) == (0, [])


def test_total_is_the_sum_of_the_rows_and_graphs_add_up_to_it(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=4000)
    report_filter = ReportFilter(MONDAY, MONDAY + 4 * DAY, time_zone_offset=-60)
    client = make_client()

    rows = list(client.reports.table(VIEWER_SESSIONS, report_filter))
    total = client.reports.total(VIEWER_SESSIONS, report_filter)
    graphs = {graph.id: graph.points for graph in client.reports.graphs(VIEWER_SESSIONS, report_filter)}

    assert int(total["count_plays"]) == sum(int(row["count_plays"]) for row in rows)
    assert Decimal(total["sum_time_viewed"]) == sum(Decimal(row["sum_time_viewed"]) for row in rows)
    assert int(total["count_loads"]) == sum(int(row["count_loads"]) for row in rows)
    assert sorted(graphs) == ["count_loads", "count_plays", "sum_time_viewed"]
    assert [label for label, _ in graphs["count_plays"]] == ["20260105", "20260106", "20260107", "20260108", "20260109"]
    for metric in ("count_plays", "count_loads"):
        assert sum(int(value) for _, value in graphs[metric]) == int(total[metric])
    by_day: dict[str, int] = {}
    for row in rows:
        by_day[row["date_id"]] = by_day.get(row["date_id"], 0) + int(row["count_plays"])
    assert dict(graphs["count_plays"]) == {day: str(plays) for day, plays in by_day.items()}


def test_aggregated_report_past_the_limit_is_refused_without_splitting(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    sim.configure_report(1, rows_per_day=2000)
    table = make_client().reports.table(1, ReportFilter(MONDAY, MONDAY + WEEK), split_on_limit=False)

    assert table.total_count == 14_000
    with pytest.raises(KalturaResultLimitError):
        list(table)
    assert {(start, end) for start, end, _ in _table_requests(sim)} == {(MONDAY, MONDAY + WEEK)}


def test_aggregated_report_split_anyway_repeats_entities_per_part(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    # What split_on_limit=True does to a report aggregated over the window (documented on ReportsAPI.table): each
    # part lists its own top entities, so popular entries come back once per part and the window's tail is missing.
    sim.configure_report(1, rows_per_day=2000)

    table = make_client().reports.table(1, ReportFilter(MONDAY, MONDAY + WEEK))
    ids = [row["object_id"] for row in table]

    assert len(set(ids)) < table.total_count == 14_000 < len(ids)


def test_a_large_split_costs_few_requests_beyond_the_ideal_paging(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=100_000)
    report_filter = ReportFilter(MONDAY, MONDAY + DAY)

    total, rows = _pulled(make_client(), report_filter, page_size=1000, concurrency=8)

    assert total == 100_000
    assert rows == _reference(sim, report_filter)
    requests = _table_requests(sim)
    # 100 pages at best; each part adds its short last page, and the whole window's first page is the probe.
    assert len(requests) <= 110
    assert len({(start, end) for start, end, _ in requests}) - 1 <= 12
