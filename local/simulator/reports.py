"""Analytics reports (PROTOCOL §7.1-7.2): ``report.getTable`` / ``getTotal`` / ``getGraphs`` /
``getUrlForReportAsCsv`` / ``serve`` over deterministic synthetic data.

Row ``i`` of a report is a pure function of (seed, partner, report type, date range, filter, ``i``), so a report of
millions of rows is never held in memory: pages are computed on demand and CSV exports stream. Rows are generated
already sorted by ``count_plays`` descending (plays fall off like ``K / (i + 1)``), which is the default order and
makes ``+count_plays`` a simple reversal. Totals are exact sums over all rows (cached) and graphs split those totals
over days with integer arithmetic, so getTable, getTotal and getGraphs always agree.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .api import Auth, CallContext, RawResponse, Registry
from .errors import ApiError
from .ks import SESSION_TYPE_USER
from .params import Params
from .serialize import kaltura_object, php_float
from .sessions import issue_ks
from .state import ENTRY_TYPE_MEDIA_CLIP
from .synth import entry_title, mix64, object_id, person_name, seed_of

if TYPE_CHECKING:
    from .core import SimulatorCore

DEFAULT_PAGE_SIZE = 10
MAX_RESULT_SIZE = 12_000  # kKavaReportsMgr::MAX_RESULT_SIZE (getTable)
MAX_CSV_RESULT_SIZE = 60_000  # kKavaReportsMgr::MAX_CSV_RESULT_SIZE (getUrlForReportAsCsv)
DOWNLOAD_KS_SECONDS = 86_400
BOM = b"\xef\xbb\xbf"
_CHUNK = 64 * 1024
_MAX_DAYS = 3_700
_TOTALS_CACHE_SIZE = 64

_ADDITIVE = ("count_plays", "sum_time_viewed", "count_loads", "unique_known_users", "sum_view_period")
_QUARTILES = ("count_plays_25", "count_plays_50", "count_plays_75", "count_plays_100")
_ENGAGEMENT = (
    "count_plays",
    "sum_time_viewed",
    "avg_time_viewed",
    "count_loads",
    "load_play_ratio",
    "avg_view_drop_off",
    "unique_known_users",
    "avg_completion_rate",
)


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """Columns of one ``KalturaReportType``."""

    report_type: int
    name: str
    dimension: str
    dimension_columns: tuple[str, ...]
    metrics: tuple[str, ...]
    total_metrics: tuple[str, ...]
    graph_metrics: tuple[str, ...]

    @property
    def table_columns(self) -> tuple[str, ...]:
        """Header of getTable."""
        return self.dimension_columns + self.metrics


# TOP_CONTENT columns are those of the getTable sample; TOP_CONTENT_CREATOR totals follow the reports guide;
# the rest follow kKavaReports' naming (PROTOCOL §7.1 points there) and are a simulator choice.
REPORT_SPECS: dict[int, ReportSpec] = {
    spec.report_type: spec
    for spec in (
        ReportSpec(
            1,
            "TOP_CONTENT",
            "entry",
            ("object_id", "entry_name"),
            (
                "count_plays",
                "sum_time_viewed",
                "avg_time_viewed",
                "count_loads",
                "load_play_ratio",
                "avg_view_drop_off",
                "unique_known_users",
                "sum_view_period",
                "avg_view_period_time",
                "avg_completion_rate",
            ),
            (
                "count_plays",
                "sum_time_viewed",
                "avg_time_viewed",
                "count_loads",
                "load_play_ratio",
                "avg_view_drop_off",
                "unique_known_users",
                "sum_view_period",
                "avg_view_period_time",
                "avg_completion_rate",
            ),
            _ADDITIVE,
        ),
        ReportSpec(
            2,
            "CONTENT_DROPOFF",
            "entry",
            ("object_id", "entry_name"),
            ("count_plays", *_QUARTILES, "play_through_ratio"),
            ("count_plays", *_QUARTILES, "play_through_ratio"),
            ("count_plays", *_QUARTILES),
        ),
        ReportSpec(
            13,
            "USER_TOP_CONTENT",
            "user",
            ("name", "full_name"),
            (
                "count_plays",
                "sum_time_viewed",
                "avg_time_viewed",
                "count_loads",
                "load_play_ratio",
                "avg_view_drop_off",
                "avg_completion_rate",
            ),
            ("count_plays", "sum_time_viewed", "avg_time_viewed", "count_loads", "load_play_ratio"),
            ("count_plays", "sum_time_viewed", "count_loads"),
        ),
        ReportSpec(21, "PLATFORMS", "device", ("device",), _ENGAGEMENT, _ENGAGEMENT, _ADDITIVE[:4]),
        ReportSpec(
            36, "MAP_OVERLAY_COUNTRY", "country", ("country", "coordinates"), _ENGAGEMENT, _ENGAGEMENT, _ADDITIVE[:4]
        ),
        ReportSpec(
            38,
            "TOP_CONTENT_CREATOR",
            "entry_creator",
            ("object_id", "entry_name", "creator_name", "created_at", "status", "media_type", "duration_msecs"),
            ("count_plays", "unique_known_users", "sum_time_viewed", "avg_time_viewed", "avg_completion_rate"),
            ("count_plays", "unique_known_users", "sum_time_viewed", "avg_time_viewed"),
            ("count_plays", "unique_known_users", "sum_time_viewed"),
        ),
    )
}

_DEVICES = ("Computer", "Mobile", "Tablet", "Smart TV", "Game console", "Digital media receiver", "Unknown")
_COUNTRIES = (
    ("UNITED STATES", "37.09024/-95.712891"),
    ("UNITED KINGDOM", "55.378051/-3.435973"),
    ("GERMANY", "51.165691/10.451526"),
    ("ISRAEL", "31.046051/34.851612"),
    ("KOREA, REPUBLIC OF", "35.907757/127.766922"),
    ("FRANCE", "46.227638/2.213749"),
    ("CÔTE D'IVOIRE", "7.539989/-5.54708"),
    ("JAPAN", "36.204824/138.252924"),
    ("BRAZIL", "-14.235004/-51.92528"),
    ("INDIA", "20.593684/78.96288"),
    ("CANADA", "56.130366/-106.346771"),
    ("AUSTRALIA", "-25.274398/133.775136"),
)


@dataclass(slots=True)
class ReportSettings:
    """Size knobs: rows per day of the requested range, or a fixed total, per report type."""

    default_rows_per_day: int = 3
    rows_per_day: dict[int, int] = field(default_factory=dict)
    total_rows: dict[int, int] = field(default_factory=dict)

    def configure(self, report_type: int, *, rows_per_day: int | None = None, total_rows: int | None = None) -> None:
        """Set the size of ``report_type``; ``total_rows`` wins over ``rows_per_day``."""
        if rows_per_day is not None:
            self.rows_per_day[report_type] = rows_per_day
        if total_rows is not None:
            self.total_rows[report_type] = total_rows
        elif report_type in self.total_rows and rows_per_day is not None:
            del self.total_rows[report_type]

    def rows_for(self, report_type: int, days: int) -> int:
        """Number of rows for a range of ``days`` days."""
        if report_type in self.total_rows:
            return self.total_rows[report_type]
        return self.rows_per_day.get(report_type, self.default_rows_per_day) * days


@dataclass(frozen=True, slots=True)
class RowMetrics:
    """The integer facts of one row; sums of time are kept in thousandths so totals add up exactly."""

    plays: int
    time_milli: int
    loads: int
    unique_users: int
    view_period_milli: int
    drop_off_milli: int
    completion_milli: int
    quartiles: tuple[int, int, int, int]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over every row of a report query (drop-off and completion weighted by plays)."""

    plays: int
    time_milli: int
    loads: int
    unique_users: int
    view_period_milli: int
    drop_off_weighted: int
    completion_weighted: int
    quartiles: list[int]


def metric_values(
    plays: int,
    time_milli: int,
    loads: int,
    unique_users: int,
    view_period_milli: int,
    drop_off: float,
    completion: float,
    quartiles: tuple[int, ...] | list[int],
) -> dict[str, str]:
    """Every metric column formatted the way report strings carry numbers."""
    values = {
        "count_plays": str(plays),
        "sum_time_viewed": php_float(time_milli / 1000),
        "avg_time_viewed": php_float(_ratio(time_milli / 1000, plays)),
        "count_loads": str(loads),
        "load_play_ratio": php_float(_ratio(plays, loads)),
        "avg_view_drop_off": php_float(drop_off),
        "unique_known_users": str(unique_users),
        "sum_view_period": php_float(view_period_milli / 1000),
        "avg_view_period_time": php_float(_ratio(view_period_milli / 1000, plays)),
        "avg_completion_rate": php_float(completion),
        "play_through_ratio": php_float(_ratio(quartiles[3], plays)),
    }
    values.update({name: str(value) for name, value in zip(_QUARTILES, quartiles, strict=True)})
    return values


@dataclass(frozen=True, slots=True)
class DateRange:
    """The requested range as local calendar days (``timeZoneOffset`` minutes west of UTC, like JS)."""

    first_day: dt.date
    days: int

    def day(self, index: int) -> dt.date:
        """The ``index``-th day of the range."""
        return self.first_day + dt.timedelta(days=index)


def parse_date_range(report_filter: Params) -> DateRange:
    """``fromDate``/``toDate`` (unix seconds) or ``fromDay``/``toDay`` (YYYYMMDD) with ``timeZoneOffset``."""
    offset = report_filter.get_int("timeZoneOffset", 0) or 0
    from_date, to_date = report_filter.get_int("fromDate"), report_filter.get_int("toDate")
    from_day, to_day = report_filter.get_str("fromDay"), report_filter.get_str("toDay")
    if from_date is not None and to_date is not None:
        first = dt.datetime.fromtimestamp(from_date - offset * 60, dt.UTC).date()
        last = dt.datetime.fromtimestamp(to_date - offset * 60, dt.UTC).date()
    elif from_day and to_day:
        try:
            first = dt.datetime.strptime(from_day, "%Y%m%d").date()
            last = dt.datetime.strptime(to_day, "%Y%m%d").date()
        except ValueError as exc:
            raise ApiError(errors.INVALID_PARAMETER_VALUE, "reportInputFilter:fromDay", from_day) from exc
    else:
        missing = "fromDate" if from_date is None and not from_day else "toDate"
        raise ApiError(errors.MISSING_MANDATORY_PARAMETER, f"reportInputFilter:{missing}")
    days = (last - first).days + 1
    return DateRange(first, max(0, min(days, _MAX_DAYS)))


def clean_value(value: str, delimiter: str) -> str:
    """§7.1: a delimiter or ``;`` inside a value becomes a space; nothing is escaped."""
    return value.replace(delimiter, " ").replace(";", " ")


_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_LCG = 6364136223846793005


def row_numbers(
    seed: int, peak: int, index: int
) -> tuple[int, int, int, int, int, int, int, tuple[int, int, int, int]]:
    """The integer facts of row ``index`` as a tuple in :class:`RowMetrics` order; plays fall off as
    ``peak / (index + 1)``. Hot path of getTotal over millions of rows, hence plain arithmetic."""
    first = mix64(seed ^ (index * _GOLDEN & _MASK64))
    second = (first * _LCG + _GOLDEN) & _MASK64
    plays = peak // (index + 1) or 1
    time_milli = plays * (500 + first % 9500)
    quarter = plays * (600 + second % 400) // 1000
    if quarter:
        half = quarter * (600 + (second >> 10) % 400) // 1000
        three_quarters = half * (600 + (second >> 20) % 400) // 1000
        quartiles = (quarter, half, three_quarters, three_quarters * (600 + (second >> 30) % 400) // 1000)
    else:
        quartiles = (0, 0, 0, 0)
    return (
        plays,
        time_milli,
        plays + (first >> 16) % (plays + 1),
        plays * (20 + (first >> 32) % 81) // 100 or 1,
        time_milli * (900 + (first >> 40) % 100) // 1000,
        (first >> 48) % 1001,
        (second >> 40) % 1001,
        quartiles,
    )


class ReportQuery:
    """One (report type, partner, filter) combination: rows on demand, totals and graphs from the same rows."""

    def __init__(
        self,
        core: SimulatorCore,
        spec: ReportSpec,
        partner_id: int,
        report_filter: Params,
        delimiter: str,
        object_ids: str | None,
    ) -> None:
        self.spec = spec
        self.partner_id = partner_id
        self.delimiter = delimiter
        self.date_range = parse_date_range(report_filter)
        # Names and ids depend on the partner only, so the same entry keeps its id across weeks;
        # the numbers depend on the range and the filter.
        self.entity_seed = seed_of(core.seed, partner_id, "entities")
        # Everything that filters data changes the numbers; the type and the graph interval do not.
        fingerprint = sorted(
            (key, str(value)) for key, value in report_filter.raw.items() if key not in ("objectType", "interval")
        )
        self.metric_seed = seed_of(core.seed, partner_id, spec.report_type, fingerprint, object_ids)
        self.scale = 200 + self.metric_seed % 800
        with core.state.lock:
            media = sorted(
                (
                    e
                    for e in core.state.entries.values()
                    if e.partner_id == partner_id and e.entry_type == ENTRY_TYPE_MEDIA_CLIP
                ),
                key=lambda e: (e.created_at, e.id),
            )
            self._known_entries = {
                entry.id: (entry.name, entry.user_id, entry.created_at, entry.ms_duration) for entry in media
            }
        self._real_ids = [entry.id for entry in media]
        wanted = object_ids or report_filter.get_str("entryIdIn")
        self._ids_filter: list[str] | None = None
        if wanted and spec.dimension in ("entry", "entry_creator"):
            unique = list(dict.fromkeys(part.strip() for part in wanted.split(delimiter) if part.strip()))
            # Rank the requested ids pseudo-randomly so plays still fall off down the table.
            self._ids_filter = sorted(unique, key=lambda ident: (seed_of(self.metric_seed, ident) % 1000, ident))
        self.row_count = self._count(core)

    def _count(self, core: SimulatorCore) -> int:
        if self.date_range.days == 0:
            return 0
        if self._ids_filter is not None:
            return len(self._ids_filter)
        rows = core.reports.rows_for(self.spec.report_type, self.date_range.days)
        if self.spec.dimension == "device":
            return min(rows, len(_DEVICES))
        if self.spec.dimension == "country":
            return min(rows, len(_COUNTRIES))
        return max(0, rows)

    @property
    def total_key(self) -> tuple[Any, ...]:
        """Cache key of this query's totals."""
        return (self.metric_seed, self.row_count, self.date_range, tuple(self._ids_filter or ()))

    def metrics(self, index: int) -> RowMetrics:
        """The numbers of row ``index`` (non-increasing plays as ``index`` grows)."""
        return RowMetrics(*row_numbers(self.metric_seed, self.scale * self.date_range.days, index))

    def dimension_values(self, index: int) -> list[str]:
        """The dimension columns of row ``index``."""
        dimension = self.spec.dimension
        if dimension == "device":
            return [_DEVICES[index]]
        if dimension == "country":
            return list(_COUNTRIES[index])
        if dimension == "user":
            return [f"user{index + 1:06d}@example.com", person_name(self.entity_seed, index)]
        entry_id = self._entry_id(index)
        known = self._known_entries.get(entry_id)
        name, creator, created_at, ms_duration = known or (
            entry_title(self.entity_seed, index),
            f"creator{index % 97}@example.com",
            1735689600 + mix64(self.entity_seed ^ index) % 31_536_000,
            1000 * (30 + mix64(self.entity_seed + index) % 5400),
        )
        if dimension == "entry":
            return [entry_id, name]
        return [entry_id, name, creator, str(created_at), "2", "1", str(ms_duration)]

    def _entry_id(self, index: int) -> str:
        if self._ids_filter is not None:
            return self._ids_filter[index]
        if index < len(self._real_ids):
            return self._real_ids[index]
        return object_id(self.entity_seed, index)

    def metric_index(self, position: int) -> int:
        """Index into the metric sequence for table position ``position`` (identity unless ids were filtered)."""
        if self._ids_filter is not None:
            return seed_of(self.metric_seed, self._ids_filter[position]) % 1000
        return position

    def row(self, position: int) -> list[str]:
        """Table row ``position`` as cleaned strings."""
        row = self.metrics(self.metric_index(position))
        values = metric_values(
            row.plays,
            row.time_milli,
            row.loads,
            row.unique_users,
            row.view_period_milli,
            row.drop_off_milli / 1000,
            row.completion_milli / 1000,
            row.quartiles,
        )
        cells = self.dimension_values(position) + [values[name] for name in self.spec.metrics]
        return [clean_value(cell, self.delimiter) for cell in cells]

    def totals(self) -> Totals:
        """Exact sums over all rows (O(rows) once per query; cached by the caller)."""
        seed, peak = self.metric_seed, self.scale * self.date_range.days
        plays = time_milli = loads = unique_users = view_period = drop_off = completion = 0
        quartiles = [0, 0, 0, 0]
        for position in range(self.row_count):
            row = row_numbers(seed, peak, self.metric_index(position))
            plays += row[0]
            time_milli += row[1]
            loads += row[2]
            unique_users += row[3]
            view_period += row[4]
            drop_off += row[5] * row[0]
            completion += row[6] * row[0]
            if row[7][0]:
                for slot, value in enumerate(row[7]):
                    quartiles[slot] += value
        return Totals(plays, time_milli, loads, unique_users, view_period, drop_off, completion, quartiles)


class TotalsCache:
    """A small LRU of report totals so repeated getTotal/getGraphs on a huge report stay cheap."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[Any, ...], Totals] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query: ReportQuery) -> Totals:
        """Totals of ``query`` (computed on first use)."""
        key = query.total_key
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        totals = query.totals()
        with self._lock:
            self._items[key] = totals
            while len(self._items) > _TOTALS_CACHE_SIZE:
                self._items.popitem(last=False)
        return totals


def total_values(totals: Totals) -> dict[str, str]:
    """Metric strings of a totals row: sums, and averages weighted by plays."""
    return metric_values(
        totals.plays,
        totals.time_milli,
        totals.loads,
        totals.unique_users,
        totals.view_period_milli,
        _ratio(totals.drop_off_weighted, totals.plays * 1000),
        _ratio(totals.completion_weighted, totals.plays * 1000),
        totals.quartiles,
    )


def _additive_total(totals: Totals, metric: str) -> int:
    """Integer total of an additive metric (time metrics in thousandths)."""
    lookup = {
        "count_plays": totals.plays,
        "sum_time_viewed": totals.time_milli,
        "count_loads": totals.loads,
        "unique_known_users": totals.unique_users,
        "sum_view_period": totals.view_period_milli,
    }
    lookup.update(dict(zip(_QUARTILES, totals.quartiles, strict=True)))
    return lookup[metric]


def split_over_days(total: int, seed: int, days: int) -> list[int]:
    """Split an integer total into ``days`` deterministic parts that add up to it exactly."""
    weights = [50 + mix64(seed ^ day) % 100 for day in range(days)]
    weight_sum = sum(weights)
    parts, cumulative, previous = [], 0, 0
    for weight in weights:
        cumulative += weight
        current = total * cumulative // weight_sum
        parts.append(current - previous)
        previous = current
    return parts


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
    spec = _spec(params)
    return ReportQuery(
        ctx.core,
        spec,
        ctx.require_partner(),
        params.obj("reportInputFilter"),
        _delimiter(params),
        params.get_str("objectIds"),
    )


def _positions(query: ReportQuery, order: str | None, start: int, stop: int) -> range:
    """Table positions for rows ``start..stop`` in the requested order (only count_plays ordering is modelled)."""
    stop = min(stop, query.row_count)
    if start >= stop:
        return range(0)
    if order == "+count_plays":
        return range(query.row_count - 1 - start, query.row_count - 1 - stop, -1)
    return range(start, stop)


def _get_table(ctx: CallContext, params: Params) -> dict[str, Any]:
    query = _query(ctx, params)
    pager = params.obj("pager")
    size = pager.get_int("pageSize") or DEFAULT_PAGE_SIZE
    size = max(1, size)
    index = max(1, pager.get_int("pageIndex") or 1)
    if index * size > MAX_RESULT_SIZE:
        if index != 1:
            # kKavaReportsMgr throws this; the API reports it as the (misspelt) generic error (§7.1).
            raise ApiError(errors.INTERNAL_SERVERL_ERROR, message=f"result limit is {MAX_RESULT_SIZE} rows")
        size = MAX_RESULT_SIZE
    start = (index - 1) * size
    rows = [query.row(position) for position in _positions(query, params.get_str("order"), start, start + size)]
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
    date_range = query.date_range
    graphs = []
    for metric in query.spec.graph_metrics:
        parts = split_over_days(_additive_total(totals, metric), seed_of(query.metric_seed, metric), date_range.days)
        buckets: dict[str, int] = {}
        for day_index, value in enumerate(parts):
            day = date_range.day(day_index)
            label = day.strftime("%Y%m") if interval == "months" else day.strftime("%Y%m%d")
            buckets[label] = buckets.get(label, 0) + value
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
    # §7.2: the URL embeds a user KS limited to this file, valid for at most a day.
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
    for position in _positions(query, export.order, export.start, export.stop):
        buffer += _csv_line(query.row(position))
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
