"""report.getTable paging, 12,000-row window splitting and bounded concurrency; getTotal; getGraphs."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from typing import Any

import pytest
from kaltura_fakes import FakeKaltura, Recorded
from kauto.kaltura import (
    KalturaClient,
    KalturaProtocolError,
    KalturaResultLimitError,
    ReportFilter,
    ReportInterval,
)
from kauto.kaltura.reports import _split_points

START = 1_767_225_600  # 2026-01-01T00:00:00Z
WEEK = ReportFilter(from_date=START, to_date=START + 7 * 86400)


class ReportServer:
    """A fake ``report.getTable`` over rows stamped with a time; behaves like Kaltura (docs/kaltura.md#report-gettable):
    half-open ``[fromDate, toDate)`` windows, ``pageIndex x pageSize <= 12,000``, ``|`` rows ending in ``;``.
    ``total_bias`` makes ``totalCount`` wrong the way topN estimates can be.
    """

    HEADER = "event_time|entry_name|count_plays"

    def __init__(self, times: list[int], *, total_bias: int = 0, barrier: threading.Barrier | None = None):
        self.times = sorted(times)
        self.total_bias = total_bias
        self.barrier = barrier
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.pages: list[tuple[int, int, int]] = []  # (fromDate, toDate, pageIndex)

    def __call__(self, request: Recorded) -> Any:
        form = request.form
        low, high = int(form["reportInputFilter[fromDate]"]), int(form["reportInputFilter[toDate]"])
        size, index = int(form["pager[pageSize]"]), int(form["pager[pageIndex]"])
        with self.lock:
            self.pages.append((low, high, index))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.barrier is not None and index > 1:
                self.barrier.wait()  # raises BrokenBarrierError unless enough pages are fetched in parallel
            if index * size > 12_000:
                return {
                    "code": "INTERNAL_SERVERL_ERROR",
                    "message": "Internal server error occurred: result limit is 12000 rows",
                    "objectType": "KalturaAPIException",
                    "args": [],
                }
            first, end = bisect.bisect_left(self.times, low), bisect.bisect_left(self.times, high)
            page = self.times[first + (index - 1) * size : min(end, first + index * size)]
            # Kaltura replaces the delimiter and ";" inside values with a space; there is no escaping
            # (docs/kaltura.md#report-gettable).
            data = "".join(f"{t}|{clean(f'Entry, {t} ; with|delims')}|{t % 7};" for t in page)
            total = max(0, end - first + self.total_bias)
            return {"header": self.HEADER, "data": data, "totalCount": total, "objectType": "KalturaReportTable"}
        finally:
            with self.lock:
                self.in_flight -= 1


def clean(value: str) -> str:
    return value.replace("|", " ").replace(";", " ")


def spread(count: int, start: int = START, span: int = 7 * 86400) -> list[int]:
    return [start + span * i // count for i in range(count)]


def test_rows_are_keyed_by_the_header_and_the_request_is_well_formed(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route(
        "report",
        "getTable",
        {
            "header": "object_id|entry_name|count_plays",
            "data": "1_x4b9c2kq|Quarterly all-hands, recording|152;1_q8m2d1vw|Onboarding  part 1|97;",
            "totalCount": 2,
            "objectType": "KalturaReportTable",
        },
    )
    report_filter = ReportFilter(
        from_date=START,
        to_date=START + 86400,
        time_zone_offset=-120,
        interval=ReportInterval.DAYS,
        entry_ids=("1_x4b9c2kq", "1_q8m2d1vw"),
    )
    table = make_client().reports.table(1, report_filter, order="-count_plays")
    assert table.header == ("object_id", "entry_name", "count_plays")
    assert table.total_count == 2
    assert list(table) == [
        {"object_id": "1_x4b9c2kq", "entry_name": "Quarterly all-hands, recording", "count_plays": "152"},
        {"object_id": "1_q8m2d1vw", "entry_name": "Onboarding  part 1", "count_plays": "97"},
    ]
    form = fake_kaltura.requests[0].form
    assert form["reportType"] == "1"
    assert form["reportInputFilter[objectType]"] == "KalturaEndUserReportInputFilter"
    assert (form["reportInputFilter[fromDate]"], form["reportInputFilter[toDate]"]) == (str(START), str(START + 86400))
    assert form["reportInputFilter[timeZoneOffset]"] == "-120"
    assert form["reportInputFilter[interval]"] == "days"
    assert form["reportInputFilter[entryIdIn]"] == "1_x4b9c2kq|1_q8m2d1vw"
    assert (form["responseOptions[objectType]"], form["responseOptions[delimiter]"]) == (
        "KalturaReportResponseOptions",
        "|",
    )
    assert (form["pager[pageIndex]"], form["pager[pageSize]"]) == ("1", "500")
    assert form["order"] == "-count_plays"
    assert len(fake_kaltura.requests) == 1  # a short first page ends the query
    with pytest.raises(RuntimeError, match="once"):
        list(table)


@pytest.mark.parametrize("bias", [-1500, -2499, 0, 5000])
def test_paging_follows_short_pages_whatever_total_count_says(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, bias: int
) -> None:
    server = ReportServer(spread(2500), total_bias=bias)
    fake_kaltura.route("report", "getTable", server)
    rows = list(make_client().reports.table(38, WEEK))
    assert [int(r["event_time"]) for r in rows] == server.times
    assert rows[0]["entry_name"] == f"Entry, {server.times[0]}   with delims"
    assert {index for _, _, index in server.pages} >= {1, 2, 3}


def test_a_window_over_12000_rows_is_split_by_time_and_merged_in_order(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    server = ReportServer(spread(50_000))
    fake_kaltura.route("report", "getTable", server)
    table = make_client(report_concurrency=4).reports.table(38, WEEK)
    assert table.total_count == 50_000
    rows = [int(r["event_time"]) for r in table]
    assert rows == server.times  # every row once, in time order
    assert all(index * 500 <= 12_000 for _, _, index in server.pages)
    windows = {(low, high) for low, high, _ in server.pages}
    assert len(windows) > 2
    assert min(low for low, _ in windows) == WEEK.from_date and max(high for _, high in windows) == WEEK.to_date


def test_uneven_data_is_split_again_where_needed(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    crowded = spread(30_000, start=START + 3600, span=600)  # a burst inside one small slice of the week
    server = ReportServer(sorted(crowded + spread(2000)))
    fake_kaltura.route("report", "getTable", server)
    rows = [int(r["event_time"]) for r in make_client(report_page_size=2000).reports.table(38, WEEK)]
    assert rows == server.times


def test_daily_reports_are_split_on_day_boundaries_without_losing_rows(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    server = ReportServer(spread(30_000))
    fake_kaltura.route("report", "getTable", server)
    daily = ReportFilter(from_date=WEEK.from_date, to_date=WEEK.to_date, interval=ReportInterval.DAYS)
    rows = [int(r["event_time"]) for r in make_client().reports.table(38, daily)]
    assert rows == server.times
    cuts = {low for low, _, _ in server.pages} | {high for _, high, _ in server.pages}
    assert all((cut - START) % 86400 == 0 for cut in cuts)


def test_split_points_fall_on_local_midnight_for_daily_reports() -> None:
    offset_minutes = 240  # UTC-4: local midnight is 04:00 UTC
    daily = ReportFilter(
        from_date=START + 4 * 3600,
        to_date=START + 4 * 3600 + 8 * 86400,
        time_zone_offset=240,
        interval=ReportInterval.DAYS,
    )
    points = _split_points(daily, 4)
    assert points[0] == daily.from_date and points[-1] == daily.to_date
    assert len(points) == 5
    assert all((p - offset_minutes * 60) % 86400 == 0 for p in points)


def test_without_splitting_a_large_window_is_a_result_limit_error(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("report", "getTable", ReportServer(spread(20_000)))
    table = make_client().reports.table(38, WEEK, split_on_limit=False)
    with pytest.raises(KalturaResultLimitError):
        list(table)


def test_a_window_that_cannot_be_split_is_a_result_limit_error(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("report", "getTable", ReportServer([START] * 13_000))
    with pytest.raises(KalturaResultLimitError):
        list(make_client().reports.table(38, ReportFilter(from_date=START, to_date=START + 1)))


@pytest.mark.parametrize(
    "total_of",
    [
        lambda low, high: 100_000,  # every window claims all rows (a report not partitioned by time)
        lambda low, high: 12_001 + (high - low) // 1000,  # splitting shrinks the count by a trickle only
    ],
)
def test_splitting_that_does_not_reduce_the_rows_stops_quickly(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, total_of: Callable[[int, int], int]
) -> None:
    def handler(request: Recorded) -> Any:
        low, high = int(request.form["reportInputFilter[fromDate]"]), int(request.form["reportInputFilter[toDate]"])
        data = "".join(f"{low}|n|1;" for _ in range(int(request.form["pager[pageSize]"])))
        return {"header": ReportServer.HEADER, "data": data, "totalCount": total_of(low, high)}

    fake_kaltura.route("report", "getTable", handler)
    with pytest.raises(KalturaResultLimitError, match="does not reduce"):
        list(make_client().reports.table(38, WEEK))
    assert len(fake_kaltura.requests) < 200


def test_pages_are_fetched_concurrently_up_to_the_configured_bound(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    server = ReportServer(spread(9400), barrier=threading.Barrier(3, timeout=5))  # pages 2..19 meet in threes
    fake_kaltura.route("report", "getTable", server)
    rows = list(make_client(report_concurrency=3, report_page_size=500).reports.table(38, WEEK))
    assert len(rows) == 9400
    assert server.max_in_flight == 3


def test_a_rate_limited_page_is_retried_without_losing_order(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    server = ReportServer(spread(5000))
    blocked = threading.Event()

    def handler(request: Recorded) -> Any:
        if request.form["pager[pageIndex]"] == "3" and not blocked.is_set():
            blocked.set()
            return {"code": "ACTION_BLOCKED", "message": "m", "objectType": "KalturaAPIException", "args": []}
        return server(request)

    fake_kaltura.route("report", "getTable", handler)
    rows = [int(r["event_time"]) for r in make_client().reports.table(38, WEEK)]
    assert blocked.is_set()
    assert rows == server.times


def test_stopping_early_cancels_the_remaining_pages(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    server = ReportServer(spread(11_000))  # 110 pages of 100 rows
    fake_kaltura.route("report", "getTable", server)
    rows = iter(make_client(report_concurrency=2, report_page_size=100).reports.table(38, WEEK))
    first = [next(rows) for _ in range(150)]
    rows.close()  # type: ignore[attr-defined]
    requested = len(server.pages)
    assert len(first) == 150
    assert requested <= 2 + 8 * 2 + 1  # pages consumed, the bounded read-ahead, and the head
    assert len(server.pages) == requested  # nothing runs after close


def test_a_row_that_does_not_match_the_header_is_a_protocol_error(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("report", "getTable", {"header": "a|b", "data": "1|2;3;", "totalCount": 2})
    with pytest.raises(KalturaProtocolError):
        make_client().reports.table(1, WEEK)


def test_total_is_one_row_keyed_by_its_header(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route(
        "report",
        "getTotal",
        {
            "header": "count_plays|unique_known_users|avg_time_viewed",
            "data": "1250|340|36.5",
            "objectType": "KalturaReportTotal",
        },
    )
    total = make_client().reports.total(38, WEEK, object_ids=["1_a", "1_b"])
    assert total == {"count_plays": "1250", "unique_known_users": "340", "avg_time_viewed": "36.5"}
    assert fake_kaltura.requests[0].form["objectIds"] == "1_a|1_b"


def test_total_without_data_is_empty(make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura) -> None:
    fake_kaltura.route("report", "getTotal", {"header": "count_plays", "data": "", "objectType": "KalturaReportTotal"})
    assert make_client().reports.total(38, WEEK) == {}


def test_graphs_are_parsed_into_points(make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura) -> None:
    fake_kaltura.route(
        "report",
        "getGraphs",
        [
            {"id": "count_plays", "data": "20260101|45;20260102|62;", "objectType": "KalturaReportGraph"},
            {"id": "sum_time_viewed", "data": "", "objectType": "KalturaReportGraph"},
        ],
    )
    plays, viewed = make_client().reports.graphs(38, WEEK)
    assert (plays.id, plays.points) == ("count_plays", (("20260101", "45"), ("20260102", "62")))
    assert (viewed.id, viewed.points) == ("sum_time_viewed", ())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"from_date": START, "to_date": START},
        {"from_date": START, "to_date": START + 1, "entry_ids": ("1_a|1_b",)},
        {"from_date": START, "to_date": START + 1, "user_ids": ("u",), "end_user": False},
    ],
)
def test_invalid_filters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReportFilter(**kwargs)
