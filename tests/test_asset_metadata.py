"""What the UI shows of an asset: per-partition row counts of a range run, the column schema and
table name, owners and tags per domain, a code reference to the SQL file, a Markdown description
without SQL comment markers; ingestion's quarantine rate per materialization. Expected values
are worked out in the comments."""

import datetime as dt
from pathlib import Path

import dagster as dg

from tests.records import event


def _latest(lake, asset: str, partition: str | None = None) -> dict:
    records = lake.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def test_row_count_of_each_partition_of_a_range_run(lake):
    lake.drop(
        "usage_events",
        "u.jsonl",
        [  # 10-01: t1 x fraud_score (2 events), t1 x kyc_check, t2 x fraud_score -> 3 fact rows
            event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T08:00:00Z"),
            event(event_id="e2", tenant_id="t1", occurred_at="2026-10-01T09:00:00Z"),
            event(
                event_id="e3",
                tenant_id="t1",
                product="kyc_check",
                occurred_at="2026-10-01T10:00:00Z",
            ),
            event(event_id="e4", tenant_id="t2", occurred_at="2026-10-01T11:00:00Z"),
            # 10-02: t2 x fraud_score twice -> 1 fact row, 2 staged events
            event(event_id="e5", tenant_id="t2", occurred_at="2026-10-02T08:00:00Z"),
            event(event_id="e6", tenant_id="t2", occurred_at="2026-10-02T09:00:00Z"),
            "not json",  # 7 lines: 6 accepted + 1 quarantined
        ],
    )
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-10-01", "2026-10-02"]
    assert "daily_job 2026-10-01..2026-10-02" in report.runs  # the two days in one run
    assert list(report.seconds) == report.runs  # each run timed
    assert all(seconds > 0 for seconds in report.seconds.values())
    # one range run, a row count per partition
    assert _latest(lake, "fct_usage_daily", "2026-10-01")["dagster/row_count"] == 3
    assert _latest(lake, "fct_usage_daily", "2026-10-02")["dagster/row_count"] == 1
    # per-partition check results: usage conserved on each day
    assert _latest(lake, "fct_usage_daily", "2026-10-02")["violations/usage_units_conserved"] == 0
    # column schema and the name BI tools query it by
    facts = _latest(lake, "fct_usage_daily", "2026-10-01")
    columns = {c.name: c.type for c in facts["dagster/column_schema"].columns}
    assert (columns["usage_date"], columns["units"]) == ("date", "decimal(38, 0)")  # sums exact
    assert set(columns) >= {"usage_date", "customer_key", "tenant_id", "product", "events", "units"}
    # ingestion: rows of the raw table, this ingestion's quarantine rate (1 of 7 lines)
    raw = _latest(lake, "raw_usage_events")
    assert (raw["dagster/row_count"], raw["rows_quarantined"]) == (6, 1)
    assert raw["quarantine_rate"] == round(1 / 7, 6)
    # an unpartitioned model: its rows as the table holds them (no billing data: none)
    assert _latest(lake, "dim_customer")["dagster/row_count"] == 1  # the 'unknown' member


def test_definitions_name_owner_table_and_sql(lake):
    graph = lake.definitions().resolve_asset_graph()
    node = graph.get(dg.AssetKey("fct_usage_daily"))
    assert node.owners == ["team:product-analytics"]
    assert {k: node.tags[k] for k in ("domain", "layer")} == {"domain": "usage", "layer": "marts"}
    assert node.metadata["dagster/table_name"] == "iceberg.marts.fct_usage_daily"
    # its SQL, then the intermediates its build computes and never stores
    reference, *steps = node.metadata["dagster/code_references"].code_references
    assert Path(reference.file_path).read_text().startswith("-- fct_usage_daily: one row per")
    assert reference.file_path.endswith("sql/usage/fct_usage_daily.sql")
    assert [s.label for s in steps] == [
        "sql/usage/stg_usage_events.sql",
        "sql/usage/int_tenant_usage_daily.sql",
    ]
    assert node.metadata["intermediates"] == (
        "stg_usage_events (view), int_tenant_usage_daily (temp_table)"
    )
    assert node.description.startswith("fct_usage_daily: one row per (usage_date, customer_key")
    assert "--" not in node.description
    raw = graph.get(dg.AssetKey("raw_usage_events"))
    assert raw.owners == ["team:data-platform"]
    assert raw.freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=26)
    for key in graph.get_all_asset_keys():  # every asset has an owner and a description
        assert graph.get(key).owners and graph.get(key).description, key
