"""Analytics reports (docs/kaltura.md#report-gettable, #report-csv-url): ``report.getTable`` / ``getTotal`` /
``getGraphs`` / ``getUrlForReportAsCsv`` / ``serve``: the API actions over :mod:`.report_data` (windows, row
counts, paging limits, CSV exports and their download KS).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import errors
from .api import Auth, CallContext, RawResponse, Registry
from .errors import ApiError
from .ks import SESSION_TYPE_USER
from .params import Params
from .serialize import kaltura_object, php_float
from .sessions import issue_ks

if TYPE_CHECKING:
    pass
from .report_data import (
    REPORT_SPECS,
    ReportQuery,
    ReportSpec,
    Totals,
    build_query,
    clean_value,
    total_values,
)

DEFAULT_PAGE_SIZE = 10
MAX_RESULT_SIZE = 12_000  # kKavaReportsMgr::MAX_RESULT_SIZE (getTable)
MAX_CSV_RESULT_SIZE = 60_000  # kKavaReportsMgr::MAX_CSV_RESULT_SIZE (getUrlForReportAsCsv)
DOWNLOAD_KS_SECONDS = 86_400
BOM = b"\xef\xbb\xbf"
_CHUNK = 64 * 1024


# ---- request handling --------------------------------------------------------------------------------------------


def _spec(params: Params) -> ReportSpec:
    report_type = params.required_int("reportType")
    spec = REPORT_SPECS.get(report_type)
    if spec is None:
        raise ApiError(errors.INVALID_PARAMETER_VALUE, "reportType", report_type)
    return spec


def _delimiter(params: Params) -> str:
    return params.obj("responseOptions").get_str("delimiter") or ","


def _query(ctx: CallContext, params: Params) -> ReportQuery:
    return build_query(
        ctx.core,
        _spec(params),
        ctx.require_partner(),
        params.obj("reportInputFilter"),
        _delimiter(params),
        params.get_str("objectIds"),
    )


def _get_table(ctx: CallContext, params: Params) -> dict[str, Any]:
    query = _query(ctx, params)
    pager = params.obj("pager")
    size = pager.get_int("pageSize") or DEFAULT_PAGE_SIZE
    size = max(1, size)
    index = max(1, pager.get_int("pageIndex") or 1)
    if index * size > MAX_RESULT_SIZE:
        if index != 1:
            # kKavaReportsMgr throws this; the API reports it as the (misspelt) generic error
            # (docs/kaltura.md#report-gettable).
            raise ApiError(errors.INTERNAL_SERVERL_ERROR, message=f"result limit is {MAX_RESULT_SIZE} rows")
        size = MAX_RESULT_SIZE
    start = (index - 1) * size
    rows = query.rows(query.positions(params.get_str("order"), start, start + size))
    delimiter = query.delimiter
    return kaltura_object(
        "KalturaReportTable",
        {
            "header": delimiter.join(query.spec.table_columns),
            "data": "".join(delimiter.join(row) + ";" for row in rows),
            "totalCount": query.row_count,
        },
    )


def _get_total(ctx: CallContext, params: Params) -> dict[str, Any]:
    query = _query(ctx, params)
    values = total_values(ctx.core.report_totals.get(query))
    delimiter = query.delimiter
    return kaltura_object(
        "KalturaReportTotal",
        {
            "header": delimiter.join(query.spec.total_metrics),
            "data": delimiter.join(values[name] for name in query.spec.total_metrics),
        },
    )


def _format_metric(metric: str, value: int) -> str:
    return php_float(value / 1000) if metric in ("sum_time_viewed", "sum_view_period") else str(value)


def _get_graphs(ctx: CallContext, params: Params) -> list[dict[str, Any]]:
    query = _query(ctx, params)
    totals = ctx.core.report_totals.get(query)
    interval = params.obj("reportInputFilter").get_str("interval") or "days"
    delimiter = query.delimiter
    graphs = []
    for metric in query.spec.graph_metrics:
        buckets = query.graph_points(metric, totals, interval)
        data = "".join(f"{label}{delimiter}{_format_metric(metric, value)};" for label, value in buckets.items())
        graphs.append(kaltura_object("KalturaReportGraph", {"id": metric, "data": data}))
    return graphs


@dataclass(frozen=True, slots=True)
class CsvExport:
    """A CSV 'file' registered by getUrlForReportAsCsv; its rows are generated again when served."""

    file_id: str
    partner_id: int
    query: ReportQuery
    title: str
    text: str
    headers: str
    order: str | None
    start: int
    stop: int


class ExportRegistry:
    """Exports by file id."""

    def __init__(self) -> None:
        self._items: dict[str, CsvExport] = {}
        self._lock = threading.Lock()

    def add(self, export: CsvExport) -> None:
        """Register an export."""
        with self._lock:
            self._items[export.file_id] = export

    def get(self, file_id: str) -> CsvExport | None:
        """The export, or None."""
        with self._lock:
            return self._items.get(file_id)


def _get_url_for_report_as_csv(ctx: CallContext, params: Params) -> str:
    query = _query(ctx, params)
    pager = params.obj("pager")
    if pager.raw:
        size = max(1, pager.get_int("pageSize") or DEFAULT_PAGE_SIZE)
        index = max(1, pager.get_int("pageIndex") or 1)
        if index * size > MAX_CSV_RESULT_SIZE:
            raise ApiError(errors.SEARCH_TOO_GENERAL)
        start, stop = (index - 1) * size, index * size
    else:
        start, stop = 0, MAX_CSV_RESULT_SIZE
    partner_id = ctx.require_partner()
    file_id = f"{partner_id}_Report_export_{ctx.core.state.random_bytes(8).hex()}.csv"
    ctx.core.exports.add(
        CsvExport(
            file_id=file_id,
            partner_id=partner_id,
            query=query,
            title=params.get_str("reportTitle", "") or "",
            text=params.get_str("reportText", "") or "",
            headers=params.get_str("headers", "") or "",
            order=params.get_str("order"),
            start=start,
            stop=stop,
        )
    )
    partner = ctx.core.state.partners[partner_id]
    # docs/kaltura.md#report-csv-url: the URL embeds a user KS limited to this file, valid for at most a day.
    download_ks = issue_ks(
        ctx.core,
        partner,
        session_type=SESSION_TYPE_USER,
        user_id=ctx.ks.user_id if ctx.ks else "",
        expiry_seconds=DOWNLOAD_KS_SECONDS,
        privileges=f"download:{file_id}",
    )
    return f"{ctx.core.cdn_url}/api_v3/index.php/service/report/action/serve/ks/{download_ks}/id/{file_id}/report.csv"


def _csv_line(cells: list[str]) -> bytes:
    return (",".join(clean_value(cell, ",") for cell in cells) + "\n").encode("utf-8")


def stream_export(export: CsvExport, totals: Totals) -> Iterator[bytes]:
    """The export file (BOM, title, totals, table), generated row by row and yielded in ~64 KiB chunks."""
    query = export.query
    total_headers, _, table_headers = export.headers.partition(";")
    total_row = total_values(totals)
    buffer = bytearray(BOM)
    buffer += _csv_line([export.title])
    buffer += _csv_line([export.text])
    buffer += b"\n"
    buffer += _csv_line(total_headers.split(",") if total_headers else list(query.spec.total_metrics))
    buffer += _csv_line([total_row[name] for name in query.spec.total_metrics])
    buffer += b"\n"
    buffer += _csv_line(table_headers.split(",") if table_headers else list(query.spec.table_columns))
    for cells in query.rows(query.positions(export.order, export.start, export.stop)):
        buffer += _csv_line(cells)
        if len(buffer) >= _CHUNK:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _serve(ctx: CallContext, params: Params) -> RawResponse:
    file_id = params.required_str("id")
    export = ctx.core.exports.get(file_id)
    if export is None or export.partner_id != ctx.partner_id:
        raise ApiError(errors.FILE_DOESNT_EXIST)
    if ctx.ks is not None and not ctx.ks.is_admin and file_id not in ctx.ks.privilege_values("download"):
        raise ApiError(errors.SERVICE_FORBIDDEN, "report->serve")
    totals = ctx.core.report_totals.get(export.query)
    return RawResponse(200, {"Content-Type": "text/csv"}, stream_export(export, totals))


def register(registry: Registry) -> None:
    """Add the report service actions served here (room CSV reports live in ``room_reports``)."""
    registry.add("report", "getTable", Auth.ADMIN, _get_table)
    registry.add("report", "getTotal", Auth.ADMIN, _get_total)
    registry.add("report", "getGraphs", Auth.ADMIN, _get_graphs)
    registry.add("report", "getUrlForReportAsCsv", Auth.ADMIN, _get_url_for_report_as_csv)
    registry.add("report", "serve", Auth.DOWNLOAD, _serve)
