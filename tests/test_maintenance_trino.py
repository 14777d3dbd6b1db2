"""`c360 maintain` with the serving stack up: Trino's `optimize` and `remove_orphan_files` do
what c360's own engine does on the same data. Two lakehouses from one landing zone (with a late
batch, so raw days hold several files): one in the stack's catalog, maintained through Trino,
one embedded, maintained by pyiceberg + DuckDB. Both keep every row, compact the same
partitions and end with the same snapshots; Trino still reads every table. The seconds each
engine took are printed (docs/performance.md)."""

import datetime as dt
import json

import dagster as dg
import pytest

from c360_assets.definitions import all_models, build_definitions
from c360_assets.defs.automation.maintenance import table_roles, watermark_leases
from c360_assets.lib.maintenance import Policy, catalog_tables, maintain
from c360_assets.tools.generate import generate_landing, generate_late_batch
from c360_assets.tools.runner import run_pipeline
from resources.lakehouse import LakehouseResource

START, DAYS, CUSTOMERS, EVENTS = dt.date(2026, 10, 1), 6, 40, 400
LOAD_TIME = {"_ingested_at", "ingested_at", "detected_at", "batch_id", "file_mtime_ns"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    shape = dict(customers=CUSTOMERS, start=START, days=DAYS, events_per_day=EVENTS)
    generate_landing(root, progress=False, **shape)
    return root, shape


def _run(lakehouse: LakehouseResource, home) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        report = run_pipeline(build_definitions(lakehouse), instance, all_models())
    assert report.ok, report


def _rows(lakehouse: LakehouseResource, load_time: bool = True) -> dict[str, list[tuple]]:
    found = {}
    for identifier in catalog_tables(lakehouse):
        table = lakehouse.scan(identifier)
        columns = [c for c in table.column_names if load_time or c not in LOAD_TIME]
        rows = table.select(columns).to_pylist()
        found[identifier] = sorted(tuple(repr(r[c]) for c in columns) for r in rows)
    return found


def test_trino_maintenance_matches_pyiceberg_on_the_same_data(
    trino_stack, landing, tmp_path, monkeypatch
):
    root, shape = landing
    monkeypatch.setenv("C360_LANDING_DIR", str(root))
    trino_stack.reset_catalog()
    served = LakehouseResource(
        catalog_uri=trino_stack.catalog_uri,
        warehouse=str(tmp_path / "served"),
        catalog_name=trino_stack.config.catalog_name,
        landing_dir=str(root),
    )
    embedded = LakehouseResource(
        catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse=str(tmp_path / "embedded"),
        catalog_name="c360",
        landing_dir=str(root),
    )
    homes = [(served, tmp_path / "home-served"), (embedded, tmp_path / "home-embedded")]
    for lake, home in homes:  # the landing zone, by a `c360 run` of each
        home.mkdir()
        _run(lake, home)
    generate_late_batch(root, events_per_origin_day=30, progress=False, **shape)
    for lake, home in homes:  # a late batch for three earlier days, the same way
        _run(lake, home)

    rows = {name: _rows(lake) for name, lake in (("served", served), ("embedded", embedded))}
    assert _rows(served, load_time=False) == _rows(embedded, load_time=False)
    policy = Policy(keep_days=0, min_file_age=dt.timedelta(0))
    roles, leases = table_roles(all_models()), watermark_leases(all_models())
    by_trino = maintain(served, roles, policy, trino_stack.trino(), watermark_leases=leases)
    by_pyiceberg = maintain(embedded, roles, policy, watermark_leases=leases)
    assert (by_trino.engine, by_pyiceberg.engine) == ("trino", "pyiceberg")

    assert _rows(served) == rows["served"] and _rows(embedded) == rows["embedded"]
    trino_tables = {e.table: e for e in by_trino.tables}
    pyiceberg_tables = {e.table: e for e in by_pyiceberg.tables}
    compacted = {t: e.compacted for t, e in pyiceberg_tables.items() if e.compacted}
    assert {t: e.compacted for t, e in trino_tables.items() if e.compacted} == compacted
    assert compacted["raw.usage_events"]  # the late batch's days
    for table, entry in trino_tables.items():  # the same snapshots and current data files
        other = pyiceberg_tables[table]
        assert entry.after.snapshots == other.after.snapshots, table
        assert entry.after.current_data_files == other.after.current_data_files, table
        if entry.compacted:  # fewer data files where partitions were compacted
            assert entry.after.data_files < entry.before.data_files, table
    for report in (by_trino, by_pyiceberg):  # fewer files on disk in all
        disk = [(e.disk_before[0], e.disk_after[0]) for e in report.tables]
        assert sum(after for _, after in disk) < sum(before for before, _ in disk), report.engine
    # Trino reads what it rewrote: the same count as pyiceberg's scan of the table
    admin = trino_stack.trino()
    (count,) = admin.query('select count(*) from iceberg."raw"."usage_events"')[0]
    assert count == len(rows["served"]["raw.usage_events"])

    # twice is harmless, and a run afterwards builds nothing
    again = maintain(served, roles, policy, trino_stack.trino(), watermark_leases=leases)
    assert sum(len(e.compacted) + e.expired + e.orphans_removed for e in again.tables) == 0
    with dg.DagsterInstance.from_config(str(tmp_path / "home-served")) as instance:
        report = run_pipeline(build_definitions(served), instance, all_models())
    assert report.rebuilt == {"daily": [], "monthly": []}
    assert _rows(served) == rows["served"]
    print(
        "MAINTENANCE_SECONDS "
        + json.dumps(
            {
                "trino": round(by_trino.seconds, 2),
                "pyiceberg": round(by_pyiceberg.seconds, 2),
                "compacted_partitions": sum(len(v) for v in compacted.values()),
                "files_before": sum(e.disk_before[0] for e in by_pyiceberg.tables),
                "files_after": sum(e.disk_after[0] for e in by_pyiceberg.tables),
            }
        )
    )
