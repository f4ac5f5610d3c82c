"""Files over the wire (docs/kaltura.md#report-csv-url, #report-csv-strings): ``getCsvFromStringParams`` streamed raw
(BOM, unquoted values), ``getUrlForReportAsCsv`` plus the download and its SSRF guard, and streams cut short."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import requests
from contract_support import DAY, MONDAY, PARTNER_ID, BytesSink, OtherHost
from kauto.kaltura import (
    KalturaClient,
    KalturaStreamInterruptedError,
    KalturaURLRefusedError,
    ReportFilter,
)
from kauto_local.simulator import VIEWER_SESSIONS, Attendee, KalturaSimulator

pytestmark = pytest.mark.integration

MakeClient = Callable[..., KalturaClient]
BOM = b"\xef\xbb\xbf"
ATTENDEE_HEADER = (
    "entry_id,cue_point_id,user_id,user_name,user_email,user_type,meeting_view_time,meeting_engaged_play_time_ratio"
)


def _room_session_with_awkward_names(sim: KalturaSimulator) -> dict[str, str]:
    people = [
        Attendee("host@example.com", "Doe, Jane", "host@example.com", "Host", 3000, 0.91),
        Attendee("u1", '=HYPERLINK("http://x.example")', "u1@example.com", view_time=60, engagement=0.5),
        Attendee("u2", "Semi;Colon", "u2@example.com", view_time=61, engagement=0.25),
        Attendee("u3", "李小龍 Ünïcödé", "u3@example.com", view_time=62, engagement=0.125),
        Attendee("u4", 'Quote "Q"\nNewline', "u4@example.com", view_time=63, engagement=1.0),
    ]
    session = sim.add_room_session(PARTNER_ID, start=MONDAY, end=MONDAY + 3600, attendees=people)
    return {"from_date": str(MONDAY - 60), "to_date": str(MONDAY + 60), "cue_point_ids": session.cue_point_id}


def _raw_csv(sim: KalturaSimulator, report_id: int, params: dict[str, str]) -> bytes:
    response = requests.post(
        f"{sim.url}/api_v3/service/report/action/getCsvFromStringParams",
        data={
            "ks": sim.ks(PARTNER_ID),
            "format": 1,
            "id": report_id,
            "params": ";".join(f"{k}={v}" for k, v in params.items()),
        },
        timeout=10,
    )
    assert response.headers["Content-Type"] == "text/csv"
    return response.content


def test_room_csv_streams_with_the_bom_stripped_and_odd_characters_intact(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    params = _room_session_with_awkward_names(sim)
    sink = BytesSink()

    result = make_client().reports.csv(6001, params, sink)

    raw = _raw_csv(sim, 6001, params)
    body = sink.getvalue()
    assert raw.startswith(BOM) and body == raw[len(BOM) :]
    assert (result.bytes_written, result.sha256, result.lines) == (len(body), hashlib.sha256(body).hexdigest(), 6)
    lines = body.decode("utf-8").split("\n")
    assert lines[0] == ATTENDEE_HEADER
    assert [line.split(",")[3] for line in lines[1:6]] == [
        "Doe  Jane",
        '=HYPERLINK("http://x.example")',
        "Semi;Colon",
        "李小龍 Ünïcödé",
        'Quote "Q" Newline',
    ]


def test_room_csv_keeps_the_bom_when_asked_and_drops_excluded_columns(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    params = _room_session_with_awkward_names(sim)
    client = make_client()
    with_bom, narrow = BytesSink(), BytesSink()

    client.reports.csv(6001, params, with_bom, strip_bom=False)
    client.reports.csv(6001, params, narrow, excluded_fields=["user_email", "user_type"])

    assert with_bom.getvalue() == _raw_csv(sim, 6001, params)
    assert narrow.getvalue().split(b"\n")[0] == (
        b"entry_id,cue_point_id,user_id,user_name,meeting_view_time,meeting_engaged_play_time_ratio"
    )


def test_a_large_csv_is_hashed_as_it_streams(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_room_report(6001, body_bytes=6_000_000)
    params = {"from_date": str(MONDAY), "to_date": str(MONDAY + DAY)}

    class HashingSink:
        def __init__(self) -> None:
            self.digest = hashlib.sha256()
            self.size = 0

        def write(self, data: bytes) -> None:
            self.digest.update(data)
            self.size += len(data)

    sink = HashingSink()
    result = make_client().reports.csv(6001, params, sink)

    raw = _raw_csv(sim, 6001, params)
    assert (result.bytes_written, sink.size) == (len(raw) - 3, len(raw) - 3)
    assert result.sha256 == sink.digest.hexdigest() == hashlib.sha256(raw[3:]).hexdigest()
    assert result.lines == raw.count(b"\n")


def test_a_stream_broken_after_bytes_reached_the_sink_is_a_typed_error(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    sim.configure_room_report(6001, body_bytes=3_000_000)
    sim.faults.truncated_body("report/getCsvFromStringParams", count=1, after_bytes=400_000)
    sink = BytesSink()

    with pytest.raises(KalturaStreamInterruptedError) as caught:
        make_client().reports.csv(6001, {"from_date": "0", "to_date": str(MONDAY)}, sink)

    assert 0 < caught.value.bytes_written == len(sink.getvalue()) <= 400_000
    assert len(sim.calls_to("report", "getCsvFromStringParams")) == 1, "never retried into a half-written sink"


def test_a_stream_broken_before_any_byte_is_retried(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_room_report(6001, body_bytes=500_000)
    sim.faults.truncated_body("report/getCsvFromStringParams", count=1, after_bytes=0)
    sink = BytesSink()

    result = make_client().reports.csv(6001, {"from_date": "0", "to_date": str(MONDAY)}, sink)

    assert result.bytes_written == len(sink.getvalue()) >= 500_000 - 3
    assert len(sim.calls_to("report", "getCsvFromStringParams")) == 2


def _export(client: KalturaClient, sink: BytesSink) -> object:
    return client.reports.export_csv(
        VIEWER_SESSIONS,
        ReportFilter(MONDAY, MONDAY + DAY),
        sink,
        title="Viewer sessions, Monday",
        text="All entries",
        table_headers=["Start", "Day", "User", "Name", "Entry", "Title", "Plays", "Seconds", "Loads", "Completion"],
        total_headers=["Plays", "Seconds", "Loads", "Completion"],
        max_rows=500,
    )


def test_report_url_download_over_https(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.configure_report(VIEWER_SESSIONS, rows_per_day=300)
    client = make_client()
    sink = BytesSink()

    _export(client, sink)

    lines = sink.getvalue().decode("utf-8").split("\n")
    total = client.reports.total(VIEWER_SESSIONS, ReportFilter(MONDAY, MONDAY + DAY))
    rows = list(client.reports.table(VIEWER_SESSIONS, ReportFilter(MONDAY, MONDAY + DAY)))
    assert lines[:5] == [
        "Viewer sessions  Monday",
        "All entries",
        "",
        "Plays,Seconds,Loads,Completion",
        ",".join(total.values()),
    ]
    assert lines[6] == "Start,Day,User,Name,Entry,Title,Plays,Seconds,Loads,Completion"
    assert lines[7:-1] == [",".join(value.replace(",", " ") for value in row.values()) for row in rows]
    assert [call.executed for call in sim.calls_to("report", "serve")] == [True]


@pytest.mark.parametrize(
    "public_url",
    [
        pytest.param("https://downloads.example.net", id="other-host"),
        pytest.param("http://127.0.0.1:{other}", id="http"),
        pytest.param("https://127.0.0.1:{other}", id="ip-literal"),
        pytest.param("https://localhost:{sim}", id="same-server-other-name"),
        pytest.param("https://cdnapisec.kaltura.com:{other}", id="allowed-host-other-port"),
    ],
)
def test_download_urls_off_the_allow_list_are_refused(
    sim: KalturaSimulator, make_client: MakeClient, other_host: OtherHost, public_url: str
) -> None:
    client = make_client()
    sim.public_url = public_url.format(other=other_host.port, sim=sim.https_url.rsplit(":", 1)[1])

    with pytest.raises(KalturaURLRefusedError) as caught:
        _export(client, BytesSink())

    assert "djJ8" not in str(caught.value), "the KS in the URL never reaches an error"
    assert other_host.requests == []
    assert sim.calls_to("report", "serve") == []


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("http://127.0.0.1:{other}/report.csv", id="http"),
        pytest.param("https://127.0.0.1:{other}/report.csv", id="ip-literal"),
        pytest.param("https://downloads.example.net/report.csv", id="other-host"),
        pytest.param("//localhost:{other}/report.csv", id="scheme-relative-other-host"),
    ],
)
def test_redirects_off_the_allow_list_are_refused(
    sim: KalturaSimulator, make_client: MakeClient, other_host: OtherHost, location: str
) -> None:
    sim.faults.redirect("report/serve", location.format(other=other_host.port))

    with pytest.raises(KalturaURLRefusedError):
        _export(make_client(), BytesSink())

    assert other_host.requests == []
    assert [call.executed for call in sim.calls_to("report", "serve")] == [False]


def test_redirects_within_the_trusted_origin_are_followed_up_to_the_limit(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    client = make_client(settings={"max_redirects": 2})
    url = client.call(
        "report",
        "getUrlForReportAsCsv",
        {
            "reportTitle": "t",
            "reportText": "t",
            "headers": ";",
            "reportType": VIEWER_SESSIONS,
            "reportInputFilter": {"fromDate": MONDAY, "toDate": MONDAY + 3600},
        },
    )
    sim.faults.redirect("report/serve", url, count=2)
    followed = BytesSink()

    client.download(url, followed, strip_bom=True)
    sim.faults.redirect("report/serve", url, count=3)
    with pytest.raises(KalturaURLRefusedError, match="more than 2 redirects"):
        client.download(url, BytesSink())

    assert followed.getvalue().startswith(b"t\nt\n")
    assert [call.executed for call in sim.calls_to("report", "serve")] == [False, False, True, False, False, False]
