"""Analytics reports: getTable / getTotal / getGraphs / getUrlForReportAsCsv / serve
(docs/kaltura.md#report-gettable, #report-csv-url)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import requests
from kauto_local.simulator import KalturaSimulator, decode_ks
from sim_support import ADMIN_SECRET, PARTNER_ID, TIMEOUT, Api

pytestmark = pytest.mark.integration

# Monday 2026-01-05 00:00 UTC .. Sunday 2026-01-11 23:59:59 UTC: one ISO week.
WEEK_START = 1767571200
WEEK_END = WEEK_START + 7 * 86400 - 1
TOP_CONTENT_HEADER = (
    "object_id,entry_name,count_plays,sum_time_viewed,avg_time_viewed,count_loads,load_play_ratio,"
    "avg_view_drop_off,unique_known_users,sum_view_period,avg_view_period_time,avg_completion_rate"
)


def _report(api: Api, ks: str, action: str, report_type: int = 1, **extra: Any) -> Any:
    params = {
        "ks": ks,
        "reportType": report_type,
        "reportInputFilter[objectType]": "KalturaEndUserReportInputFilter",
        "reportInputFilter[fromDate]": WEEK_START,
        "reportInputFilter[toDate]": WEEK_END,
    }
    params.update(extra)
    return api.call("report", action, **params)


def _rows(table: dict, delimiter: str = ",") -> list[list[str]]:
    data = table["data"]
    assert data == "" or data.endswith(";")
    return [row.split(delimiter) for row in data.split(";")[:-1]]


def _all_rows(api: Api, ks: str, report_type: int = 1, page_size: int = 500, **extra: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    page = 1
    while True:
        table = _report(
            api, ks, "getTable", report_type, **{"pager[pageSize]": page_size, "pager[pageIndex]": page}, **extra
        )
        batch = _rows(table)
        rows += batch
        if len(batch) < page_size:
            return rows
        page += 1


def test_top_content_table_shape(api: Api, admin_ks: str) -> None:
    table = _report(api, admin_ks, "getTable", **{"pager[pageSize]": 100})

    assert table["objectType"] == "KalturaReportTable"
    assert table["header"] == TOP_CONTENT_HEADER
    rows = _rows(table)
    assert len(rows) == table["totalCount"] == 21, "3 rows per day by default, 7 days"
    assert all(len(row) == 12 for row in rows)
    plays = [int(row[2]) for row in rows]
    assert plays == sorted(plays, reverse=True), "default order is -count_plays"


def test_default_page_is_ten_rows_and_pages_concatenate(api: Api, admin_ks: str) -> None:
    api.sim.configure_report(1, total_rows=45)

    first = _report(api, admin_ks, "getTable")
    paged = _all_rows(api, admin_ks, page_size=7)
    whole = _rows(_report(api, admin_ks, "getTable", **{"pager[pageSize]": 45}))

    assert len(_rows(first)) == 10 and first["totalCount"] == 45
    assert paged == whole
    assert len(whole) == 45


def test_same_seed_same_data_and_the_seed_matters(api: Api, admin_ks: str) -> None:
    def table_of(seed: int) -> dict:
        with KalturaSimulator(seed=seed, tls=False) as other:
            other.add_partner(PARTNER_ID, ADMIN_SECRET)
            return _report(Api(other), other.ks(PARTNER_ID), "getTable", 38, **{"pager[pageSize]": 50})

    assert table_of(7) == table_of(7) == _report(api, admin_ks, "getTable", 38, **{"pager[pageSize]": 50})
    assert table_of(8)["data"] != table_of(7)["data"]


def test_getTable_result_limit_of_12000_rows(api: Api, admin_ks: str) -> None:
    api.sim.configure_report(1, total_rows=20_000)

    clamped = _report(api, admin_ks, "getTable", **{"pager[pageSize]": 15_000, "pager[pageIndex]": 1})
    second = _report(api, admin_ks, "getTable", **{"pager[pageSize]": 6_000, "pager[pageIndex]": 2})
    beyond = _report(api, admin_ks, "getTable", **{"pager[pageSize]": 6_000, "pager[pageIndex]": 3})

    assert len(_rows(clamped)) == 12_000 and clamped["totalCount"] == 20_000
    assert len(_rows(second)) == 6_000
    assert beyond == {
        "code": "INTERNAL_SERVERL_ERROR",
        "message": "result limit is 12000 rows",
        "objectType": "KalturaAPIException",
        "args": [],
    }


def test_total_equals_the_sum_of_all_table_rows(api: Api, admin_ks: str) -> None:
    api.sim.configure_report(1, rows_per_day=300)

    rows = _all_rows(api, admin_ks)
    total = _report(api, admin_ks, "getTotal")

    assert total["objectType"] == "KalturaReportTotal"
    assert total["header"] == TOP_CONTENT_HEADER.split(",", 2)[2]
    values = dict(zip(total["header"].split(","), total["data"].split(","), strict=True))
    assert len(rows) == 2100
    assert int(values["count_plays"]) == sum(int(row[2]) for row in rows)
    assert Decimal(values["sum_time_viewed"]) == sum(Decimal(row[3]) for row in rows)
    assert int(values["count_loads"]) == sum(int(row[5]) for row in rows)
    assert float(values["avg_time_viewed"]) == pytest.approx(
        float(values["sum_time_viewed"]) / int(values["count_plays"])
    )


def test_graphs_split_the_totals_over_the_days_in_the_time_zone(api: Api, admin_ks: str) -> None:
    options = {"responseOptions[delimiter]": "|", "reportInputFilter[timeZoneOffset]": -120}
    total = _report(api, admin_ks, "getTotal", 38, **options)
    graphs = _report(api, admin_ks, "getGraphs", 38, **options)

    totals = dict(zip(total["header"].split("|"), total["data"].split("|"), strict=True))
    assert total["header"] == "count_plays|unique_known_users|sum_time_viewed|avg_time_viewed"
    assert [graph["id"] for graph in graphs] == ["count_plays", "unique_known_users", "sum_time_viewed"]
    for graph in graphs:
        points = [point.split("|") for point in graph["data"].split(";")[:-1]]
        # UTC+2 (offset -120 minutes): the UTC week spans 8 local days, Monday to the next Monday.
        assert [label for label, _ in points] == [
            (dt.date(2026, 1, 5) + dt.timedelta(days=day)).strftime("%Y%m%d") for day in range(8)
        ]
        assert sum(Decimal(value) for _, value in points) == Decimal(totals[graph["id"]])
    assert graphs[0]["objectType"] == "KalturaReportGraph"
    monthly = _report(api, admin_ks, "getGraphs", 38, **options, **{"reportInputFilter[interval]": "months"})
    assert monthly[0]["data"] == f"202601|{totals['count_plays']};"


def test_delimiter_and_semicolons_inside_values_become_spaces(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.add_entry(PARTNER_ID, name="Budget, Q1 | review; final")

    comma = _rows(_report(api, admin_ks, "getTable"))
    pipe_table = _report(api, admin_ks, "getTable", **{"responseOptions[delimiter]": "|"})

    assert comma[0][1] == "Budget  Q1 | review  final"
    assert pipe_table["header"] == TOP_CONTENT_HEADER.replace(",", "|")
    assert _rows(pipe_table, "|")[0][1] == "Budget, Q1   review  final"


def test_entry_filter_and_ascending_order(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    wanted = ["1_aaaaaaaa", "1_bbbbbbbb", "1_cccccccc"]

    filtered = _report(
        api,
        admin_ks,
        "getTable",
        **{"reportInputFilter[entryIdIn]": "|".join(wanted), "responseOptions[delimiter]": "|"},
    )
    descending = _rows(_report(api, admin_ks, "getTable", **{"pager[pageSize]": 50}))
    ascending = _rows(_report(api, admin_ks, "getTable", order="+count_plays", **{"pager[pageSize]": 50}))

    assert sorted(row[0] for row in _rows(filtered, "|")) == wanted
    assert filtered["totalCount"] == 3
    assert ascending == descending[::-1]


@pytest.mark.parametrize(
    ("report_type", "first_columns", "max_rows"),
    [
        (2, "object_id,entry_name,count_plays,count_plays_25", 21),
        (13, "name,full_name,count_plays", 21),
        (21, "device,count_plays", 7),
        (36, "country,coordinates,count_plays", 12),
        (38, "object_id,entry_name,creator_name,created_at", 21),
    ],
)
def test_other_report_types(api: Api, admin_ks: str, report_type: int, first_columns: str, max_rows: int) -> None:
    table = _report(api, admin_ks, "getTable", report_type, **{"pager[pageSize]": 100})
    total = _report(api, admin_ks, "getTotal", report_type)

    assert table["header"].startswith(first_columns)
    assert table["totalCount"] == len(_rows(table)) == max_rows
    assert all(len(row) == len(table["header"].split(",")) for row in _rows(table))
    assert total["data"].count(",") == total["header"].count(",")


def test_unknown_report_type_and_missing_dates(api: Api, admin_ks: str) -> None:
    assert _report(api, admin_ks, "getTable", 999)["code"] == "INVALID_PARAMETER_VALUE"
    missing = api.call("report", "getTable", ks=admin_ks, reportType=1)
    assert (missing["code"], missing["args"]) == (
        "MISSING_MANDATORY_PARAMETER",
        {"PARAM_NAME": "reportInputFilter:fromDate"},
    )


def test_url_for_report_as_csv_serves_the_report_over_https(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    url = _report(
        api,
        admin_ks,
        "getUrlForReportAsCsv",
        reportTitle="Weekly, content",
        reportText="All entries",
        headers="Plays,Minutes;Entry,Name",
        **{"pager[pageSize]": 15},
    )

    prefix = f"{sim.https_url}/api_v3/index.php/service/report/action/serve/ks/"
    assert url.startswith(prefix) and url.endswith("/report.csv")
    download_ks, _, rest = url[len(prefix) :].partition("/id/")
    file_id = rest.removesuffix("/report.csv")
    info = decode_ks(download_ks, lambda pid: [ADMIN_SECRET])
    assert (info.session_type, info.privilege_values("download"), info.expiry) == (
        0,
        [file_id],
        sim.clock.now() + 86400,
    )

    response = requests.get(url, verify=str(sim.ca_path), timeout=TIMEOUT)

    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv"
    assert response.content.startswith(b"\xef\xbb\xbf")
    lines = response.content[3:].decode("utf-8").split("\n")
    table = _rows(_report(api, admin_ks, "getTable", **{"pager[pageSize]": 15}))
    total = _report(api, admin_ks, "getTotal")
    assert lines[:6] == ["Weekly  content", "All entries", "", "Plays,Minutes", total["data"], ""]
    assert lines[6] == "Entry,Name"
    assert [line.split(",") for line in lines[7:-1]] == table
    assert api.call("baseEntry", "list", ks=download_ks)["code"] == "SERVICE_FORBIDDEN"


def test_csv_url_limit_and_serve_errors(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    too_general = _report(
        api,
        admin_ks,
        "getUrlForReportAsCsv",
        reportTitle="t",
        reportText="t",
        headers="",
        **{"pager[pageSize]": 30_001, "pager[pageIndex]": 2},
    )
    assert too_general["code"] == "SEARCH_TOO_GENERAL"

    url = _report(api, admin_ks, "getUrlForReportAsCsv", reportTitle="t", reportText="t", headers="")
    file_id = url.split("/id/")[1].removesuffix("/report.csv")
    other_file_ks = sim.ks(PARTNER_ID, session_type=0, privileges="download:someone_else.csv")

    assert api.call("report", "serve", ks=other_file_ks, id=file_id)["code"] == "SERVICE_FORBIDDEN"
    assert api.call("report", "serve", ks=admin_ks, id="1234567_Report_export_nope.csv")["code"] == "FILE_DOESNT_EXIST"
    sim.clock.advance(86400)
    expired = requests.get(url, verify=str(sim.ca_path), timeout=TIMEOUT)
    assert expired.status_code == 200 and expired.headers["Content-Type"] == "text/xml"
    assert "<code>INVALID_KS</code>" in expired.text


def test_public_url_can_point_returned_urls_elsewhere(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.public_url = "https://cdnapisec.kaltura.example/"
    moved = _report(api, admin_ks, "getUrlForReportAsCsv", reportTitle="t", reportText="t", headers="")
    sim.public_url = None
    default = _report(api, admin_ks, "getUrlForReportAsCsv", reportTitle="t", reportText="t", headers="")

    assert moved.startswith("https://cdnapisec.kaltura.example/api_v3/index.php/service/report/action/serve/ks/")
    assert default.startswith(f"{sim.https_url}/api_v3/index.php/")
