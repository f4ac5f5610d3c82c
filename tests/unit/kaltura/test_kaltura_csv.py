"""CSV actions over real loopback HTTP: getCsvFromStringParams and getUrlForReportAsCsv, streamed into a sink."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest
from kaltura_fakes import LoopbackRequest, LoopbackServer, send
from kauto.kaltura import (
    Disposition,
    KalturaClient,
    KalturaDownloadTooLargeError,
    KalturaNotFoundError,
    KalturaProtocolError,
    KalturaStreamInterruptedError,
    KalturaTransportError,
    ReportFilter,
)

BOM = b"\xef\xbb\xbf"
# Unquoted, commas inside values already replaced by spaces (docs/kaltura.md#report-csv-strings); everything else passes
# as is.
CSV_BODY = (
    "entry_id,entry_name,cue_point_id,session_host_user_id,meeting_engaged_play_time_ratio\n"
    '1_room,Résumé "weekly" sync\tβ 🎥,1_cue,jane.doe@example.com,0.61\n'
    "1_room2,Ünïcödé  spaced  name ;|=,1_cue2,-,0\n"
).encode()
CSV_PATH = "/api_v3/service/report/action/getCsvFromStringParams"
WEEK = ReportFilter(from_date=1_767_225_600, to_date=1_767_830_400)


def json_error(code: str) -> bytes:
    return json.dumps({"code": code, "message": code.lower(), "objectType": "KalturaAPIException", "args": []}).encode()


def test_csv_is_streamed_with_bom_removed_and_bytes_untouched(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    def handler(request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        assert (request.method, request.path) == ("POST", CSV_PATH)
        send(writer, 200, BOM + CSV_BODY, "text/csv", Content_Disposition='attachment; filename="Report_6000.csv"')

    loopback.handler = handler
    sink = io.BytesIO()
    result = loopback_client().reports.csv(
        6000, {"from_date": 1767225600, "to_date": 1767830400}, sink, excluded_fields=["user_email", "user_name"]
    )
    assert sink.getvalue() == CSV_BODY
    assert (result.bytes_written, result.lines) == (len(CSV_BODY), 3)
    assert result.sha256 == hashlib.sha256(CSV_BODY).hexdigest()
    form = loopback.requests[0].form
    assert (form["id"], form["params"]) == ("6000", "from_date=1767225600;to_date=1767830400")
    assert form["excludedFields"] == "user_email,user_name"
    assert form["format"] == "1" and form["ks"].startswith("djJ8")


def test_csv_keeps_the_bom_when_asked(loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]) -> None:
    loopback.handler = lambda _r, w: send(w, 200, BOM + CSV_BODY, "text/csv")
    sink = io.BytesIO()
    loopback_client().reports.csv(6001, {"from_date": 1}, sink, strip_bom=False)
    assert sink.getvalue() == BOM + CSV_BODY


def test_csv_reaches_the_sink_before_the_body_has_finished_arriving(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    first_write = threading.Event()
    streamed: list[bool] = []
    head = BOM + CSV_BODY + b"x" * (256 * 1024)
    tail = b"y" * (256 * 1024)

    def handler(_request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        writer.send_response(200)
        writer.send_header("Content-Type", "text/csv")
        writer.send_header("Content-Length", str(len(head) + len(tail)))
        writer.end_headers()
        writer.wfile.write(head)
        writer.wfile.flush()
        streamed.append(first_write.wait(timeout=5))  # a buffering client would never write before the end
        writer.wfile.write(tail)

    class Sink:
        def __init__(self) -> None:
            self.size = 0
            self.largest = 0

        def write(self, data: bytes) -> None:
            first_write.set()
            self.size += len(data)
            self.largest = max(self.largest, len(data))

    loopback.handler = handler
    sink = Sink()
    result = loopback_client().reports.csv(6000, {"from_date": 1}, sink)
    assert streamed == [True]
    assert sink.size == result.bytes_written == len(head) + len(tail) - len(BOM)
    assert sink.largest <= 64 * 1024


def test_a_json_error_instead_of_the_csv_is_raised_typed(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    loopback.handler = lambda _r, w: send(w, 200, json_error("REPORT_NOT_FOUND"), "application/json")
    sink = io.BytesIO()
    with pytest.raises(KalturaNotFoundError):
        loopback_client().reports.csv(9999, {"from_date": 1}, sink)
    assert sink.getvalue() == b""
    assert len(loopback.requests) == 1


def test_a_rate_limited_csv_request_is_retried_before_anything_is_written(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    def handler(request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        if len(loopback.requests) == 1:
            send(writer, 200, json_error("ACTION_BLOCKED"), "application/json")
        else:
            send(writer, 200, BOM + CSV_BODY, "text/csv")

    loopback.handler = handler
    sink = io.BytesIO()
    loopback_client().reports.csv(6000, {"from_date": 1}, sink)
    assert sink.getvalue() == CSV_BODY
    assert len(loopback.requests) == 2


def test_a_csv_over_the_size_cap_is_refused(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    loopback.handler = lambda _r, w: send(w, 200, BOM + CSV_BODY * 100, "text/csv")
    with pytest.raises(KalturaDownloadTooLargeError):
        loopback_client(max_download_bytes=1000, stream_chunk_bytes=256).reports.csv(6000, {"a": 1}, io.BytesIO())


def test_a_body_cut_off_mid_stream_is_reported_with_what_was_written(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    def handler(_request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        writer.send_response(200)
        writer.send_header("Content-Type", "text/csv")
        writer.send_header("Content-Length", str(200_000))
        writer.end_headers()
        writer.wfile.write(BOM + b"z" * 100_000)
        writer.close_connection = True

    loopback.handler = handler
    with pytest.raises(KalturaStreamInterruptedError) as caught:
        loopback_client(stream_chunk_bytes=64 * 1024).reports.csv(6000, {"a": 1}, io.BytesIO())
    assert caught.value.bytes_written == 64 * 1024 - len(BOM)
    assert caught.value.disposition is Disposition.RETRYABLE
    assert len(loopback.requests) == 1


def test_a_server_error_is_retried_then_raised(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    loopback.handler = lambda _r, w: send(w, 502, b"bad gateway", "text/plain")
    with pytest.raises(KalturaTransportError) as caught:
        loopback_client(max_attempts=2).reports.csv(6000, {"a": 1}, io.BytesIO())
    assert caught.value.status == 502
    assert len(loopback.requests) == 2


@pytest.mark.parametrize("params", [{"a": "1;b=2"}, {"a=b": "1"}, {"a": "x=y"}])
def test_string_params_that_cannot_be_encoded_are_refused(
    loopback_client: Callable[..., KalturaClient], params: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        loopback_client().reports.csv(6000, params, io.BytesIO())


def test_export_csv_fetches_the_url_kaltura_returns(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    serve_path = "/api_v3/index.php/service/report/action/serve/ks/djJ8RE9XTkxPQURfS1M=/id/abc123/report.csv"

    def handler(request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        if request.path == "/api_v3/service/report/action/getUrlForReportAsCsv":
            send(writer, 200, json.dumps(loopback.url + serve_path).encode(), "application/json")
        else:
            assert (request.method, request.path) == ("GET", serve_path)
            send(writer, 200, BOM + CSV_BODY, "text/csv")

    loopback.handler = handler
    sink = io.BytesIO()
    result = loopback_client().reports.export_csv(
        38, WEEK, sink, title="Weekly", table_headers=["Entry", "Plays"], total_headers=["Plays"]
    )
    assert sink.getvalue() == CSV_BODY and result.lines == 3
    form = loopback.requests[0].form
    assert form["reportTitle"] == "Weekly"
    assert form["headers"] == "Plays;Entry,Plays"
    assert (form["pager[pageSize]"], form["pager[pageIndex]"]) == ("60000", "1")
    assert form["reportInputFilter[objectType]"] == "KalturaEndUserReportInputFilter"


def test_export_csv_without_a_url_is_worth_retrying_later(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    loopback.handler = lambda _r, w: send(w, 200, b"null", "application/json")
    with pytest.raises(KalturaProtocolError) as caught:
        loopback_client().reports.export_csv(38, WEEK, io.BytesIO(), title="t", table_headers=["a"])
    assert caught.value.disposition is Disposition.RETRY_LATER
