"""The Glue/Athena resources: one table per report kind with partition projection over the bucket's key layout,
columns in the order the CSV cleaner writes them, and an enforced, encrypted workgroup."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from kauto.automations.collab_reports import COLLAB_REPORTS
from kauto.aws.audit import FACT_COLUMNS, audit_partition
from kauto.aws.report_keys import report_key, session_prefix, weekly_prefix
from kauto.csvclean import ISO_SUFFIX, ROOM_ATTENDEES_SPEC, ROOM_BREAKOUTS_SPEC, ROOM_DATA_SPEC, CsvSpec

OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
SESSION_TABLES = {
    "room_sessions": ROOM_DATA_SPEC,
    "room_attendees": ROOM_ATTENDEES_SPEC,
    "room_breakouts": ROOM_BREAKOUTS_SPEC,
} | {f"room_{report.file_name}": report.spec for report in COLLAB_REPORTS.values()}
WEEKLY_ROOM_TABLES = {
    "weekly_room_data": ROOM_DATA_SPEC,
    "weekly_attendees": ROOM_ATTENDEES_SPEC,
    "weekly_breakouts": ROOM_BREAKOUTS_SPEC,
}
# report.getTable TOP_CONTENT header (docs/kaltura.md#report-gettable).
TOP_CONTENT_COLUMNS = [
    "object_id",
    "entry_name",
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
]


AUDIT_TABLE = "audit_trail"


def all_tables(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Glue table inputs by table name."""
    return {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in resources.values()
        if r["Type"] == "AWS::Glue::Table"
    }


@pytest.fixture
def tables(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report tables (CSV) by name; the audit trail's JSON table is tested on its own."""
    return {name: table for name, table in all_tables(resources).items() if name != AUDIT_TABLE}


def location_template(table: dict[str, Any]) -> str:
    """The storage.location.template with the bucket as ``BUCKET`` (``!Sub`` escapes ``${!x}`` as ``${x}``)."""
    value = table["Parameters"]["storage.location.template"]["Fn::Sub"]
    return value.replace("${ReportsBucket}", "BUCKET").replace("${!", "${")


def spec_columns(spec: CsvSpec) -> list[str]:
    columns = []
    for name in spec.preferred_columns:
        columns.append(name)
        if name in spec.timestamp_columns:
            columns.append(name + ISO_SUFFIX)
    return columns


def test_every_table_is_in_the_stacks_glue_database(resources: dict[str, Any]) -> None:
    databases = [r for r in resources.values() if r["Type"] == "AWS::Glue::Database"]
    tables = [r for r in resources.values() if r["Type"] == "AWS::Glue::Table"]

    assert len(databases) == 1
    assert databases[0]["Properties"]["DatabaseInput"]["Name"] == {"Ref": "AthenaDatabaseName"}
    assert len(tables) == 13  # seven report tables, the five chat-and-collaboration tables and the audit trail
    assert all(t["Properties"]["DatabaseName"] == {"Ref": "AthenaDatabase"} for t in tables)


def test_tables_read_csv_with_a_header_through_open_csv_serde(tables: dict[str, dict[str, Any]]) -> None:
    for name, table in tables.items():
        storage = table["StorageDescriptor"]
        assert table["TableType"] == "EXTERNAL_TABLE", name
        assert table["Parameters"]["skip.header.line.count"] == "1", name
        assert storage["SerdeInfo"]["SerializationLibrary"] == OPEN_CSV_SERDE, name
        assert storage["SerdeInfo"]["Parameters"]["quoteChar"] == '"', name
        assert storage["SerdeInfo"]["Parameters"]["separatorChar"] == ",", name
        assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat", name


def test_partitions_are_projected_without_a_crawler(
    tables: dict[str, dict[str, Any]], resources: dict[str, Any]
) -> None:
    assert not [r for r in resources.values() if r["Type"] == "AWS::Glue::Crawler"]
    for name, table in tables.items():
        parameters = table["Parameters"]
        keys = [key["Name"] for key in table["PartitionKeys"]]
        assert parameters["projection.enabled"] == "true", name
        assert parameters["projection.partner_id.type"] == "injected", name
        for key in keys:
            assert f"projection.{key}.type" in parameters, (name, key)
            assert "${" + key + "}" in location_template(table), (name, key)


def test_session_tables_project_a_day_range_and_weekly_tables_an_injected_week(
    tables: dict[str, dict[str, Any]],
) -> None:
    for name in SESSION_TABLES:
        parameters = tables[name]["Parameters"]
        assert [key["Name"] for key in tables[name]["PartitionKeys"]] == ["partner_id", "date"]
        assert parameters["projection.date.type"] == "date"
        assert parameters["projection.date.format"] == "yyyy-MM-dd"
        assert parameters["projection.date.interval.unit"] == "DAYS"
    for name in (*WEEKLY_ROOM_TABLES, "weekly_top_content"):
        assert [key["Name"] for key in tables[name]["PartitionKeys"]] == ["partner_id", "week"]
        assert tables[name]["Parameters"]["projection.week.type"] == "injected"


def test_each_table_reads_a_folder_of_its_own_report_kind(tables: dict[str, dict[str, Any]]) -> None:
    # Several CSVs of a run share a folder; a table reads everything under its location, so no table's folder
    # may contain another's.
    templates = {name: location_template(table) for name, table in tables.items()}
    for name, template in templates.items():
        assert template.startswith("s3://BUCKET/"), name
        assert template.endswith("/"), name
        assert re.search(r"/report=[a-z0-9_]+/$", template), name
        for other, other_template in templates.items():
            if other != name:
                assert not other_template.startswith(template), (name, other)


def test_session_table_columns_follow_the_csv_cleaners_layout(tables: dict[str, dict[str, Any]]) -> None:
    # OpenCSVSerDe maps columns by position: the order must be the order the cleaner writes.
    for name, spec in {**SESSION_TABLES, **WEEKLY_ROOM_TABLES}.items():
        columns = tables[name]["StorageDescriptor"]["Columns"]
        # Glue lowercases column names; Athena matches them case-insensitively.
        assert [column["Name"] for column in columns] == [name.lower() for name in spec_columns(spec)], name
        assert {column["Type"] for column in columns} == {"string"}, name


def test_weekly_top_content_columns_are_the_get_table_header(tables: dict[str, dict[str, Any]]) -> None:
    columns = tables["weekly_top_content"]["StorageDescriptor"]["Columns"]

    assert [column["Name"] for column in columns] == TOP_CONTENT_COLUMNS


def test_workgroup_enforces_encrypted_results_in_the_bucket(resources: dict[str, Any]) -> None:
    groups = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Athena::WorkGroup"]

    assert len(groups) == 1
    configuration = groups[0]["WorkGroupConfiguration"]
    results = configuration["ResultConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert results["OutputLocation"] == {"Fn::Sub": "s3://${ReportsBucket}/athena-results/"}
    assert results["EncryptionConfiguration"]["EncryptionOption"] in ("SSE_S3", "SSE_KMS")
    assert results["ExpectedBucketOwner"] == {"Ref": "AWS::AccountId"}
    assert configuration["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}


def test_the_readme_query_is_a_named_query_of_the_workgroup(resources: dict[str, Any]) -> None:
    queries = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Athena::NamedQuery"]

    assert len(queries) == 1
    assert queries[0]["WorkGroup"] == {"Ref": "AthenaWorkGroup"}
    assert "FROM room_attendees" in queries[0]["QueryString"]
    assert "partner_id = " in queries[0]["QueryString"]  # the injected partition must be named


def test_outputs_name_the_database_and_workgroup(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert outputs["AthenaDatabaseName"]["Value"] == {"Ref": "AthenaDatabase"}
    assert outputs["AthenaWorkGroupName"]["Value"] == {"Ref": "AthenaWorkGroup"}


def _location_of(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("${" + key + "}", value)
    return template.removeprefix("s3://BUCKET/")


def test_the_session_writer_puts_each_report_where_its_table_reads(tables: dict[str, dict[str, Any]]) -> None:
    prefix = session_prefix(1234567, date(2025, 1, 6), "0_room", "cp_1")
    pairs = [("room_sessions", "room_data"), ("room_attendees", "attendees")]
    pairs += [(f"room_{report.file_name}", report.file_name) for report in COLLAB_REPORTS.values()]
    for table, report in pairs:
        folder = _location_of(location_template(tables[table]), partner_id="1234567", date="2025-01-06")
        assert report_key(prefix, report).startswith(folder)


def test_the_weekly_jobs_put_each_report_where_its_table_reads(tables: dict[str, dict[str, Any]]) -> None:
    prefix = weekly_prefix(1234567, "2025-W02")
    folder = _location_of(location_template(tables["weekly_top_content"]), partner_id="1234567", week="2025-W02")

    assert report_key(prefix, "top_content").startswith(folder)


def test_the_audit_table_reads_the_trail_as_json_lines_where_the_trail_writes_it(resources: dict[str, Any]) -> None:
    table = all_tables(resources)[AUDIT_TABLE]
    storage = table["StorageDescriptor"]

    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert [column["Name"] for column in storage["Columns"]] == list(FACT_COLUMNS)
    assert [key["Name"] for key in table["PartitionKeys"]] == ["partner_id", "date"]
    assert table["Parameters"]["projection.date.type"] == "date"
    written = "s3://BUCKET/" + audit_partition(1234567, "2025-01-03")
    assert location_template(table).replace("${partner_id}", "1234567").replace("${date}", "2025-01-03") == written
