"""Kaltura Room reports 6000/6001/6002 as raw CSV (docs/kaltura.md#report-csv-strings), including a large streamed
body."""

from __future__ import annotations

import inspect
import os

import pytest
import requests
from kauto_local.simulator import Attendee, KalturaSimulator
from kauto_local.simulator.room_reports import COLUMNS, Volume, stream_csv, synthetic_cells
from sim_support import PARTNER_ID, TIMEOUT, Api

pytestmark = pytest.mark.integration

BOM = b"\xef\xbb\xbf"


def _csv(api: Api, ks: str, report_id: int, params: str, **extra: object) -> requests.Response:
    response = api.post("report", "getCsvFromStringParams", ks=ks, id=report_id, params=params, **extra)
    assert response.status_code == 200
    return response


def _lines(response: requests.Response) -> list[str]:
    assert response.content.startswith(BOM)
    text = response.content[len(BOM) :].decode("utf-8")
    assert text.endswith("\n")
    return text.split("\n")[:-1]


@pytest.fixture
def sessions(sim: KalturaSimulator) -> dict[str, object]:
    now = sim.clock.now()
    people = [
        Attendee("host-1", "Jane Host", "jane@example.com", "Host", 3600, 0.9),
        Attendee("u-comma", "Doe, Jane", "doe@example.com", "Attendee", 1200, 0.5),
        Attendee("u-formula", "=HYPERLINK(1)", "f@example.com", "Attendee", 30, 0.25),
        Attendee("u-plus", "+1 555", "p@example.com", "Attendee", 60, 0.0),
        Attendee("u-minus", "-Minus", "m@example.com", "Attendee", 61, 1.0),
        Attendee("u-at", "@handle", "a@example.com", "Attendee", 62, 0.125),
        Attendee("u-intl", "Zoë 李", "z@example.com", "Attendee", 63, 0.75),
    ]
    main = sim.add_room_session(
        PARTNER_ID, room_name="Main, room", start=now - 7200, end=now - 3600, attendees=people, breakouts=2
    )
    other = sim.add_room_session(PARTNER_ID, room_name="Other room", start=now - 1800, end=now, attendees=3)
    old = sim.add_room_session(PARTNER_ID, room_name="Old room", start=now - 90000, end=now - 86400, attendees=2)
    return {"main": main, "other": other, "old": old, "window": f"from_date={now - 8000};to_date={now}"}


def test_attendees_csv_is_raw_with_bom_even_with_format_1(api: Api, admin_ks: str, sessions: dict) -> None:
    main = sessions["main"]

    response = _csv(api, admin_ks, 6001, sessions["window"])

    assert response.headers["Content-Type"] == "text/csv"
    window = sessions["window"].replace("=", "_").replace(";", "_")
    assert response.headers["Content-Disposition"] == f'attachment; filename="Report_6001_{PARTNER_ID}_{window}.csv"'
    lines = _lines(response)
    assert lines[0] == ",".join(COLUMNS[6001])
    assert len(lines) == 1 + 7 + 3, "the old session is outside the window"
    rows = [line.split(",") for line in lines[1:]]
    assert all(len(row) == 8 for row in rows)
    names = [row[3] for row in rows[:7]]
    assert names == ["Jane Host", "Doe  Jane", "=HYPERLINK(1)", "+1 555", "-Minus", "@handle", "Zoë 李"]
    assert rows[0][:3] == [main.room_entry_id, main.cue_point_id, "host-1"]
    assert [row[7] for row in rows[:7]] == ["0.9", "0.5", "0.25", "0", "1", "0.125", "0.75"]


def test_filters_and_excluded_fields(api: Api, admin_ks: str, sessions: dict) -> None:
    main, other = sessions["main"], sessions["other"]
    window = sessions["window"]

    by_entry = _lines(_csv(api, admin_ks, 6001, f"{window};entry_ids={other.room_entry_id}"))
    by_session = _lines(_csv(api, admin_ks, 6001, f"{window};cue_point_ids={main.cue_point_id}"))
    by_user = _lines(_csv(api, admin_ks, 6001, f"{window};user_ids=u-comma,u-plus"))
    trimmed = _lines(_csv(api, admin_ks, 6001, window, excludedFields="user_email,user_type"))

    assert {line.split(",")[0] for line in by_entry[1:]} == {other.room_entry_id}
    assert len(by_session) == 1 + 7
    assert [line.split(",")[2] for line in by_user[1:]] == ["u-comma", "u-plus"]
    assert trimmed[0] == "entry_id,cue_point_id,user_id,user_name,meeting_view_time,meeting_engaged_play_time_ratio"


def test_room_data_and_breakouts(sim: KalturaSimulator, api: Api, admin_ks: str, sessions: dict) -> None:
    main = sessions["main"]

    room_data = [line.split(",") for line in _lines(_csv(api, admin_ks, 6000, sessions["window"]))]
    breakouts = [
        line.split(",")
        for line in _lines(_csv(api, admin_ks, 6002, f"{sessions['window']};parentEntryIds={main.room_entry_id}"))
    ]

    assert room_data[0] == list(COLUMNS[6000])
    assert room_data[1][:4] == [main.room_entry_id, "Main  room", "", main.cue_point_id]
    assert room_data[1][4:8] == [str(main.start), str(main.end), "host@example.com", "7"]
    assert [row[2] for row in room_data[2:4]] == [main.room_entry_id] * 2, "breakout rooms name their main room"
    assert breakouts[0] == list(COLUMNS[6002])
    assert len(breakouts) == 3
    for row, breakout in zip(breakouts[1:], main.breakouts, strict=True):
        assert row[:5] == [
            main.room_entry_id,
            "Main  room",
            breakout.entry_id,
            breakout.name.replace(",", " "),
            breakout.cue_point_id,
        ]
        assert int(row[8]) == breakout.end - breakout.start


def test_report_errors(api: Api, admin_ks: str) -> None:
    missing = api.call("report", "getCsvFromStringParams", ks=admin_ks, id=6000, params="from_date=1")
    unknown = api.call("report", "getCsvFromStringParams", ks=admin_ks, id=6099, params="from_date=1;to_date=2")

    assert (missing["code"], missing["args"]) == ("REPORT_PARAMETER_MISSING", {"PARAM": "to_date"})
    assert (unknown["code"], unknown["args"]) == ("REPORT_NOT_FOUND", {"ID": "6099"})


def test_get_url_style_and_key_value_params(sim: KalturaSimulator, api: Api, admin_ks: str, sessions: dict) -> None:
    window = sessions["window"]
    url = f"{sim.url}/api_v3/service/report/action/getCsvFromStringParams/id/6000/ks/{admin_ks}/params/{window}"
    key_values = {
        f"params[{i}][{k}]": v
        for i, pair in enumerate(window.split(";"))
        for k, v in zip(("key", "value"), pair.split("="), strict=True)
    }

    by_path = requests.get(url, timeout=TIMEOUT)
    by_key_values = api.post("report", "getCsv", ks=admin_ks, id=6000, **key_values)

    assert by_path.content == by_key_values.content
    assert _lines(by_path)[0] == ",".join(COLUMNS[6000])


def test_synthetic_volume_by_rows_is_deterministic(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    sim.configure_room_report(6001, rows=1000)

    first = _csv(api, admin_ks, 6001, "from_date=0;to_date=10").content
    second = _csv(api, admin_ks, 6001, "from_date=0;to_date=10").content

    assert first == second
    lines = _lines(_csv(api, admin_ks, 6001, "from_date=0;to_date=10"))
    assert len(lines) == 1001
    assert all(line.count(",") == 7 for line in lines)


def test_body_generator_yields_bounded_chunks_without_building_the_body() -> None:
    chunks = stream_csv(COLUMNS[6001], list(range(8)), [], Volume(body_bytes=5_000_000), synthetic_cells(1, 6001, 0))

    assert inspect.isgenerator(chunks)
    sizes = [len(chunk) for chunk in chunks]
    assert sum(sizes) >= 5_000_000 and sum(sizes) - 5_000_000 < 200
    assert max(sizes) < 128 * 1024


def _resident_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to sample memory")
def test_fifty_megabytes_stream_through_http_in_bounded_memory(sim: KalturaSimulator, api: Api, admin_ks: str) -> None:
    target = 50 * 1024 * 1024
    sim.configure_room_report(6001, body_bytes=target)
    received = newlines = 0
    baseline = peak = _resident_bytes()
    with api.http.post(
        api.url("report", "getCsvFromStringParams"),
        data={"ks": admin_ks, "id": 6001, "params": "from_date=0;to_date=10"},
        stream=True,
        timeout=TIMEOUT,
    ) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        for chunk in response.iter_content(chunk_size=64 * 1024):
            assert len(chunk) <= 64 * 1024
            received += len(chunk)
            newlines += chunk.count(b"\n")
            peak = max(peak, _resident_bytes())

    assert target <= received < target + 200
    assert newlines > 500_000
    # Server and client share this process: a materialised 50 MB body would show up here.
    assert peak - baseline < 20 * 1024 * 1024, f"resident memory grew by {peak - baseline} bytes while streaming"
