"""The ``report`` service: getTable, getTotal, getGraphs, getCsvFromStringParams, getUrlForReportAsCsv
(docs/kaltura.md#reports).

``table()`` pages concurrently and transparently splits the date range when a query would pass the 12,000-row
window (``pageIndex x pageSize <= 12,000``, docs/kaltura.md#report-gettable): a range is cut at once into as many equal
parts as its row count needs (one round trip, not one per halving), parts are queried concurrently and rows are yielded
in date order.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kauto.kaltura.errors import Disposition, KalturaProtocolError, KalturaResultLimitError
from kauto.kaltura.transport import ByteSink, StreamResult
from kauto.kaltura.types import as_int

if TYPE_CHECKING:
    from kauto.kaltura.client import KalturaClient

# Sent as responseOptions.delimiter; values containing it arrive with it replaced by a space
# (docs/kaltura.md#report-gettable).
DELIMITER = "|"
ROW_END = ";"
MAX_TABLE_ROWS = 12_000  # kKavaReportsMgr::MAX_RESULT_SIZE (docs/kaltura.md#report-gettable)
MAX_CSV_ROWS = 60_000  # MAX_CSV_RESULT_SIZE for getUrlForReportAsCsv (docs/kaltura.md#report-csv-url)
_SPLIT_FILL = 0.75  # aim each part at 75% of the window: room for an uneven spread over time
_AHEAD_FACTOR = 8  # pages fetched ahead of the consumer, per unit of concurrency (bounds memory)


class ReportInterval(enum.Enum):
    """``reportInputFilter.interval``."""

    TEN_SECONDS = "tenSeconds"
    HOURS = "hours"
    DAYS = "days"
    MONTHS = "months"
    YEARS = "years"


_INTERVAL_SECONDS = {ReportInterval.TEN_SECONDS: 10, ReportInterval.HOURS: 3600, ReportInterval.DAYS: 86400}


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """A ``KalturaEndUserReportInputFilter`` (or ``KalturaReportInputFilter`` with ``end_user=False``).

    The window is ``[from_date, to_date)`` in unix seconds: Kaltura hands the two to Druid as an interval, and
    Druid intervals are half-open (srv ``kKavaReportsMgr::getFilterIntervals``). ``time_zone_offset`` is in
    minutes, as JavaScript's ``getTimezoneOffset`` (240 = UTC-4).
    """

    from_date: int
    to_date: int
    time_zone_offset: int = 0
    interval: ReportInterval | None = None
    entry_ids: tuple[str, ...] = ()
    category_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    virtual_event_ids: tuple[str, ...] = ()
    end_user: bool = True

    def __post_init__(self) -> None:
        if self.to_date <= self.from_date:
            raise ValueError("ReportFilter: to_date must be after from_date")
        if self.user_ids and not self.end_user:
            raise ValueError("ReportFilter: user_ids needs the end-user filter (end_user=True)")
        for values in (self.entry_ids, self.category_ids, self.user_ids, self.virtual_event_ids):
            if any(DELIMITER in v for v in values):
                raise ValueError(f"ReportFilter: ids must not contain {DELIMITER!r}")

    def with_window(self, from_date: int, to_date: int) -> ReportFilter:
        """The same filter over another time window."""
        return dataclasses.replace(self, from_date=from_date, to_date=to_date)

    def to_params(self) -> dict[str, Any]:
        """The ``reportInputFilter`` object; multi-value fields are joined by the response delimiter
        (docs/kaltura.md#report-gettable)."""

        def joined(values: tuple[str, ...]) -> str | None:
            return DELIMITER.join(values) if values else None

        return {
            "objectType": "KalturaEndUserReportInputFilter" if self.end_user else "KalturaReportInputFilter",
            "fromDate": self.from_date,
            "toDate": self.to_date,
            "timeZoneOffset": self.time_zone_offset,
            "interval": self.interval.value if self.interval else None,
            "entryIdIn": joined(self.entry_ids),
            "categoriesIdsIn": joined(self.category_ids),
            "userIds": joined(self.user_ids),
            "virtualEventIdIn": joined(self.virtual_event_ids),
        }


@dataclass(frozen=True, slots=True)
class ReportGraph:
    """One ``KalturaReportGraph``: a metric id and its ``(x, y)`` points."""

    id: str
    points: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Page:
    header: tuple[str, ...]
    rows: list[list[str]]
    total_count: int


def _split_rows(data: Any, columns: int, what: str) -> list[list[str]]:
    """Rows of ``data``: each ends with ``;`` and has columns joined by the delimiter
    (docs/kaltura.md#report-gettable)."""
    if not data:
        return []
    text = str(data)
    if text.endswith(ROW_END):
        text = text[: -len(ROW_END)]
    rows = [line.split(DELIMITER) for line in text.split(ROW_END)]
    if set(map(len, rows)) != {columns}:
        raise KalturaProtocolError(f"{what}: a row does not have the {columns} columns of the header")
    return rows


def _response_options() -> dict[str, str]:
    return {"objectType": "KalturaReportResponseOptions", "delimiter": DELIMITER}


def _object_ids(object_ids: Sequence[str]) -> str | None:
    return DELIMITER.join(object_ids) if object_ids else None


def _split_points(report_filter: ReportFilter, parts: int) -> list[int]:
    """Boundaries cutting the window into ``parts`` pieces, aligned to the interval when possible.

    Alignment keeps one day (or hour) inside one piece, so an interval=days report does not get two partial rows for
    the day a cut falls in. ``time_zone_offset`` moves local midnight: local = UTC - offset.
    """
    start, end = report_filter.from_date, report_filter.to_date
    parts = min(parts, end - start)
    raw = [start + (end - start) * i // parts for i in range(parts + 1)]
    step = _INTERVAL_SECONDS.get(report_filter.interval) if report_filter.interval else None
    if step and end - start >= 2 * step:
        shift = report_filter.time_zone_offset * 60
        aligned = sorted({start, end, *(round((p - shift) / step) * step + shift for p in raw[1:-1])})
        aligned = [p for p in aligned if start <= p <= end]
        if len(aligned) > 2:
            return aligned
    return raw


@dataclass(slots=True)
class _Node:
    """A step of the ordered plan: a range still to probe (``page_index == 0``) or one page of a settled range."""

    window: ReportFilter
    page_index: int
    future: Future[_Page] | None = None
    parent_total: int | None = None  # for probes of split windows: the row count of the window they came from


class _TablePager:
    """Fetches the pages of one getTable query with bounded concurrency and yields rows in order.

    The plan is a list of nodes in output order: probes (page 1 of a window whose row count is not known yet), then
    pages. Work is submitted in that order to a pool of ``concurrency`` threads, a bounded number of pages ahead of
    the consumer (bounded memory). Whenever a probe completes it is expanded at once into its window's pages or its
    sub-ranges, so earlier work always goes first and the pool never idles while the consumer waits on the head.
    """

    def __init__(
        self,
        reports: ReportsAPI,
        report_type: int,
        base_params: Mapping[str, Any],
        first: _Page,
        root: ReportFilter,
        *,
        page_size: int,
        concurrency: int,
        split: bool,
    ) -> None:
        self._reports = reports
        self._report_type = report_type
        self._base_params = base_params
        self._page_size = page_size
        self._concurrency = concurrency
        self._split = split
        self._max_ahead = _AHEAD_FACTOR * concurrency
        # Splitting a sane report needs about total / 9,000 windows; far more means it is not partitioned by time.
        self._windows_left = 8 * math.ceil(first.total_count / MAX_TABLE_ROWS) + 64
        self.header = first.header
        done: Future[_Page] = Future()
        done.set_result(first)
        self._plan: list[_Node] = [_Node(root, 0, done)]

    def _fetch(self, window: ReportFilter, page_index: int) -> _Page:
        page = self._reports._fetch_page(self._report_type, window, self._base_params, page_index, self._page_size)
        if page.header != self.header and page.rows:
            raise KalturaProtocolError("report.getTable: the header changed between pages")
        return page

    def _submit(self, pool: ThreadPoolExecutor) -> None:
        """Submit unsent nodes in plan order: at most ``2 x concurrency`` requests queued or running (so workers
        never wait for the consumer to hand out work), and at most ``_AHEAD_FACTOR x concurrency`` pages fetched
        ahead of a slow consumer. The head always goes.
        """
        in_flight = sum(1 for node in self._plan if node.future is not None and not node.future.done())
        started = sum(1 for node in self._plan if node.future is not None)
        for position, node in enumerate(self._plan):
            if node.future is not None:
                continue
            if position > 0 and (in_flight >= 2 * self._concurrency or started >= self._max_ahead):
                return
            node.future = pool.submit(self._fetch, node.window, max(node.page_index, 1))
            in_flight += 1
            started += 1

    def _expand_settled_probes(self) -> None:
        """Replace every finished probe (and the pages fetched speculatively behind it) with the window's pages or
        its sub-ranges, raising the probe's error if it failed.
        """
        position = 0
        while position < len(self._plan):
            probe = self._plan[position]
            if probe.page_index == 0 and probe.future is not None and probe.future.done():
                end = position + 1
                while end < len(self._plan) and self._plan[end].window is probe.window:
                    end += 1
                replacement = self._expand(probe, probe.future.result(), self._plan[position + 1 : end])
                self._plan[position:end] = replacement
                position += len(replacement)
            else:
                position += 1

    def _expand(self, probe: _Node, page: _Page, speculative: list[_Node]) -> list[_Node]:
        size = self._page_size
        window_pages = MAX_TABLE_ROWS // size
        if len(page.rows) < size or page.total_count <= window_pages * size:
            pages = 1 if len(page.rows) < size else max(1, math.ceil(page.total_count / size))
            known = {node.page_index: node for node in speculative}
            for node in speculative:
                if node.page_index > pages and node.future is not None:
                    node.future.cancel()
            rest = [known.get(index) or _Node(probe.window, index) for index in range(2, pages + 1)]
            return [_Node(probe.window, 1, probe.future), *rest]
        for node in speculative:
            if node.future is not None:
                node.future.cancel()
        pieces = self._pieces(probe, page.total_count)
        # Fetch each part's pages along with its probe, guessing rows spread evenly: waiting for every part's
        # count first would add a round trip. A wrong guess costs a short or cancelled request, never a row.
        guess = min(window_pages, math.ceil(page.total_count / len(pieces) / size))
        total = page.total_count
        return [
            node
            for piece in pieces
            for node in (_Node(piece, 0, parent_total=total), *(_Node(piece, i) for i in range(2, guess + 1)))
        ]

    def _pieces(self, probe: _Node, total: int) -> list[ReportFilter]:
        window = probe.window
        if not self._split or window.to_date - window.from_date < 2:
            raise KalturaResultLimitError(
                "RESULT_LIMIT_EXCEEDED",
                f"report.getTable: {total} rows in a window that cannot be split further "
                f"(Kaltura serves at most {MAX_TABLE_ROWS} rows per query)",
            )
        # As few parts as fit at 75% fill: every part ends in a short page, so each extra part costs a request.
        points = _split_points(window, max(2, math.ceil(total / (MAX_TABLE_ROWS * _SPLIT_FILL))))
        self._windows_left -= len(points) - 1
        if self._windows_left < 0 or (probe.parent_total is not None and total >= probe.parent_total):
            # A part as large as the whole (or endless splitting): the rows are not spread over time.
            raise KalturaResultLimitError(
                "RESULT_LIMIT_EXCEEDED",
                f"report.getTable: more than {MAX_TABLE_ROWS} rows and splitting the dates does not reduce them",
            )
        return [window.with_window(a, b) for a, b in itertools.pairwise(points)]

    def _after_page(self, consumed: _Node, page: _Page) -> None:
        """Stop a range at its first short page, or add one more page when its last planned page was full."""
        rest = [n for n in self._plan if n.window is consumed.window]
        if len(page.rows) < self._page_size:
            for stale in rest:
                if stale.future is not None:
                    stale.future.cancel()
            self._plan = [n for n in self._plan if n.window is not consumed.window]
        elif not rest:
            # totalCount can be approximate (docs/kaltura.md#report-gettable): a full last page means there may be more
            # rows.
            next_index = consumed.page_index + 1
            if next_index * self._page_size > MAX_TABLE_ROWS:
                raise KalturaResultLimitError(
                    "RESULT_LIMIT_EXCEEDED",
                    f"report.getTable: more than {MAX_TABLE_ROWS} rows in one window although totalCount said fewer",
                )
            self._plan.insert(0, _Node(consumed.window, next_index))

    def rows(self) -> Iterator[dict[str, str]]:
        """Rows as dicts keyed by the header, in order; pending requests are cancelled if iteration stops early."""
        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="kaltura-report")
        try:
            while self._plan:
                self._expand_settled_probes()
                self._submit(pool)
                head = self._plan[0]  # always submitted by _submit
                if head.future is None or not head.future.done():
                    running = [n.future for n in self._plan if n.future is not None and not n.future.done()]
                    wait(running, return_when=FIRST_COMPLETED)
                elif head.page_index > 0:  # a settled probe is expanded on the next turn instead
                    page = head.future.result()
                    self._plan.pop(0)
                    # Rows were checked against the header's width when the page was parsed; map keeps this C-fast.
                    yield from map(dict, map(zip, itertools.repeat(self.header), page.rows))
                    self._after_page(head, page)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class ReportTable:
    """A getTable result being streamed: ``header`` and ``total_count`` (of the whole window, as Kaltura reported
    it for the first query; approximate for topN reports) are known up front, rows arrive by iterating (once).
    """

    def __init__(self, pager: _TablePager, total_count: int) -> None:
        self._pager: _TablePager | None = pager
        self.header = pager.header
        self.total_count = total_count

    def __iter__(self) -> Iterator[dict[str, str]]:
        if self._pager is None:
            raise RuntimeError("a ReportTable can be iterated only once; call reports.table() again")
        pager, self._pager = self._pager, None
        return pager.rows()

    def __repr__(self) -> str:
        return f"ReportTable(columns={len(self.header)}, total_count={self.total_count})"


class ReportsAPI:
    """Typed access to the ``report`` service."""

    def __init__(self, client: KalturaClient) -> None:
        self._client = client

    def _fetch_page(
        self,
        report_type: int,
        report_filter: ReportFilter,
        base_params: Mapping[str, Any],
        page_index: int,
        page_size: int,
    ) -> _Page:
        """One ``report.getTable`` page (used by :meth:`table`)."""
        params = {
            **base_params,
            "reportType": report_type,
            "reportInputFilter": report_filter.to_params(),
            "pager": {"objectType": "KalturaFilterPager", "pageSize": page_size, "pageIndex": page_index},
            "responseOptions": _response_options(),
        }
        body = self._client.call("report", "getTable", params)
        if not isinstance(body, Mapping):
            raise KalturaProtocolError("report.getTable did not return a KalturaReportTable")
        header = tuple(str(body.get("header") or "").split(DELIMITER)) if body.get("header") else ()
        return _Page(
            header=header,
            rows=_split_rows(body.get("data"), len(header), "report.getTable"),
            total_count=as_int(body.get("totalCount")) or 0,
        )

    def table(
        self,
        report_type: int,
        report_filter: ReportFilter,
        *,
        order: str | None = None,
        object_ids: Sequence[str] = (),
        page_size: int | None = None,
        concurrency: int | None = None,
        split_on_limit: bool = True,
    ) -> ReportTable:
        """``report.getTable`` over the whole window: the first page is fetched now, the rest while iterating.

        Pages are fetched ``concurrency`` at a time (default ``settings.report_concurrency``) and paged until a short
        page. When the window holds more than 12,000 rows it is split by time and the parts are merged in order;
        this is exact for reports whose rows each belong to one moment or interval (per-day, per-session, per-event
        rows). For reports aggregated over the whole window (e.g. top content) a row per part is returned; pass
        ``split_on_limit=False`` to get :class:`KalturaResultLimitError` instead.
        """
        settings = self._client.settings
        size = page_size or settings.report_page_size
        if not 0 < size <= MAX_TABLE_ROWS:
            raise ValueError(f"page_size must be between 1 and {MAX_TABLE_ROWS}")
        base_params = {"order": order, "objectIds": _object_ids(object_ids)}
        first = self._fetch_page(report_type, report_filter, base_params, 1, size)
        pager = _TablePager(
            self,
            report_type,
            base_params,
            first,
            report_filter,
            page_size=size,
            concurrency=concurrency or settings.report_concurrency,
            split=split_on_limit,
        )
        return ReportTable(pager, first.total_count)

    def total(self, report_type: int, report_filter: ReportFilter, *, object_ids: Sequence[str] = ()) -> dict[str, str]:
        """``report.getTotal``: the single totals row keyed by its header (empty when there is no data)."""
        params = {
            "reportType": report_type,
            "reportInputFilter": report_filter.to_params(),
            "objectIds": _object_ids(object_ids),
            "responseOptions": _response_options(),
        }
        body = self._client.call("report", "getTotal", params)
        if not isinstance(body, Mapping):
            raise KalturaProtocolError("report.getTotal did not return a KalturaReportTotal")
        header = str(body.get("header") or "").split(DELIMITER) if body.get("header") else []
        rows = _split_rows(body.get("data"), len(header), "report.getTotal")
        return dict(zip(header, rows[0], strict=True)) if rows else {}

    def graphs(
        self,
        report_type: int,
        report_filter: ReportFilter,
        *,
        dimension: str | None = None,
        object_ids: Sequence[str] = (),
    ) -> list[ReportGraph]:
        """``report.getGraphs``: one :class:`ReportGraph` per metric, points parsed from ``x|y;`` pairs
        (docs/kaltura.md#report-gettable)."""
        params = {
            "reportType": report_type,
            "reportInputFilter": report_filter.to_params(),
            "dimension": dimension,
            "objectIds": _object_ids(object_ids),
            "responseOptions": _response_options(),
        }
        body = self._client.call("report", "getGraphs", params)
        if not isinstance(body, list):
            raise KalturaProtocolError("report.getGraphs did not return a list")
        graphs = []
        for item in body:
            if not isinstance(item, Mapping):
                raise KalturaProtocolError("report.getGraphs returned a malformed graph")
            points = _split_rows(item.get("data"), 2, "report.getGraphs")
            graphs.append(ReportGraph(id=str(item.get("id") or ""), points=tuple((x, y) for x, y in points)))
        return graphs

    def csv(
        self,
        report_id: int,
        params: Mapping[str, str | int],
        sink: ByteSink,
        *,
        excluded_fields: Sequence[str] = (),
        strip_bom: bool = True,
    ) -> StreamResult:
        """``report.getCsvFromStringParams`` streamed into ``sink`` (docs/kaltura.md#report-csv-strings).

        The answer is a raw CSV (BOM, unquoted, the whole result) even with format=1; an error comes back as JSON
        and is raised typed. ``params`` are sent as ``k1=v1;k2=v2`` (no escaping exists, so ``;``/``=`` are refused).
        The BOM is dropped unless ``strip_bom=False``.
        """
        pairs = []
        for key, value in params.items():
            text = str(value)
            if any(c in f"{key}{text}" for c in ";=") or "," in key:
                raise ValueError(f"report parameter {key!r}: ';' and '=' cannot be sent to Kaltura")
            pairs.append(f"{key}={text}")
        call_params = {
            "id": report_id,
            "params": ";".join(pairs),
            "excludedFields": ",".join(excluded_fields) or None,
        }
        return self._client.stream_action("report", "getCsvFromStringParams", call_params, sink, strip_bom=strip_bom)

    def export_csv(
        self,
        report_type: int,
        report_filter: ReportFilter,
        sink: ByteSink,
        *,
        title: str,
        table_headers: Sequence[str],
        total_headers: Sequence[str] = (),
        text: str = "",
        order: str | None = None,
        object_ids: Sequence[str] = (),
        dimension: str | None = None,
        max_rows: int = MAX_CSV_ROWS,
        strip_bom: bool = True,
    ) -> StreamResult:
        """``report.getUrlForReportAsCsv`` then stream the file it names into ``sink`` (docs/kaltura.md#report-csv-url).

        The URL embeds a download KS, so it is used at once and never returned or logged. The download is
        checked against the download policy (https, allowed hosts, redirects) and the size cap.
        """
        if not 0 < max_rows <= MAX_CSV_ROWS:
            raise ValueError(f"max_rows must be between 1 and {MAX_CSV_ROWS}")
        params = {
            "reportTitle": title,
            "reportText": text,
            "headers": f"{','.join(total_headers)};{','.join(table_headers)}",
            "reportType": report_type,
            "reportInputFilter": report_filter.to_params(),
            "dimension": dimension,
            "pager": {"objectType": "KalturaFilterPager", "pageSize": max_rows, "pageIndex": 1},
            "order": order,
            "objectIds": _object_ids(object_ids),
            "responseOptions": _response_options(),
        }
        url = self._client.call("report", "getUrlForReportAsCsv", params)
        if not isinstance(url, str) or not url:
            # The action swallows server-side failures and returns null (docs/kaltura.md#report-csv-url); a later
            # attempt may work.
            raise KalturaProtocolError(
                "report.getUrlForReportAsCsv returned no URL", disposition=Disposition.RETRY_LATER
            )
        return self._client.download(url, sink, strip_bom=strip_bom)
