"""Table maintenance (lib/maintenance.py, `c360 maintain`) on a real embedded lakehouse: it changes
no row (every column of every table, load times included), compacts exactly the partitions that
late data split, expires every snapshot nothing needs and keeps the ones something does (the
close tag and its as-closed rows, the snapshot usage_anomalies' watermark names, a snapshot whose
ledger lists a file not yet logged), removes old orphans and leaves young ones, and a second pass
and a `c360 run` afterwards change nothing. Expected values are worked out in the comments."""

import datetime as dt
import os

import dagster as dg
import pytest

from c360_assets.definitions import all_models
from c360_assets.defs.automation.maintenance import table_roles, watermark_leases
from c360_assets.defs.close.assets import as_closed
from c360_assets.defs.ingest.sources import USAGE
from c360_assets.lib.ingest import ledger_key
from c360_assets.lib.maintenance import Policy, catalog_tables, maintain
from c360_assets.lib.partitions import range_tags
from c360_assets.lib.sqlmodel import connect
from c360_assets.tools.cli import main
from c360_assets.tools.runner import QUIET
from tests.records import event
from tests.test_close_month import OCTOBER, close, drop_october

UNLOGGED = "f" * 64  # the digest of a landing file whose rows landed but whose log entry did not


def every_row(lake) -> dict[str, list[tuple]]:
    """Every table of the catalog: all its rows, all columns, as sorted tuples."""
    found = {}
    for identifier in catalog_tables(lake.lakehouse):
        table = lake.lakehouse.scan(identifier)
        found[identifier] = sorted(tuple(map(repr, row.values())) for row in table.to_pylist())
    return found


def _maintain(lake, keep_days: float, min_age: dt.timedelta):
    report = maintain(
        lake.lakehouse,
        table_roles(all_models()),
        Policy(keep_days, min_age),
        watermark_leases=watermark_leases(all_models()),
    )
    return {entry.table: entry for entry in report.tables}


def _orphan(lake, table: str, name: str, age: dt.timedelta) -> str:
    """A file in the table's data folder that no snapshot references, ``age`` old."""
    folder = lake.lakehouse.load(table).location().removeprefix("file://") + "/data"
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(b"PAR1 written by a run that was killed before its commit")
    stamp = (dt.datetime.now(dt.UTC) - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _backfill_facts_alone(lake, day: dt.date) -> None:
    """fct_usage_daily for one day, without usage_anomalies (as a UI backfill of that asset)."""
    result = (
        lake.definitions()
        .resolve_job_def("daily_job")
        .execute_in_process(
            instance=lake.instance,
            tags=range_tags(day, day),
            asset_selection=[dg.AssetKey("fct_usage_daily")],
            run_config=QUIET,
        )
    )
    assert result.success


def _unlogged_ledger_entry(lake) -> None:
    """An empty commit to raw.usage_events whose ledger lists a file raw.landing_files lacks (a
    run killed between its raw commit and its file-log commit leaves such a snapshot)."""
    con = connect()
    try:
        con.register("nothing", lake.lakehouse.scan(USAGE.table).slice(0, 0))
        lake.lakehouse.write_query(
            con, USAGE.table, "select * from nothing", properties={ledger_key(USAGE): UNLOGGED}
        )
    finally:
        con.close()


def _snapshots(lake, table: str) -> int:
    return len(lake.lakehouse.load(table).snapshots())


@pytest.mark.dagster_home  # `c360 maintain` records its observations there
def test_maintenance_changes_no_row_and_keeps_what_is_needed(lake, capsys):
    drop_october(lake)
    lake.run()
    close(lake)  # tags the current snapshot of fct_customer_month close-2026-10
    # late usage for 10-02: raw.usage_events' 10-02 partition gets a second, small file; the
    # day, October and its restatements are rebuilt (fct_customer_month moves past the tag)
    lake.drop(
        "usage_events",
        "late.jsonl",
        [event(event_id="e6", tenant_id="t1", occurred_at="2026-10-02T20:00:00Z", quantity=12)],
    )
    lake.run()
    closed_rows = as_closed(lake.lakehouse, OCTOBER).to_pylist()
    # fct_usage_daily's 10-03 rebuilt alone: its current snapshot moves past the one that
    # usage_anomalies' watermark names (its next build diffs from that one)
    _backfill_facts_alone(lake, dt.date(2026, 10, 3))
    _unlogged_ledger_entry(lake)
    old = _orphan(lake, "marts.fct_usage_daily", "killed-run-old.parquet", dt.timedelta(hours=2))
    young = _orphan(lake, "marts.fct_usage_daily", "running-writer.parquet", dt.timedelta(0))
    rows = every_row(lake)
    fct_snapshots = _snapshots(lake, "marts.fct_usage_daily")

    # 1. keep 0 days, files younger than an hour stay: every snapshot was superseded less than
    # an hour ago, so none expires; compaction: raw.usage_events 10-02 (usage.jsonl + late.jsonl
    # = 2 files; 10-03 has 1) and raw.landing_files (one file per ingestion commit: 5 sources in
    # the first run + usage in the second = 6 files); every model partition is one file
    first = _maintain(lake, 0, dt.timedelta(hours=1))
    compacted = {t: e.compacted for t, e in first.items() if e.compacted}
    assert compacted == {"raw.usage_events": ["2026-10-02"], "raw.landing_files": [""]}
    assert sum(e.expired for e in first.values()) == 0
    assert first["marts.fct_usage_daily"].orphans_removed == 1  # the old orphan only
    assert not os.path.exists(old) and os.path.exists(young)
    assert every_row(lake) == rows
    files = lake.data_files("raw.usage_events")
    assert (len(files["2026-10-02"]), len(files["2026-10-03"])) == (1, 1)
    assert len(lake.data_files("raw.landing_files")[""]) == 1

    # 2. keep 0 days, any file age: one snapshot per table (none for the raw tables of sources
    # that had no file), except what is needed:
    # fct_customer_month and fct_usage_billing_reconciliation (tagged by the same close) keep the
    # close tag's snapshot (+ current), fct_usage_daily the one
    # the watermark names (+ current), raw.usage_events the unlogged ledger's (+ current)
    second = _maintain(lake, 0, dt.timedelta(0))
    kept = {t: _snapshots(lake, t) for t in first}
    assert {t: n for t, n in kept.items() if n > 1} == {
        "marts.fct_customer_month": 2,
        "marts.fct_usage_billing_reconciliation": 2,
        "marts.fct_usage_daily": 2,
        "raw.usage_events": 2,
    }
    assert all(n == 1 for t, n in kept.items() if first[t].before.snapshots and n < 2)
    assert second["marts.fct_customer_month"].kept_needed == {"tag": 1, "current": 1}
    reconciliation = second["marts.fct_usage_billing_reconciliation"]
    assert reconciliation.kept_needed == {"tag": 1, "current": 1}
    assert second["marts.fct_usage_daily"].kept_needed == {"watermark": 1, "current": 1}
    assert second["raw.usage_events"].kept_needed == {"ledger": 1, "current": 1}
    assert second["marts.fct_usage_daily"].expired == fct_snapshots - 2
    assert not os.path.exists(young)
    assert every_row(lake) == rows
    assert as_closed(lake.lakehouse, OCTOBER).to_pylist() == closed_rows
    assert UNLOGGED in lake.lakehouse.ledger(USAGE.table, ledger_key(USAGE))
    for table, entry in second.items():  # fewer (or as many) snapshots everywhere
        assert entry.after.snapshots <= first[table].before.snapshots, table
    # fewer files in all (raw.usage_events holds more: its compacted day's old files stay for
    # the ledger snapshot that still references them)
    disk = {t: (first[t].disk_before[0], e.disk_after[0]) for t, e in second.items()}
    assert sum(after for _, after in disk.values()) < sum(before for before, _ in disk.values())
    assert all(disk[t][1] < disk[t][0] for t in ("marts.fct_usage_daily", "raw.landing_files"))

    # 3. twice is harmless: `c360 maintain` (the Dagster job) finds nothing to do
    assert main(["maintain", "--keep-days", "0", "--min-file-age-hours", "0"]) == 0
    out = capsys.readouterr().out
    assert "maintenance_job (pyiceberg" in out
    assert every_row(lake) == rows
    assert {t: _snapshots(lake, t) for t in first} == kept
    observed = lake.instance.fetch_observations(dg.AssetKey("fct_usage_daily"), limit=1).records
    metadata = observed[0].asset_observation.metadata
    assert (metadata["snapshots_before"].value, metadata["snapshots_after"].value) == (2, 2)
    assert metadata["partitions_compacted"].value == 0

    # 4. a run afterwards rebuilds only what the backfill left out (usage_anomalies for 10-03,
    # diffing from the kept watermark: incremental, not a full fallback) and its month, and
    # changes no row
    report = lake.run()
    assert (report.rebuilt, report.partial["daily"]) == (
        {"daily": [], "monthly": ["2026-10-01"]},
        {"2026-10-03": ["usage_anomalies"]},
    )
    record = lake.instance.fetch_materializations(dg.AssetKey("usage_anomalies"), limit=1)
    anomalies = record.records[0].asset_materialization.metadata
    assert anomalies["rebuild_mode"].value == "incremental"
    assert anomalies["changed_input_days"].value == ["2026-10-03"]  # its files, not its rows
    assert every_row(lake) == rows
