"""Report windows: ``[fromDate, toDate)``, per-moment rows that split exactly, time zones, aggregated reports.

Raw HTTP through ``sim_support.Api`` (never the product client); references come from ``sim.report_rows``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from kauto_local.simulator import VIEWER_SESSIONS, KalturaSimulator
from sim_support import PARTNER_ID, Api

pytestmark = pytest.mark.integration

MONDAY = 1767571200  # 2026-01-05 00:00 UTC
DAY = 86400
WEEK = 7 * DAY
SESSION_COLUMNS = (
    "session_start|date_id|user_id|full_name|object_id|entry_name|"
    "count_plays|sum_time_viewed|count_loads|avg_completion_rate"
)


def _call(api: Api, ks: str, action: str, report_type: int, window: dict[str, Any], **extra: Any) -> Any:
    params = {
        "ks": ks,
        "reportType": report_type,
        "reportInputFilter[objectType]": "KalturaEndUserReportInputFilter",
        "responseOptions[delimiter]": "|",
        **{f"reportInputFilter[{key}]": value for key, value in window.items()},
        **extra,
    }
    return api.call("report", action, **params)


def _rows(table: dict) -> list[list[str]]:
    return [row.split("|") for row in table["data"].split(";")[:-1]]


def _fetch(api: Api, ks: str, report_type: int, window: dict[str, Any], page_size: int = 3000) -> list[list[str]]:
    """Every row of a window of at most 12,000 rows, page by page until a short page
    (docs/kaltura.md#report-gettable)."""
    rows: list[list[str]] = []
    page = 1
    while True:
        pager = {"pager[pageSize]": page_size, "pager[pageIndex]": page}
        table = _call(api, ks, "getTable", report_type, window, **pager)
        batch = _rows(table)
        rows += batch
        if len(batch) < page_size:
            return rows
        page += 1


def _dates(start: int, end: int) -> dict[str, int]:
    return {"fromDate": start, "toDate": end}


def test_session_rows_of_a_window_are_those_whose_instant_lies_in_it(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=1500)

    table = _call(api, admin_ks, "getTable", VIEWER_SESSIONS, _dates(MONDAY, MONDAY + WEEK), **{"pager[pageSize]": 5})
    rows = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(MONDAY, MONDAY + WEEK))

    # Monday 00:00 to the next Monday 00:00 is seven days, not eight: toDate is excluded.
    assert table["header"] == SESSION_COLUMNS
    assert table["totalCount"] == len(rows) == 7 * 1500
    instants = [int(row[0]) for row in rows]
    assert instants == sorted(instants)
    assert instants[0] >= MONDAY
    assert instants[-1] < MONDAY + WEEK
    assert Counter(row[1] for row in rows) == {f"202601{day:02d}": 1500 for day in range(5, 12)}


def test_a_window_cut_anywhere_gives_the_same_rows_in_the_same_order(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=1500)
    whole = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(MONDAY, MONDAY + WEEK))
    cuts = [MONDAY, MONDAY + 2 * DAY + 3601, MONDAY + 2 * DAY + 3607, MONDAY + 5 * DAY - 17, MONDAY + WEEK]

    parts = [_fetch(api, admin_ks, VIEWER_SESSIONS, _dates(start, end)) for start, end in itertools.pairwise(cuts)]

    assert [row for part in parts for row in part] == whole
    assert len(parts[1]) < 5, "a six-second part holds only the sessions of those seconds"


def test_a_session_at_the_cut_belongs_to_the_later_part(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=1000)
    tenth = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(MONDAY, MONDAY + DAY))[10]
    instant = int(tenth[0])

    before = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(MONDAY, instant))
    from_it = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(instant, instant + 1))

    assert len(before) == 10
    assert from_it[0] == tenth


def test_the_rows_match_the_generator_reference(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=1500)
    start, end = MONDAY + 4000, MONDAY + 3 * DAY + 123

    served = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(start, end))
    header, reference = sim.report_rows(PARTNER_ID, VIEWER_SESSIONS, from_date=start, to_date=end, delimiter="|")

    assert "|".join(header) == SESSION_COLUMNS
    assert served == reference
    assert len(reference) == sum(1 for row in reference if start <= int(row[0]) < end) > 4000


def test_totals_are_the_sum_of_the_rows_and_add_up_over_a_split(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=1200)
    window, middle = _dates(MONDAY, MONDAY + 4 * DAY), MONDAY + DAY + 999

    def totals(window: dict[str, int]) -> dict[str, str]:
        total = _call(api, admin_ks, "getTotal", VIEWER_SESSIONS, window)
        return dict(zip(total["header"].split("|"), total["data"].split("|"), strict=True))

    rows = _fetch(api, admin_ks, VIEWER_SESSIONS, window)
    whole = totals(window)
    first, second = totals(_dates(MONDAY, middle)), totals(_dates(middle, MONDAY + 4 * DAY))

    assert int(whole["count_plays"]) == sum(int(row[6]) for row in rows)
    assert Decimal(whole["sum_time_viewed"]) == sum(Decimal(row[7]) for row in rows)
    assert int(whole["count_loads"]) == sum(int(row[8]) for row in rows)
    plays_weighted = sum(int(row[6]) * Decimal(row[9]) for row in rows) / int(whole["count_plays"])
    assert float(whole["avg_completion_rate"]) == pytest.approx(float(plays_weighted))
    for metric in ("count_plays", "count_loads"):
        assert int(first[metric]) + int(second[metric]) == int(whole[metric])
    assert Decimal(first["sum_time_viewed"]) + Decimal(second["sum_time_viewed"]) == Decimal(whole["sum_time_viewed"])


def test_time_zone_moves_day_labels_and_graph_days_not_the_window(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=600)
    window = {**_dates(MONDAY, MONDAY + 2 * DAY), "timeZoneOffset": 300}  # UTC-5

    utc_rows = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(MONDAY, MONDAY + 2 * DAY))
    local_rows = _fetch(api, admin_ks, VIEWER_SESSIONS, window)
    graphs = _call(api, admin_ks, "getGraphs", VIEWER_SESSIONS, window)
    total = _call(api, admin_ks, "getTotal", VIEWER_SESSIONS, window)

    assert [row[0] for row in local_rows] == [row[0] for row in utc_rows]
    assert Counter(row[1] for row in local_rows) == {"20260104": 125, "20260105": 600, "20260106": 475}
    plays = dict(point.split("|") for point in graphs[0]["data"].split(";")[:-1])
    assert graphs[0]["id"] == "count_plays"
    assert list(plays) == ["20260104", "20260105", "20260106"]
    for label, value in plays.items():
        assert int(value) == sum(int(row[6]) for row in local_rows if row[1] == label)
    assert sum(int(value) for value in plays.values()) == int(total["data"].split("|")[0])


def test_from_day_to_day_covers_whole_local_days(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=500)

    rows = _fetch(api, admin_ks, VIEWER_SESSIONS, {"fromDay": "20260105", "toDay": "20260106", "timeZoneOffset": -120})

    # UTC+2: local Monday 00:00 is Sunday 22:00 UTC; both days are included.
    assert len(rows) == 1000
    assert int(rows[0][0]) >= MONDAY - 7200
    assert int(rows[-1][0]) < MONDAY + 2 * DAY - 7200
    assert Counter(row[1] for row in rows) == {"20260105": 500, "20260106": 500}


def test_rows_per_weekday(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_weekday=(900, 900, 900, 900, 900, 40, 0))

    rows = _fetch(api, admin_ks, VIEWER_SESSIONS, _dates(MONDAY, MONDAY + WEEK))

    assert Counter(row[1] for row in rows) == {
        "20260105": 900,
        "20260106": 900,
        "20260107": 900,
        "20260108": 900,
        "20260109": 900,
        "20260110": 40,
    }


def test_session_rows_do_not_depend_on_the_window_but_on_the_filter(sim: KalturaSimulator) -> None:
    def rows(**filters: str) -> list[list[str]]:
        return sim.report_rows(PARTNER_ID, VIEWER_SESSIONS, from_date=MONDAY, to_date=MONDAY + DAY, filters=filters)[1]

    wanted = ["1_aaaaaaaa", "1_bbbbbbbb"]
    filtered = sim.report_rows(
        PARTNER_ID,
        VIEWER_SESSIONS,
        from_date=MONDAY,
        to_date=MONDAY + DAY,
        filters={"entryIdIn": "|".join(wanted)},
        delimiter="|",
    )[1]

    assert rows() == rows(objectType="KalturaReportInputFilter", interval="days")
    assert rows() != rows(categoriesIdsIn="42")
    assert len(filtered) == len(rows()) and {row[4] for row in filtered} == set(wanted)


def test_newest_first_order(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    window = _dates(MONDAY, MONDAY + DAY)

    newest = _rows(_call(api, admin_ks, "getTable", VIEWER_SESSIONS, window, order="-session_start"))
    reference = sim.report_rows(PARTNER_ID, VIEWER_SESSIONS, from_date=MONDAY, to_date=MONDAY + DAY, delimiter="|")[1]

    assert newest == reference[::-1]


def test_aggregated_report_counts_the_local_days_the_window_touches(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    sim.configure_report(1, rows_per_day=4)

    def count(start: int, end: int, offset: int = 0) -> int:
        window = {**_dates(start, end), "timeZoneOffset": offset}
        return int(_call(api, admin_ks, "getTable", 1, window)["totalCount"])

    assert count(MONDAY, MONDAY + WEEK) == 28
    assert count(MONDAY, MONDAY + WEEK + 1) == 32
    assert count(MONDAY, MONDAY + WEEK, offset=-120) == 32, "UTC+2: the UTC week touches eight local days"
    assert count(MONDAY + 3600, MONDAY + 7200) == 4
    assert count(MONDAY, MONDAY) == 0


def test_aggregated_report_split_lists_the_top_entities_once_per_part(
    sim: KalturaSimulator, api: Api, admin_ks: str
) -> None:
    sim.configure_report(1, rows_per_day=4)
    middle = MONDAY + 3 * DAY

    whole = _fetch(api, admin_ks, 1, _dates(MONDAY, MONDAY + WEEK))
    first = _fetch(api, admin_ks, 1, _dates(MONDAY, middle))
    second = _fetch(api, admin_ks, 1, _dates(middle, MONDAY + WEEK))

    assert (len(whole), len(first), len(second)) == (28, 12, 16)
    ids = [row[0] for row in whole]
    assert [row[0] for row in first] == ids[:12] and [row[0] for row in second] == ids[:16]


def test_configure_report_validation(sim: KalturaSimulator) -> None:
    with pytest.raises(ValueError, match="rows per day"):
        sim.configure_report(VIEWER_SESSIONS, total_rows=10)
    with pytest.raises(ValueError, match="exactly one"):
        sim.configure_report(1, rows_per_day=3, total_rows=10)
    with pytest.raises(ValueError, match="seven"):
        sim.configure_report(1, rows_per_weekday=(1, 2, 3))
    with pytest.raises(ValueError, match="unknown report type"):
        sim.configure_report(12345, rows_per_day=3)
