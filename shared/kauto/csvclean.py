"""Turn Kaltura report output into clean, analysis-ready CSV, streaming with bounded memory.

Input: the raw CSV of ``report.getCsv``/``getCsvFromStringParams``/``getUrlForReportAsCsv`` as byte chunks (UTF-8 BOM
``EF BB BF`` first, a header line, ``\\n`` line ends, nothing quoted, commas inside values already replaced by spaces:
docs/kaltura.md#report-csv-strings), or ``report.getTable`` rows already split by the Kaltura client
(docs/kaltura.md#report-gettable).

Output: one ``str`` per CSV record (header first), RFC 4180 quoted by the :mod:`csv` module, ``\\r\\n`` line ends,
no BOM (the writer encodes UTF-8). Rules:

- **Columns** are header-driven. Output columns = the spec's preferred columns in the spec's order, then any other
  source columns in source order. A preferred column missing from the source is still output, **empty**: the
  Glue/Athena tables read CSV by position, so a stable layout matters more than a short one. Dropped columns
  (``drop_columns``) are never output.
- **Timestamps**: each configured timestamp column (unix seconds) is followed by ``<column>_iso``, the same instant
  as ISO 8601 UTC (``2024-08-01T00:00:00Z``); empty when the raw value is empty or not a plausible timestamp.
- **Formula injection** is neutralized in *text cells*. A cell is *numeric* when it is an ``int``/``float`` value or a
  string matching ``-?digits[.digits][e[+-]digits]`` (how Kaltura prints numbers: no leading ``+``, no spaces).
  Every other cell is text; a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
  leading ``'`` so spreadsheets show it instead of evaluating it. ``-3.5`` stays as is; ``-1+2`` and ``+1`` do not.
- **Tolerated input**: ``\\r\\n`` line ends, blank lines (e.g. a trailing one), a missing final newline, chunks that
  split a multibyte character or the BOM. Invalid UTF-8 becomes U+FFFD rather than failing a whole report. A row
  with fewer fields than the header is padded with empty cells; surplus fields are dropped; both are counted as
  ragged (Kaltura never quotes, so a value containing a newline would show up this way).
- **RFC 4180 input** (:meth:`CsvCleaner.clean_quoted_bytes`): the Reports Microservice quotes its cells, so a
  value may hold commas, quotes and line breaks; it is parsed with :mod:`csv` and cleaned by the same rules.
- **Filter hook**: ``row_filter`` sees each source row as ``{column: raw value}``; rows it rejects are skipped and
  counted (see :func:`room_rows`).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kauto.errors import KautoError

RowFilter = Callable[[Mapping[str, str]], bool]

ISO_SUFFIX = "_iso"
MAX_LINE_CHARS = 1 << 20
"""A source line longer than this is refused (bounded memory even if the body has no newline at all)."""
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST_CHARACTERS = frozenset(_FORMULA_PREFIXES)
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


class CsvFormatError(KautoError, ValueError):
    """The source is not a CSV report (e.g. a line longer than :data:`MAX_LINE_CHARS`)."""


@dataclass(frozen=True, slots=True)
class CsvSpec:
    """How to lay out one report: known columns in order, timestamp columns, columns never to output."""

    preferred_columns: tuple[str, ...] = ()
    timestamp_columns: frozenset[str] = frozenset()
    drop_columns: frozenset[str] = frozenset()


# Room reports (report ids 6000-6002, columns from Kaltura's "Retrieve Kaltura Room data" guide;
# docs/kaltura.md#room-reports notes these ids come from the guides only).
ROOM_DATA_SPEC = CsvSpec(
    preferred_columns=(
        "entry_id",
        "entry_name",
        "parent_entry_id",
        "cue_point_id",
        "session_start_time",
        "session_end_time",
        "session_host_user_id",
        "meeting_view_period_unique_users",
        "meeting_engaged_play_time_ratio",
    ),
    timestamp_columns=frozenset({"session_start_time", "session_end_time"}),
)
ROOM_ATTENDEES_SPEC = CsvSpec(
    preferred_columns=(
        "entry_id",
        "cue_point_id",
        "user_id",
        "user_name",
        "user_email",
        "user_type",
        "meeting_view_time",
        "meeting_engaged_play_time_ratio",
    ),
)
ROOM_BREAKOUTS_SPEC = CsvSpec(
    preferred_columns=(
        "parent_entry_id",
        "parent_entry_name",
        "breakout_entry_id",
        "breakout_entry_name",
        "cue_point_id",
        "session_initiator",
        "session_start_time",
        "session_end_time",
        "duration",
        "participant_count",
        "engagement_rate",
    ),
    timestamp_columns=frozenset({"session_start_time", "session_end_time"}),
)


def rows_matching(columns: Iterable[str], values: Iterable[str]) -> RowFilter:
    """A filter keeping rows where any of ``columns`` holds one of ``values``."""
    wanted_columns = tuple(columns)
    wanted_values = frozenset(values)

    def keep(row: Mapping[str, str]) -> bool:
        return any(row.get(column) in wanted_values for column in wanted_columns)

    return keep


def room_rows(room_entry_id: str) -> RowFilter:
    """Keep rows of one room: ``entry_id`` or ``parent_entry_id`` (its breakouts) equals ``room_entry_id``."""
    return rows_matching(("entry_id", "parent_entry_id"), (room_entry_id,))


@dataclass(frozen=True, slots=True)
class CleanStats:
    """What a :class:`CsvCleaner` did so far (over all the streams it cleaned).

    ``missing_columns``: preferred columns absent from a source (output empty); ``extra_columns``: source columns not
    in the spec (output after the preferred ones); ``unmapped_columns``: columns of a later stream that the fixed
    output layout has no place for (not output).
    """

    columns: tuple[str, ...]
    rows_in: int
    rows_out: int
    rows_filtered: int
    rows_ragged: int
    missing_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    unmapped_columns: tuple[str, ...]


def neutralize(cell: str) -> str:
    """``cell`` with a leading ``'`` if it is a text cell that a spreadsheet would read as a formula."""
    if cell.startswith(_FORMULA_PREFIXES) and not (cell[0] == "-" and _NUMBER.fullmatch(cell)):
        return "'" + cell
    return cell


_TIME_OF_DAY = tuple(f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86_400))
_DAY_LABELS: dict[int, str] = {}
_EPOCH_DAY = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(raw: str) -> str:
    """Unix seconds (``"1722470400"``, ``"1722470400.5"``) as ``2024-08-01T00:00:00Z``; empty if not a timestamp."""
    if raw.isascii() and raw.isdigit():
        # The common case (whole seconds): a day label cache and a table of the 86,400 times of day.
        whole = int(raw)
        if whole > _LATEST_TIMESTAMP:
            return ""
        day, second = divmod(whole, 86_400)
        label = _DAY_LABELS.get(day)
        if label is None:
            label = _DAY_LABELS.setdefault(day, (_EPOCH_DAY + timedelta(days=day)).date().isoformat())
        return label + _TIME_OF_DAY[second]
    if not _NUMBER.fullmatch(raw):
        return ""
    seconds = float(raw)
    if not 0 <= seconds <= _LATEST_TIMESTAMP:
        return ""
    return datetime.fromtimestamp(int(seconds), tz=UTC).isoformat().replace("+00:00", "Z")


class CsvCleaner:
    """Clean one output file from one or more source streams (e.g. the pages of a ``getTable`` pull).

    The first source header fixes the output columns; later streams are mapped onto them (their new columns are
    counted in ``stats.unmapped_columns`` and not output). To continue a file in a new job (after a writer
    checkpoint), pass the saved ``stats.columns`` as ``columns`` and ``emit_header=False``.
    """

    def __init__(
        self,
        spec: CsvSpec | None = None,
        *,
        row_filter: RowFilter | None = None,
        emit_header: bool = True,
        columns: Sequence[str] | None = None,
        max_line_chars: int = MAX_LINE_CHARS,
    ) -> None:
        self._spec = spec or CsvSpec()
        self._filter = row_filter
        self._header_pending = emit_header
        self._columns: tuple[str, ...] | None = tuple(columns) if columns is not None else None
        self._max_line = max_line_chars
        self._rows_in = self._rows_out = self._rows_filtered = self._rows_ragged = 0
        self._missing: list[str] = []
        self._extra: list[str] = []
        self._unmapped: list[str] = []
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        # Per source stream: for each output column, (source index or None, render as ISO timestamp).
        self._plan: list[tuple[int | None, bool]] = []
        self._source_columns: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The output columns (empty until a header was seen or ``columns`` given)."""
        return self._columns or ()

    @property
    def rows(self) -> int:
        """Data rows output so far."""
        return self._rows_out

    @property
    def stats(self) -> CleanStats:
        """A snapshot of the counters and of the column drift so far."""
        return CleanStats(
            columns=self.columns,
            rows_in=self._rows_in,
            rows_out=self._rows_out,
            rows_filtered=self._rows_filtered,
            rows_ragged=self._rows_ragged,
            missing_columns=tuple(self._missing),
            extra_columns=tuple(self._extra),
            unmapped_columns=tuple(self._unmapped),
        )

    def clean_bytes(self, chunks: Iterable[bytes]) -> Iterator[str]:
        """Clean a raw Kaltura CSV byte stream (BOM, header line, unquoted rows) into CSV records."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        pending = ""
        header_seen = False
        for chunk in chunks:
            text = decoder.decode(chunk)
            if not text:
                continue
            lines = (pending + text).split("\n")
            pending = lines.pop()
            if len(pending) > self._max_line:
                raise CsvFormatError(f"a source line is longer than {self._max_line} characters")
            for line in lines:
                record, header_seen = self._source_line(line, header_seen)
                if record is not None:
                    yield record
        for line in (pending + decoder.decode(b"", final=True)).split("\n"):
            record, header_seen = self._source_line(line, header_seen)
            if record is not None:
                yield record

    def clean_quoted_bytes(self, chunks: Iterable[bytes]) -> Iterator[str]:
        """Clean an RFC 4180 CSV byte stream (optional BOM, header line, quoted fields that may hold commas, quotes
        and line breaks), e.g. the Reports Microservice's, into CSV records."""
        reader = csv.reader(decoded_lines(chunks, self._max_line), strict=True)
        header_seen = False
        try:
            for fields in reader:
                if not fields or fields == [""]:
                    continue
                record = self._row(list(fields)) if header_seen else self._start_source(fields)
                header_seen = True
                if record is not None:
                    yield record
        except csv.Error as exc:
            raise CsvFormatError(f"not an RFC 4180 CSV (record {reader.line_num}): {exc}") from None

    def clean_rows(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
        """Clean rows given as sequences aligned with ``header`` (e.g. split ``getTable`` data)."""
        header_record = self._start_source(header)
        if header_record is not None:
            yield header_record
        for row in rows:
            record = self._row([_text(value) for value in row])
            if record is not None:
                yield record

    def header_when_no_source(self) -> Iterator[str]:
        """The spec's header as a file's only record when no source sent a header (an empty body), so an empty report
        keeps a stable layout; nothing once a source header was seen."""
        if not self.columns:
            yield from self.clean_rows(self._spec.preferred_columns, [])

    def clean_dicts(
        self, rows: Iterable[Mapping[str, object]], *, header: Sequence[str] | None = None
    ) -> Iterator[str]:
        """Clean rows given as dicts. The source header is ``header`` or, if None, the first row's keys (then an
        empty input yields nothing at all)."""
        iterator = iter(rows)
        if header is None:
            first = next(iterator, None)
            if first is None:
                return
            header = tuple(first)
            yield from self.clean_rows(header, _aligned(header, _chain_one(first, iterator)))
        else:
            yield from self.clean_rows(header, _aligned(tuple(header), iterator))

    def _source_line(self, line: str, header_seen: bool) -> tuple[str | None, bool]:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            return None, header_seen
        if len(line) > self._max_line:
            raise CsvFormatError(f"a source line is longer than {self._max_line} characters")
        if not header_seen:
            return self._start_source(line.split(",")), True
        return self._row(line.split(",")), True

    def _start_source(self, header: Sequence[str]) -> str | None:
        source = tuple(name.strip() for name in header)
        self._source_columns = source
        spec = self._spec
        index: dict[str, int] = {}
        for position, name in enumerate(source):
            index.setdefault(name, position)
        if self._columns is None:
            known = [name for name in spec.preferred_columns if name not in spec.drop_columns]
            preferred = set(spec.preferred_columns)
            extras = [
                name
                for name in index
                if name and name not in preferred and name not in spec.drop_columns and not self._is_generated(name)
            ]
            self._columns = tuple(_with_iso_columns(known + extras, spec.timestamp_columns))
            _extend_unique(self._extra, extras)
        self._plan = []
        output_sources = set()
        for name in self._columns:
            if self._is_generated(name):
                source_name = name[: -len(ISO_SUFFIX)]
                self._plan.append((index.get(source_name), True))
            else:
                output_sources.add(name)
                self._plan.append((index.get(name), False))
        _extend_unique(self._missing, [name for name in self._columns if name in output_sources and name not in index])
        _extend_unique(
            self._unmapped,
            [
                name
                for name in index
                if name not in output_sources and name not in spec.drop_columns and not self._is_generated(name)
            ],
        )
        if not self._header_pending:
            return None
        self._header_pending = False
        return self._record([neutralize(name) for name in self._columns])

    def _row(self, fields: list[str]) -> str | None:
        self._rows_in += 1
        width = len(self._source_columns)
        if len(fields) != width:
            self._rows_ragged += 1
            fields = fields[:width] if len(fields) > width else fields + [""] * (width - len(fields))
        if self._filter is not None and not self._filter(dict(zip(self._source_columns, fields, strict=True))):
            self._rows_filtered += 1
            return None
        cells = []
        plain = True  # whether every cell can be written as is (see the plain join below)
        for position, as_iso in self._plan:
            raw = fields[position] if position is not None else ""
            if as_iso:
                cells.append(iso_utc(raw) if raw else "")
                continue
            # Most cells do not start with a formula character: skip the call for them.
            if raw and raw[0] in _FORMULA_FIRST_CHARACTERS:
                raw = neutralize(raw)
            if plain and ('"' in raw or "\r" in raw or "," in raw or "\n" in raw):
                plain = False
            cells.append(raw)
        self._rows_out += 1
        # The csv module quotes only cells with a delimiter, quote or line break (QUOTE_MINIMAL), and a lone empty
        # cell: otherwise its record is the plain join, at a fraction of the cost.
        if plain and (len(cells) != 1 or cells[0]):
            return ",".join(cells) + "\r\n"
        return self._record(cells)

    def _record(self, cells: list[str]) -> str:
        self._writer.writerow(cells)
        record = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return record

    def _is_generated(self, name: str) -> bool:
        return name.endswith(ISO_SUFFIX) and name[: -len(ISO_SUFFIX)] in self._spec.timestamp_columns


def decoded_lines(chunks: Iterable[bytes], max_line: int | None = None) -> Iterator[str]:
    """UTF-8 lines (BOM dropped, invalid bytes replaced) with their line ends kept, for :mod:`csv`; memory is one
    line. A line longer than ``max_line`` characters raises :class:`CsvFormatError`."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        if max_line is not None and len(pending) > max_line:
            raise CsvFormatError(f"a source line is longer than {max_line} characters")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _with_iso_columns(columns: Iterable[str], timestamp_columns: frozenset[str]) -> Iterator[str]:
    for name in columns:
        yield name
        if name in timestamp_columns:
            yield name + ISO_SUFFIX


def _extend_unique(target: list[str], names: Iterable[str]) -> None:
    for name in names:
        if name not in target:
            target.append(name)


def _text(value: object) -> str:
    """A source value as cell text: numbers in their shortest exact form, None and non-finite floats empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def _chain_one(first: Mapping[str, object], rest: Iterator[Mapping[str, object]]) -> Iterator[Mapping[str, object]]:
    yield first
    yield from rest


def _aligned(header: Sequence[str], rows: Iterable[Mapping[str, object]]) -> Iterator[list[object]]:
    for row in rows:
        yield [row.get(name) for name in header]
