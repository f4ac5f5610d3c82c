"""CSV cleaner: Kaltura's raw report CSV (docs/kaltura.md#report-csv-strings: BOM, unquoted, ``\\n``) and getTable rows
in, clean RFC 4180 CSV out."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

import pytest
from kauto.csvclean import (
    ROOM_BREAKOUTS_SPEC,
    ROOM_DATA_SPEC,
    CsvCleaner,
    CsvFormatError,
    CsvSpec,
    iso_utc,
    neutralize,
    room_rows,
    rows_matching,
)

BOM = b"\xef\xbb\xbf"
ROOM_HEADER = (
    "entry_id,entry_name,parent_entry_id,cue_point_id,session_start_time,session_end_time,session_host_user_id,"
    "meeting_view_period_unique_users,meeting_engaged_play_time_ratio"
)
ROOM_REPORT = (
    BOM
    + (
        ROOM_HEADER + "\n"
        "1_room,Salle de réunion  Lyon,,cp_1,1722470400,1722474000,host-7,42,0.61\n"
        "1_brk,Breakout 1,1_room,cp_2,1722471000,1722472800,host-8,9,0.4\n"
        "1_other,Other room,,cp_3,1722480000,1722483600,host-9,3,-3.5\n"
    ).encode()
)
ROOM_OUTPUT_HEADER = [
    "entry_id",
    "entry_name",
    "parent_entry_id",
    "cue_point_id",
    "session_start_time",
    "session_start_time_iso",
    "session_end_time",
    "session_end_time_iso",
    "session_host_user_id",
    "meeting_view_period_unique_users",
    "meeting_engaged_play_time_ratio",
]


def parse(records: Iterable[str]) -> list[list[str]]:
    """Read the cleaner's output back with a standard CSV reader."""
    return list(csv.reader(io.StringIO("".join(records), newline="")))


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_room_report_is_cleaned_with_iso_timestamps_and_no_bom() -> None:
    cleaner = CsvCleaner(ROOM_DATA_SPEC)
    records = list(cleaner.clean_bytes([ROOM_REPORT]))

    assert not records[0].startswith("\ufeff")
    assert all(record.endswith("\r\n") for record in records)
    table = parse(records)
    assert table[0] == ROOM_OUTPUT_HEADER
    assert table[1] == [
        "1_room",
        "Salle de réunion  Lyon",
        "",
        "cp_1",
        "1722470400",
        "2024-08-01T00:00:00Z",
        "1722474000",
        "2024-08-01T01:00:00Z",
        "host-7",
        "42",
        "0.61",
    ]
    assert table[3][-1] == "-3.5"  # a negative number is data, not a formula
    assert cleaner.rows == 3
    assert cleaner.columns == tuple(ROOM_OUTPUT_HEADER)
    assert (cleaner.stats.rows_in, cleaner.stats.rows_ragged, cleaner.stats.missing_columns) == (3, 0, ())


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_chunking_gives_the_same_output(size: int) -> None:
    # size 1 and 2 split the BOM; "é" is two bytes and "—" three, so most sizes split a character too.
    data = ROOM_REPORT.replace(b"Breakout 1", "Breakout — é".encode())
    whole = list(CsvCleaner(ROOM_DATA_SPEC).clean_bytes([data]))
    assert list(CsvCleaner(ROOM_DATA_SPEC).clean_bytes(chunked(data, size))) == whole
    assert parse(whole)[2][1] == "Breakout — é"


def test_every_split_point_of_a_multibyte_character_and_the_bom() -> None:
    data = BOM + "name,n\nÅ€𝄞,1\n".encode()
    expected = ["name,n\r\n", "Å€𝄞,1\r\n"]
    for cut in range(1, len(data)):
        assert list(CsvCleaner().clean_bytes([data[:cut], data[cut:]])) == expected, cut


@pytest.mark.parametrize(
    "body",
    [
        b"a,b\r\n1,2\r\n3,4\r\n",  # CRLF input
        b"a,b\n1,2\n3,4\n\n",  # trailing empty line
        b"a,b\n1,2\n3,4",  # no final newline
        BOM + b"a,b\n\n1,2\n3,4\n",  # BOM and a blank line inside
        b"",  # nothing yet, then the data in the next chunk
    ],
)
def test_line_ending_variants(body: bytes) -> None:
    chunks = [body] if body else [b"", b"a,b\n1,2\n3,4\n"]
    assert list(CsvCleaner().clean_bytes(chunks)) == ["a,b\r\n", "1,2\r\n", "3,4\r\n"]


def test_empty_input_gives_no_output() -> None:
    cleaner = CsvCleaner(ROOM_DATA_SPEC)
    assert list(cleaner.clean_bytes([BOM])) == []
    assert cleaner.columns == () and cleaner.rows == 0


def test_an_empty_body_gets_the_specs_header_and_a_source_header_wins() -> None:
    empty = CsvCleaner(ROOM_DATA_SPEC)
    assert list(empty.clean_bytes([BOM])) == []
    assert parse(empty.header_when_no_source()) == [ROOM_OUTPUT_HEADER]
    assert empty.rows == 0

    sourced = CsvCleaner(ROOM_DATA_SPEC)
    list(sourced.clean_bytes([BOM + ROOM_HEADER.encode() + b"\n"]))
    assert list(sourced.header_when_no_source()) == []


def test_header_only_report_still_gets_its_header() -> None:
    cleaner = CsvCleaner(ROOM_DATA_SPEC)
    assert parse(cleaner.clean_bytes([BOM + ROOM_HEADER.encode() + b"\n"])) == [ROOM_OUTPUT_HEADER]
    assert cleaner.rows == 0


def test_quotes_commas_and_newlines_are_quoted_per_rfc_4180() -> None:
    records = list(
        CsvCleaner().clean_dicts(
            [{"name": 'Say "hi", then\nleave', "plain": "ok", "cr": "a\rb"}],
        )
    )
    assert records == ["name,plain,cr\r\n", '"Say ""hi"", then\nleave",ok,"a\rb"\r\n']
    assert parse(records)[1] == ['Say "hi", then\nleave', "ok", "a\rb"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-3.5", "-3.5"),
        ("-42", "-42"),
        ("-1.5e-07", "-1.5e-07"),
        ("-", "'-"),
        ("- 3", "'- 3"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_injection_is_neutralized_in_text_cells_only(cell: str, expected: str) -> None:
    assert neutralize(cell) == expected
    [_, row] = parse(CsvCleaner().clean_rows(["value"], [[cell]]))
    assert row == [expected]


def test_numeric_values_from_get_table_rows_are_never_prefixed() -> None:
    rows = [{"entry_id": "1_a", "delta": -3.5, "count": -2, "ratio": float("nan"), "flag": True, "none": None}]
    assert parse(CsvCleaner().clean_dicts(rows))[1] == ["1_a", "-3.5", "-2", "", "true", ""]


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("1722470400", "2024-08-01T00:00:00Z"),
        ("1722470400.75", "2024-08-01T00:00:00Z"),
        ("0", "1970-01-01T00:00:00Z"),
        ("", ""),
        ("n/a", ""),
        ("-5", ""),
        ("99999999999999", ""),
    ],
)
def test_timestamps_render_as_iso_utc_or_empty(raw: str, iso: str) -> None:
    assert iso_utc(raw) == iso


def test_missing_known_columns_are_empty_and_extra_columns_follow_in_source_order() -> None:
    source = BOM + b"zeta,cue_point_id,entry_id,alpha,session_end_time\nz1,cp_1,1_room,a1,1722474000\n"
    cleaner = CsvCleaner(ROOM_DATA_SPEC)
    table = parse(cleaner.clean_bytes([source]))

    assert table[0] == [*ROOM_OUTPUT_HEADER, "zeta", "alpha"]
    row = dict(zip(table[0], table[1], strict=True))
    assert row["entry_id"] == "1_room" and row["cue_point_id"] == "cp_1"
    assert row["session_start_time"] == row["session_start_time_iso"] == row["entry_name"] == ""
    assert row["session_end_time_iso"] == "2024-08-01T01:00:00Z"
    assert (row["zeta"], row["alpha"]) == ("z1", "a1")
    assert cleaner.stats.extra_columns == ("zeta", "alpha")
    assert cleaner.stats.missing_columns == (
        "entry_name",
        "parent_entry_id",
        "session_start_time",
        "session_host_user_id",
        "meeting_view_period_unique_users",
        "meeting_engaged_play_time_ratio",
    )


def test_spec_without_preferred_columns_keeps_source_order() -> None:
    assert parse(CsvCleaner().clean_bytes([b"b,a\n1,2\n"])) == [["b", "a"], ["1", "2"]]


def test_dropped_columns_are_never_output() -> None:
    spec = CsvSpec(preferred_columns=("user_id", "user_email"), drop_columns=frozenset({"user_email", "user_name"}))
    table = parse(CsvCleaner(spec).clean_bytes([b"user_id,user_name,user_email,minutes\nu1,Jane,j@x.org,5\n"]))
    assert table == [["user_id", "minutes"], ["u1", "5"]]


def test_ragged_rows_are_padded_or_trimmed_and_counted() -> None:
    cleaner = CsvCleaner()
    table = parse(cleaner.clean_bytes([b"a,b,c\n1,2\n1,2,3,4\n"]))
    assert table[1:] == [["1", "2", ""], ["1", "2", "3"]]
    assert cleaner.stats.rows_ragged == 2


def test_room_filter_keeps_the_room_and_its_breakouts() -> None:
    cleaner = CsvCleaner(ROOM_DATA_SPEC, row_filter=room_rows("1_room"))
    table = parse(cleaner.clean_bytes([ROOM_REPORT]))
    assert [row[0] for row in table[1:]] == ["1_room", "1_brk"]
    assert (cleaner.rows, cleaner.stats.rows_filtered) == (2, 1)


def test_breakout_report_filter_on_parent_room() -> None:
    header = "parent_entry_id,breakout_entry_id,cue_point_id,session_start_time,session_end_time,duration\n"
    body = (header + "1_room,1_b1,cp_1,1722471000,1722472800,1800\n1_x,1_b9,cp_9,1722471000,1722472800,60\n").encode()
    cleaner = CsvCleaner(ROOM_BREAKOUTS_SPEC, row_filter=rows_matching(["parent_entry_id"], ["1_room"]))
    table = parse(cleaner.clean_bytes([BOM + body]))
    assert len(table) == 2 and table[1][table[0].index("breakout_entry_id")] == "1_b1"


def test_get_table_pages_share_one_header_and_can_resume_with_pinned_columns() -> None:
    cleaner = CsvCleaner(CsvSpec(preferred_columns=("object_id", "count_plays")))
    page1 = list(cleaner.clean_rows(["object_id", "entry_name", "count_plays"], [["1_a", "A", "3"]]))
    page2 = list(cleaner.clean_rows(["object_id", "entry_name", "count_plays", "new_metric"], [["1_b", "B", "4", "9"]]))
    assert parse(page1 + page2) == [["object_id", "count_plays", "entry_name"], ["1_a", "3", "A"], ["1_b", "4", "B"]]
    assert cleaner.stats.unmapped_columns == ("new_metric",)

    resumed = CsvCleaner(CsvSpec(preferred_columns=("object_id",)), columns=cleaner.columns, emit_header=False)
    page3 = list(resumed.clean_dicts([{"entry_name": "C", "object_id": "1_c", "count_plays": 5}]))
    assert parse(page3) == [["1_c", "5", "C"]]


def test_dicts_with_an_explicit_header_emit_it_even_without_rows() -> None:
    assert parse(CsvCleaner().clean_dicts([], header=["a", "b"])) == [["a", "b"]]
    assert list(CsvCleaner().clean_dicts([])) == []


def test_header_cells_are_neutralized_too() -> None:
    assert parse(CsvCleaner().clean_bytes([b"=HYPERLINK(1),b\n1,2\n"]))[0] == ["'=HYPERLINK(1)", "b"]


def test_a_line_without_end_is_refused_beyond_the_limit() -> None:
    with pytest.raises(CsvFormatError, match="longer than 100"):
        list(CsvCleaner(max_line_chars=100).clean_bytes(chunked(b"a,b\n" + b"x" * 1000, 10)))


def test_invalid_utf8_becomes_a_replacement_character() -> None:
    assert parse(CsvCleaner().clean_bytes([b"name\nbad\xffbyte\n"]))[1] == ["bad\ufffdbyte"]


def test_output_is_streamed_row_by_row() -> None:
    def source() -> Iterator[bytes]:
        yield b"a\n1\n"
        raise AssertionError("the cleaner read ahead of what was consumed")

    records = CsvCleaner().clean_bytes(source())
    assert next(records) == "a\r\n"
    assert next(records) == "1\r\n"


def test_rfc_4180_input_keeps_quoted_commas_quotes_and_line_breaks_and_is_neutralized() -> None:
    body = (
        b"\xef\xbb\xbfuserId,message,sentAt\r\n"
        b'u1,"Hello, all",2025-09-15T10:00:00.000Z\r\n'
        b'u2,"=HYPERLINK(""http://x"")\nsecond line",2025-09-15T10:01:00.000Z\r\n'
        b"u3,plain,2025-09-15T10:02:00.000Z\r\n"
    )
    for size in (1, 3, 7, len(body)):
        cleaner = CsvCleaner(CsvSpec(preferred_columns=("userId", "message")), row_filter=lambda r: r["userId"] != "u3")
        records = list(cleaner.clean_quoted_bytes(body[i : i + size] for i in range(0, len(body), size)))
        parsed = list(csv.reader(io.StringIO("".join(records), newline="")))
        assert parsed == [
            ["userId", "message", "sentAt"],
            ["u1", "Hello, all", "2025-09-15T10:00:00.000Z"],
            ["u2", '\'=HYPERLINK("http://x")\nsecond line', "2025-09-15T10:01:00.000Z"],
        ], size
        assert cleaner.stats.rows_filtered == 1


def test_rfc_4180_input_that_is_not_csv_is_refused() -> None:
    cleaner = CsvCleaner()

    with pytest.raises(CsvFormatError, match="RFC 4180"):
        list(cleaner.clean_quoted_bytes([b'a,b\r\n"unterminated,1\r\n']))
