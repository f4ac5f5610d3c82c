"""The synthetic data behind the analytics reports (:mod:`.reports` serves it): report specs, the rows of a window
computed on demand, totals and graphs from the same rows.

Time. A request covers the half-open window ``[fromDate, toDate)`` in unix seconds: Kaltura hands both to Druid as
an interval, and Druid intervals exclude their end. ``fromDay``/``toDay`` (``YYYYMMDD``, both days included) become
``[local midnight of fromDay, local midnight after toDay)``. ``timeZoneOffset`` (minutes west of UTC, like
JavaScript's ``getTimezoneOffset``) says where local days begin; it moves day boundaries, never the window.

Two kinds of report (``ReportSpec.per_moment``):

* Per-moment reports (:data:`VIEWER_SESSIONS`, a simulator report type) have one row per viewing session, each at a
  fixed instant: UTC day ``D`` holds the configured number of rows for its weekday, evenly spaced over the day. The
  rows of a window are exactly those whose instant lies inside it, sorted by time, and a row's values depend on the
  row alone, never on the window asked. Cutting a window anywhere therefore gives the same rows, in the same order
  once the parts are concatenated, as asking for the whole.
* Aggregated reports (1, 2, 13, 21, 36, 38) have one row per entity (entry, user, device, country) aggregated over
  the window, sorted by ``count_plays`` descending (plays fall off like ``K / (i + 1)``). The number of entities is
  the rows per day summed over the local days the window touches (or a fixed total), and the numbers are drawn per
  window. As in Kaltura, a window cut in parts lists the popular entities once per part: the parts' rows do not add
  up to the whole window's (the product's client refuses to split them unless asked).

Rows are computed on demand (a report of millions of rows is never held in memory; CSV exports stream). getTotal is
the exact sum of the window's rows (cached) and getGraphs splits the same sums over local days, so getTable, getTotal
and getGraphs always agree.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import errors
from .errors import ApiError
from .params import Params
from .serialize import php_float
from .state import ENTRY_TYPE_MEDIA_CLIP
from .synth import entry_title, mix64, object_id, person_name, seed_of

if TYPE_CHECKING:
    from .core import SimulatorCore

DAY = 86_400
DEFAULT_ROWS_PER_DAY = 3
# Not a Kaltura report type: the simulator's report whose rows each belong to one moment
# (docs/kaltura.md#report-gettable says nothing about which real types do; per-session or per-event rows are what a time
# split is exact for).
VIEWER_SESSIONS = 9001
_MAX_DAYS = 3_700
_TOTALS_CACHE_SIZE = 64
_EPOCH = dt.date(1970, 1, 1)
# Filter fields that only place the window; a per-moment row's values must not depend on them.
_WINDOW_KEYS = frozenset({"objectType", "interval", "fromDate", "toDate", "fromDay", "toDay", "timeZoneOffset"})
_SESSION_USERS = 1_024
_SESSION_ENTRIES = 256

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
    """Columns of one ``KalturaReportType``; ``per_moment`` reports have a row per moment, not per entity."""

    report_type: int
    name: str
    dimension: str
    dimension_columns: tuple[str, ...]
    metrics: tuple[str, ...]
    total_metrics: tuple[str, ...]
    graph_metrics: tuple[str, ...]
    per_moment: bool = False

    @property
    def table_columns(self) -> tuple[str, ...]:
        """Header of getTable."""
        return self.dimension_columns + self.metrics


# TOP_CONTENT columns are those of docs/kaltura.md#report-gettable; TOP_CONTENT_CREATOR totals follow the reports guide;
# the rest follow kKavaReports' naming (the source Kaltura's columns come from) and are a simulator choice.
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
        ReportSpec(
            VIEWER_SESSIONS,
            "VIEWER_SESSIONS",
            "session",
            ("session_start", "date_id", "user_id", "full_name", "object_id", "entry_name"),
            ("count_plays", "sum_time_viewed", "count_loads", "avg_completion_rate"),
            ("count_plays", "sum_time_viewed", "count_loads", "avg_completion_rate"),
            ("count_plays", "sum_time_viewed", "count_loads"),
            per_moment=True,
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


class MomentGrid:
    """Where the rows of a per-moment report sit in time.

    UTC day ``D`` (days since 1970-01-01) holds ``rows[weekday]`` rows; row ``k`` of a day with ``n`` rows sits at
    second ``k * 86400 // n`` of it. Rows are numbered from the epoch, so "the rows before instant ``t``" is a
    closed formula and a window's rows are a contiguous range of row numbers.
    """

    def __init__(self, weekday_rows: tuple[int, ...]) -> None:
        # 1970-01-01 was a Thursday: a 7-day cycle starting at day 0 runs Thursday .. Wednesday.
        self._cycle = tuple(weekday_rows[(position + 3) % 7] for position in range(7))
        self._prefix = [0]
        for rows in self._cycle:
            self._prefix.append(self._prefix[-1] + rows)
        self._week = self._prefix[-1]

    def count_before(self, instant: int) -> int:
        """Number of rows sitting strictly before ``instant``."""
        day, second = divmod(instant, DAY)
        weeks, position = divmod(day, 7)
        rows = self._cycle[position]
        within = min(rows, -(-second * rows // DAY))  # rows k with k * DAY // rows < second
        return weeks * self._week + self._prefix[position] + within

    def instant_of(self, number: int) -> int:
        """The instant (unix seconds) of row ``number``."""
        weeks, rest = divmod(number, self._week)
        position = bisect.bisect_right(self._prefix, rest) - 1
        rows = self._cycle[position]
        return (weeks * 7 + position) * DAY + (rest - self._prefix[position]) * DAY // rows

    def instants(self, number: int, count: int) -> list[int]:
        """The instants of rows ``number .. number + count - 1`` (a day at a time: cheaper than one by one)."""
        weeks, rest = divmod(number, self._week)
        position = bisect.bisect_right(self._prefix, rest) - 1
        day, within = weeks * 7 + position, rest - self._prefix[position]
        instants: list[int] = []
        while len(instants) < count:
            rows = self._cycle[day % 7]
            take = min(rows - within, count - len(instants))
            base = day * DAY
            instants.extend(base + index * DAY // rows for index in range(within, within + take))
            day, within = day + 1, 0
        return instants

    @property
    def empty(self) -> bool:
        """True when no day holds any row."""
        return self._week == 0


@dataclass(slots=True)
class ReportSettings:
    """Size knobs per report type: rows per day (the same every day or per weekday), or a fixed total."""

    weekday_rows: dict[int, tuple[int, ...]] = field(default_factory=dict)
    total_rows: dict[int, int] = field(default_factory=dict)

    def configure(
        self,
        report_type: int,
        *,
        rows_per_day: int | None = None,
        rows_per_weekday: tuple[int, ...] | None = None,
        total_rows: int | None = None,
    ) -> None:
        """Size ``report_type`` by exactly one of: ``rows_per_day``, ``rows_per_weekday`` (Monday first, UTC days
        for per-moment reports, local days for aggregated ones) or ``total_rows`` (aggregated reports only: the same
        number of entities whatever the window).
        """
        spec = REPORT_SPECS.get(report_type)
        if spec is None:
            raise ValueError(f"unknown report type {report_type}")
        if sum(value is not None for value in (rows_per_day, rows_per_weekday, total_rows)) != 1:
            raise ValueError("give exactly one of rows_per_day, rows_per_weekday, total_rows")
        if total_rows is not None:
            if spec.per_moment:
                raise ValueError(f"report {report_type} has a row per moment: size it by rows per day")
            if total_rows < 0:
                raise ValueError("total_rows must be >= 0")
            self.total_rows[report_type] = total_rows
            return
        weekday = (rows_per_day,) * 7 if rows_per_day is not None else tuple(rows_per_weekday or ())
        if len(weekday) != 7 or any(not isinstance(rows, int) or rows < 0 for rows in weekday):
            raise ValueError("rows per day must be whole numbers >= 0 (seven of them per weekday)")
        self.weekday_rows[report_type] = weekday
        self.total_rows.pop(report_type, None)

    def rows_of_weekdays(self, report_type: int) -> tuple[int, ...]:
        """Rows per weekday, Monday first."""
        return self.weekday_rows.get(report_type, (DEFAULT_ROWS_PER_DAY,) * 7)

    def entity_count(self, report_type: int, date_range: DateRange) -> int:
        """Entities of an aggregated report over ``date_range``: the fixed total, or rows summed over its days."""
        if report_type in self.total_rows:
            return self.total_rows[report_type]
        weekday = self.rows_of_weekdays(report_type)
        return sum(weekday[date_range.day(index).weekday()] for index in range(date_range.days))

    def grid(self, report_type: int) -> MomentGrid:
        """Row placement of a per-moment report."""
        return _grid(self.rows_of_weekdays(report_type))


@functools.lru_cache(maxsize=32)
def _grid(weekday_rows: tuple[int, ...]) -> MomentGrid:
    return MomentGrid(weekday_rows)


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
    """A run of local calendar days."""

    first_day: dt.date
    days: int

    def day(self, index: int) -> dt.date:
        """The ``index``-th day of the range."""
        return self.first_day + dt.timedelta(days=index)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A request's window ``[start, end)`` in unix seconds and where its local days begin."""

    start: int
    end: int
    offset_seconds: int  # timeZoneOffset in seconds: local time = UTC - offset

    def local_day_number(self, instant: int) -> int:
        """Days since 1970-01-01 of the local day ``instant`` falls in."""
        return (instant - self.offset_seconds) // DAY

    def local_days(self) -> DateRange:
        """The local days the window touches (none when it is empty)."""
        first = self.local_day_number(self.start)
        if self.end <= self.start:
            return DateRange(_EPOCH + dt.timedelta(days=first), 0)
        last = self.local_day_number(self.end - 1)
        return DateRange(_EPOCH + dt.timedelta(days=first), min(last - first + 1, _MAX_DAYS))


def parse_window(report_filter: Params) -> TimeWindow:
    """``fromDate``/``toDate`` (unix seconds, ``[from, to)``) or ``fromDay``/``toDay`` (YYYYMMDD, both days
    included), with ``timeZoneOffset`` in minutes.
    """
    offset = (report_filter.get_int("timeZoneOffset", 0) or 0) * 60
    from_date, to_date = report_filter.get_int("fromDate"), report_filter.get_int("toDate")
    from_day, to_day = report_filter.get_str("fromDay"), report_filter.get_str("toDay")
    if from_date is not None and to_date is not None:
        return TimeWindow(from_date, to_date, offset)
    if from_day and to_day:
        days = []
        for name, text in (("fromDay", from_day), ("toDay", to_day)):
            try:
                days.append((dt.datetime.strptime(text, "%Y%m%d").date() - _EPOCH).days)
            except ValueError as exc:
                raise ApiError(errors.INVALID_PARAMETER_VALUE, f"reportInputFilter:{name}", text) from exc
        return TimeWindow(days[0] * DAY + offset, (days[1] + 1) * DAY + offset, offset)
    missing = "fromDate" if from_date is None and not from_day else "toDate"
    raise ApiError(errors.MISSING_MANDATORY_PARAMETER, f"reportInputFilter:{missing}")


def clean_value(value: str, delimiter: str) -> str:
    """docs/kaltura.md#report-gettable: a delimiter or ``;`` inside a value becomes a space; nothing is escaped."""
    return value.replace(delimiter, " ").replace(";", " ")


@functools.lru_cache(maxsize=4096)
def _day_label(day_number: int, interval: str = "days") -> str:
    day = _EPOCH + dt.timedelta(days=day_number)
    return day.strftime("%Y%m") if interval == "months" else day.strftime("%Y%m%d")


_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_LCG = 6364136223846793005


def row_numbers(
    seed: int, peak: int, index: int
) -> tuple[int, int, int, int, int, int, int, tuple[int, int, int, int]]:
    """The integer facts of aggregated row ``index`` as a tuple in :class:`RowMetrics` order; plays fall off as
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


_PLAY_LENGTHS = 4096  # distinct viewing times per play: 15 s to about 30 min


def session_hash(seed: int, number: int) -> int:
    """64 well-mixed bits for per-moment row ``number`` (two multiply-xorshift rounds: cheaper than ``mix64``, and
    plenty for synthetic numbers)."""
    value = ((number ^ seed) * _GOLDEN) & _MASK64
    value = ((value ^ (value >> 32)) * 0xD6E8FEB86659FD93) & _MASK64
    return value ^ (value >> 32)


def moment_numbers(value: int) -> tuple[int, int, int, int]:
    """(plays, time viewed in ms, loads, completion in thousandths) of one viewing session from its hash."""
    plays = 1 + value % 3
    return (
        plays,
        plays * (15_000 + ((value >> 4) % _PLAY_LENGTHS) * 439),
        plays + (value >> 26) % 2,
        (value >> 30) % 1001,
    )


@functools.cache
def _number_texts() -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """Report strings of small counts, of every session's time viewed (by plays, then length) and of completion
    rates: a large pull formats millions of these, so they are formatted once."""
    counts = tuple(str(count) for count in range(8))
    times = tuple(
        tuple(php_float(plays * (15_000 + index * 439) / 1000) for index in range(_PLAY_LENGTHS)) for plays in (1, 2, 3)
    )
    return counts, times, tuple(php_float(value / 1000) for value in range(1001))


class ReportQuery(Protocol):
    """One (report type, partner, filter) combination: rows on demand, and totals and graphs from the same rows."""

    spec: ReportSpec
    delimiter: str
    row_count: int

    @property
    def total_key(self) -> tuple[Any, ...]:
        """Cache key of this query's totals."""
        ...

    def rows(self, positions: range) -> Iterator[list[str]]:
        """The table rows at ``positions`` (of :meth:`positions`) as cleaned strings."""
        ...

    def positions(self, order: str | None, start: int, stop: int) -> range:
        """Row positions of rows ``start..stop`` of the table in the requested order."""
        ...

    def totals(self) -> Totals:
        """Exact sums over all rows (O(rows); cached by the caller)."""
        ...

    def graph_points(self, metric: str, totals: Totals, interval: str) -> dict[str, int]:
        """``metric`` summed per local day (or month), labels in time order; the values add up to the total."""
        ...


def _media_entries(core: SimulatorCore, partner_id: int) -> list[tuple[str, str, str, int, int]]:
    """(id, name, creator, created_at, ms duration) of the partner's media entries, oldest first."""
    with core.state.lock:
        media = sorted(
            (
                e
                for e in core.state.entries.values()
                if e.partner_id == partner_id and e.entry_type == ENTRY_TYPE_MEDIA_CLIP
            ),
            key=lambda e: (e.created_at, e.id),
        )
        return [(e.id, e.name, e.user_id, e.created_at, e.ms_duration) for e in media]


def _requested_ids(report_filter: Params, object_ids: str | None, delimiter: str) -> list[str] | None:
    wanted = object_ids or report_filter.get_str("entryIdIn")
    if not wanted:
        return None
    return list(dict.fromkeys(part.strip() for part in wanted.split(delimiter) if part.strip())) or None


class AggregateQuery:
    """An aggregated report: a row per entity over the whole window, most plays first."""

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
        self.date_range = parse_window(report_filter).local_days()
        # Names and ids depend on the partner only, so the same entry keeps its id across weeks;
        # the numbers depend on the window and the filter.
        self.entity_seed = seed_of(core.seed, partner_id, "entities")
        # Everything that filters data changes the numbers; the type and the graph interval do not.
        fingerprint = sorted(
            (key, str(value)) for key, value in report_filter.raw.items() if key not in ("objectType", "interval")
        )
        self.metric_seed = seed_of(core.seed, partner_id, spec.report_type, fingerprint, object_ids)
        self.scale = 200 + self.metric_seed % 800
        media = _media_entries(core, partner_id)
        self._known_entries = {entry[0]: entry[1:] for entry in media}
        self._real_ids = [entry[0] for entry in media]
        self._ids_filter: list[str] | None = None
        wanted = _requested_ids(report_filter, object_ids, delimiter)
        if wanted and spec.dimension in ("entry", "entry_creator"):
            # Rank the requested ids pseudo-randomly so plays still fall off down the table.
            self._ids_filter = sorted(wanted, key=lambda ident: (seed_of(self.metric_seed, ident) % 1000, ident))
        self.row_count = self._count(core)

    def _count(self, core: SimulatorCore) -> int:
        if self.date_range.days == 0:
            return 0
        if self._ids_filter is not None:
            return len(self._ids_filter)
        rows = core.reports.entity_count(self.spec.report_type, self.date_range)
        if self.spec.dimension == "device":
            return min(rows, len(_DEVICES))
        if self.spec.dimension == "country":
            return min(rows, len(_COUNTRIES))
        return max(0, rows)

    @property
    def total_key(self) -> tuple[Any, ...]:
        """Cache key of this query's totals."""
        return ("aggregate", self.metric_seed, self.row_count, self.date_range, tuple(self._ids_filter or ()))

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

    def rows(self, positions: range) -> Iterator[list[str]]:
        """The rows at ``positions`` as cleaned strings."""
        return (self.row(position) for position in positions)

    def positions(self, order: str | None, start: int, stop: int) -> range:
        """Positions of rows ``start..stop``; ``+count_plays`` reverses the default ``-count_plays`` (other orders
        are not modelled)."""
        stop = min(stop, self.row_count)
        if start >= stop:
            return range(0)
        if order == "+count_plays":
            return range(self.row_count - 1 - start, self.row_count - 1 - stop, -1)
        return range(start, stop)

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

    def graph_points(self, metric: str, totals: Totals, interval: str) -> dict[str, int]:
        """The metric's total spread over the window's local days with integer arithmetic (entities are not tied to
        a moment, so the split is drawn, deterministically)."""
        date_range = self.date_range
        parts = split_over_days(_additive_total(totals, metric), seed_of(self.metric_seed, metric), date_range.days)
        first = (date_range.first_day - _EPOCH).days
        buckets: dict[str, int] = {}
        for day_index, value in enumerate(parts):
            label = _day_label(first + day_index, interval)
            buckets[label] = buckets.get(label, 0) + value
        return buckets


@functools.lru_cache(maxsize=16)
def _session_users(entity_seed: int, delimiter: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"user{index + 1:06d}@example.com", clean_value(person_name(entity_seed, index), delimiter))
        for index in range(_SESSION_USERS)
    )


@functools.lru_cache(maxsize=16)
def _session_entries(entity_seed: int, delimiter: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (object_id(entity_seed, index), clean_value(entry_title(entity_seed, index), delimiter))
        for index in range(_SESSION_ENTRIES)
    )


class MomentQuery:
    """A per-moment report: the rows whose instant lies in ``[start, end)``, in time order."""

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
        self.delimiter = delimiter
        self.window = parse_window(report_filter)
        self.grid = core.reports.grid(spec.report_type)
        empty = self.grid.empty or self.window.end <= self.window.start
        self.first = 0 if empty else self.grid.count_before(self.window.start)
        self.row_count = 0 if empty else self.grid.count_before(self.window.end) - self.first
        entity_seed = seed_of(core.seed, partner_id, "entities")
        # A row's values come from its number and the non-window filters only: any window sees the same row.
        fingerprint = sorted((key, str(value)) for key, value in report_filter.raw.items() if key not in _WINDOW_KEYS)
        self.row_seed = seed_of(core.seed, partner_id, spec.report_type, fingerprint, object_ids)
        self._users = _session_users(entity_seed, delimiter)
        media = {entry[0]: entry[1] for entry in _media_entries(core, partner_id)}
        wanted = _requested_ids(report_filter, object_ids, delimiter)
        if wanted:
            self._entries = [
                (clean_value(ident, delimiter), clean_value(media.get(ident, ""), delimiter)) for ident in wanted
            ]
        else:
            real = [(clean_value(ident, delimiter), clean_value(name, delimiter)) for ident, name in media.items()]
            self._entries = real + list(_session_entries(entity_seed, delimiter)[len(real) :])
        # Names come cleaned from the pools; numbers, times and ids only need it when the delimiter could occur in them.
        self._clean_all = any(char in "0123456789.-e+@_" for char in delimiter)

    @property
    def total_key(self) -> tuple[Any, ...]:
        """Cache key of this query's totals."""
        return ("moment", self.row_seed, self.first, self.row_count)

    def rows(self, positions: range) -> Iterator[list[str]]:
        """The rows at ``positions`` (0 = the window's earliest) as cleaned strings.

        The hot path of a large getTable pull (a 1000-row page should cost a few ms): one pass, hash inlined, numbers
        read from preformatted tables, one date label per local day.
        """
        if not positions:
            return
        low = min(positions[0], positions[-1])
        instants = self.grid.instants(self.first + low, len(positions))
        seed, users, entries = self.row_seed, self._users, self._entries
        offset, delimiter, clean_all = self.window.offset_seconds, self.delimiter, self._clean_all
        counts, times, rates = _number_texts()
        labels: dict[int, str] = {}
        for position in positions:
            instant = instants[position - low]
            value = session_hash(seed, self.first + position)
            plays = 1 + value % 3
            day = (instant - offset) // DAY
            label = labels.get(day) or labels.setdefault(day, _day_label(day))
            user_id, full_name = users[(value >> 40) % len(users)]
            entry_id, entry_name = entries[(value >> 52) % len(entries)]
            row = [
                str(instant),
                label,
                user_id,
                full_name,
                entry_id,
                entry_name,
                counts[plays],
                times[plays - 1][(value >> 4) % _PLAY_LENGTHS],
                counts[plays + (value >> 26) % 2],
                rates[(value >> 30) % 1001],
            ]
            yield [clean_value(cell, delimiter) for cell in row] if clean_all else row

    def positions(self, order: str | None, start: int, stop: int) -> range:
        """Positions of rows ``start..stop``: oldest first, or newest first for ``-session_start``."""
        stop = min(stop, self.row_count)
        if start >= stop:
            return range(0)
        if order == f"-{self.spec.dimension_columns[0]}":
            return range(self.row_count - 1 - start, self.row_count - 1 - stop, -1)
        return range(start, stop)

    def totals(self) -> Totals:
        """Exact sums over the window's rows (completion weighted by plays)."""
        plays = time_milli = loads = completion = 0
        for number in range(self.first, self.first + self.row_count):
            row = moment_numbers(session_hash(self.row_seed, number))
            plays += row[0]
            time_milli += row[1]
            loads += row[2]
            completion += row[3] * row[0]
        return Totals(plays, time_milli, loads, 0, 0, 0, completion, [0, 0, 0, 0])

    def graph_points(self, metric: str, totals: Totals, interval: str) -> dict[str, int]:
        """The metric summed over the rows of each local day (or month) they fall in."""
        slot = {"count_plays": 0, "sum_time_viewed": 1, "count_loads": 2}[metric]
        buckets: dict[str, int] = {}
        for number in range(self.first, self.first + self.row_count):
            label = _day_label(self.window.local_day_number(self.grid.instant_of(number)), interval)
            buckets[label] = buckets.get(label, 0) + moment_numbers(session_hash(self.row_seed, number))[slot]
        return buckets


def build_query(
    core: SimulatorCore,
    spec: ReportSpec,
    partner_id: int,
    report_filter: Params,
    delimiter: str,
    object_ids: str | None,
) -> ReportQuery:
    """The query object for ``spec``'s kind of report."""
    kind = MomentQuery if spec.per_moment else AggregateQuery
    return kind(core, spec, partner_id, report_filter, delimiter, object_ids)


def table_rows(
    core: SimulatorCore,
    partner_id: int,
    report_type: int,
    report_filter: Mapping[str, Any],
    *,
    delimiter: str = ",",
    object_ids: str | None = None,
    order: str | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Header and every row a getTable query would page through, straight from the generator (no paging, no limit)."""
    spec = REPORT_SPECS.get(report_type)
    if spec is None:
        raise ValueError(f"unknown report type {report_type}")
    query = build_query(core, spec, partner_id, Params(report_filter), delimiter, object_ids)
    return list(spec.table_columns), list(query.rows(query.positions(order, 0, query.row_count)))


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
