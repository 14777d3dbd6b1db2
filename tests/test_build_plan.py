"""How a build is cut into commits, on a real embedded lakehouse (SQLite catalog, local
warehouse, DuckDB): the windows of a partitioned model's steps (lib/models.py), the plan of a
series-local rebuild (lib/incremental.py) and a table's row count (lib/tablestats.py), with
hand-worked values. No Dagster run."""

import datetime as dt
import hashlib

import pytest
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import DataScan

from c360_assets.definitions import all_models
from c360_assets.lib import incremental
from c360_assets.lib.models import (
    Model,
    group_steps,
    rows_per_partition,
    step_windows,
    whole_table_steps,
)
from c360_assets.lib.sqlmodel import Read, between, connect, files_by_date, sql_text
from c360_assets.lib.tablestats import table_row_count
from resources.lakehouse import ALL_ROWS, LakehouseResource

DAILY = "core.daily_units"  # (usage_date, k, units), identity-partitioned by usage_date
KEYS = "core.keys"  # (k), unpartitioned
MODEL = "marts.scored"  # the series-local model's own table
SQL = "select usage_date, k, units from daily_units"
READS = [Read(DAILY, "usage_date", lookback_days=2), Read(KEYS)]
OCT = {n: dt.date(2026, 10, n) for n in range(1, 32)}


@pytest.fixture
def lakehouse(tmp_path) -> LakehouseResource:
    return LakehouseResource(
        catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse=str(tmp_path / "warehouse"),
        landing_dir=str(tmp_path / "landing"),
    )


def write(
    lakehouse, table: str, rows: list[tuple], columns: str, where=ALL_ROWS, **options
) -> None:
    """Replace ``where`` of ``table`` with ``rows`` (tuples of SQL literals)."""
    values = ", ".join("(" + ", ".join(row) + ")" for row in rows)
    sql = f"select * from (values {values}) as t({columns})"
    con = connect()
    try:
        lakehouse.write_query(con, table, sql, replace=where, **options)
    finally:
        con.close()


def daily(lakehouse, rows: list[tuple[int, str, int]], where=ALL_ROWS) -> None:
    literal = [(f"date '2026-10-{d:02d}'", f"'{k}'", str(u)) for d, k, u in rows]
    write(lakehouse, DAILY, literal, "usage_date, k, units", where, partition_by=("usage_date",))


def on(day: int) -> BooleanExpression:
    """The rows of one October day."""
    return between("usage_date", OCT[day], OCT[day] + dt.timedelta(days=1))


# -- step windows ----------------------------------------------------------------------------
def test_adjacent_partitions_share_a_step_up_to_the_row_limit():
    parts = [(OCT[d], OCT[d + 1]) for d in (1, 2, 3, 5)]
    rows = {OCT[1]: 2, OCT[2]: 1, OCT[3]: 1, OCT[5]: 0}
    assert group_steps(parts, rows, limit=3) == [
        (OCT[1], OCT[3]),
        (OCT[3], OCT[4]),
        (OCT[5], OCT[6]),
    ]
    # a partition over the limit is a step of its own
    assert group_steps(parts, rows, limit=1) == [
        (OCT[1], OCT[2]),
        (OCT[2], OCT[3]),
        (OCT[3], OCT[4]),
        (OCT[5], OCT[6]),
    ]
    # counts unknown: one partition per step
    assert group_steps(parts, None, limit=3) == parts


def scored(partitioning: str = "daily") -> Model:
    column = "usage_date" if partitioning == "daily" else "month"
    return Model(
        name="scored",
        layer="marts",
        domain="risk",
        reads={"daily_units": READS[0], "keys": READS[1]},
        grain=(column, "k"),
        partitioning=partitioning,
        partition_column=column,
    )


def test_step_windows_count_the_windowed_input_rows_in_the_manifests(lakehouse, monkeypatch):
    daily(lakehouse, [(1, "a", 1), (1, "b", 1), (2, "a", 1), (3, "b", 1), (30, "a", 1)])
    write(lakehouse, KEYS, [("'a'",), ("'b'",)], "k")
    window = (OCT[1], OCT[4])
    # only the windowed input counts, only within the window (not its lookback)
    assert rows_per_partition(lakehouse, scored(), window) == {OCT[1]: 2, OCT[2]: 1, OCT[3]: 1}
    assert step_windows(lakehouse, scored(), window) == [window]
    monkeypatch.setattr("c360_assets.lib.models.MAX_STEP_ROWS", 2)
    assert step_windows(lakehouse, scored(), window) == [(OCT[1], OCT[2]), (OCT[2], OCT[4])]
    # a monthly model counts its months' days
    september = dt.date(2026, 9, 1)
    assert rows_per_partition(
        lakehouse, scored("monthly"), (september, OCT[31] + dt.timedelta(days=1))
    ) == {OCT[1]: 5}
    assert step_windows(lakehouse, scored(), None) == [None]


# -- series-local rebuilds -------------------------------------------------------------------
@pytest.fixture
def built(lakehouse):
    """Inputs and the model's table, written with the watermark of the inputs as they are."""
    daily(lakehouse, [(1, "a", 1), (1, "b", 1), (2, "a", 1), (3, "b", 1)])
    write(lakehouse, KEYS, [("'a'",), ("'b'",)], "k")
    marks = incremental.watermark_now(lakehouse, READS, SQL)
    write(
        lakehouse,
        MODEL,
        [("date '2026-10-01'", "'a'", "1")],
        "usage_date, k, units",
        partition_by=("usage_date",),
        properties=incremental.watermark_properties(marks),
    )
    return lakehouse


def plan(lakehouse, run_days, sql=SQL, full=False, materialized=(1, 2, 5)) -> incremental.Plan:
    """The plan of a build of ``run_days`` (days of October) after ``materialized`` days."""
    return incremental.plan_build(
        lakehouse,
        MODEL,
        READS,
        sql,
        ("k",),
        2,  # rebuild_ahead: a day's rows depend on the 2 days before it
        [OCT[d] for d in run_days],
        {OCT[d] for d in materialized},  # the days between count as built too
        full_requested=full,
    )


def series(found: incremental.Plan) -> list[str] | None:
    return (
        None
        if found.changed_series is None
        else sorted(found.changed_series.column("k").to_pylist())
    )


def test_nothing_changed_plans_no_rewrite(built):
    found = plan(built, [2])
    assert (found.mode, found.full_days, found.patch_spans, series(found)) == (
        "incremental",
        [],
        [],
        None,
    )


def test_a_changed_day_rewrites_its_series_on_the_days_whose_baseline_holds_it(built):
    daily(built, [(2, "a", 5)], on(2))  # a's 10-02 changes
    daily(built, [(4, "b", 1)], on(4))  # b gets a first 10-04
    found = plan(built, [2])
    assert found.mode == "incremental"
    assert found.changed_days == [OCT[2], OCT[4]]
    assert series(found) == ["a", "b"]
    # 10-02 reaches 10-02..10-04, 10-04 reaches 10-04..10-06; built through 10-05
    assert found.patch_spans == [(OCT[2], OCT[6])]
    assert found.full_days == []
    assert found.metadata() == {
        "rebuild_mode": "incremental",
        "changed_input_days": ["2026-10-02", "2026-10-04"],
        "changed_series": 2,
        "patched_days": 4,
    }


def test_only_the_days_the_commits_since_the_watermark_touched_are_compared(built, monkeypatch):
    before = built.current_snapshot_id(DAILY)
    daily(built, [(2, "a", 5)], on(2))  # 10-02 replaced: a file removed, one added
    middle = built.current_snapshot_id(DAILY)
    daily(built, [(2, "b", 1)], on(3))  # 10-03's file removed (only a deleted entry), 10-02 added
    daily(built, [(9, "c", 1)], on(9))  # 10-09 appended (nothing to replace)
    daily(built, [(9, "c", 1)], on(9))  # 10-09 again, the same row: other files, same rows
    now = built.current_snapshot_id(DAILY)
    table = built.load(DAILY)
    # 10-01 was carried over untouched in every manifest list since
    assert incremental.committed_days(table, "usage_date", before, now) == {
        OCT[2],
        OCT[3],
        OCT[9],
    }
    assert incremental.committed_days(table, "usage_date", middle, now) == {
        OCT[2],
        OCT[3],
        OCT[9],
    }
    assert incremental.committed_days(table, "usage_date", now, now) == set()
    # not an ancestor: no chain of commits to read
    assert incremental.committed_days(table, "usage_date", now, before) is None
    read = READS[0]
    # the snapshots' files are listed for those days only (the row filter of each listing)
    filters = []

    def listed(table, column, row_filter, snapshot_id=None):
        filters.append(str(row_filter))
        return files_by_date(table, column, row_filter, snapshot_id)

    monkeypatch.setattr(incremental, "files_by_date", listed)
    days, keys = incremental.changed_input(built, read, before, now, ("k",))
    assert (days, sorted(keys.column("k").to_pylist())) == ({OCT[2], OCT[3], OCT[9]}, list("abc"))
    assert len(filters) == 2  # before and now
    for text in filters:
        assert all(OCT[d].isoformat() in text for d in (2, 3, 9)), text
        assert OCT[1].isoformat() not in text, text
    filters.clear()
    # a snapshot in between expired: the chain is broken, so both snapshots' files are compared
    # day by day, and the rows of the same days differ
    table.maintenance.expire_snapshots().by_ids([middle]).commit()
    table = built.load(DAILY)
    assert incremental.committed_days(table, "usage_date", before, now) is None
    days, keys = incremental.changed_input(built, read, before, now, ("k",))
    assert (days, sorted(keys.column("k").to_pylist())) == ({OCT[2], OCT[3], OCT[9]}, list("abc"))
    assert filters == [str(ALL_ROWS)] * 2  # every file of both snapshots


def test_run_days_are_rebuilt_in_full_when_they_cannot_be_patched(built):
    daily(built, [(2, "a", 5)], on(2))
    # asked for: the run's day in full, the days after it patched
    found = plan(built, [2], full=True)
    assert (found.mode, found.full_days, found.patch_spans) == (
        "full",
        [OCT[2]],
        [(OCT[3], OCT[5])],
    )
    # a day never built before
    found = plan(built, [7])
    assert (found.mode, found.full_days, found.patch_spans) == (
        "full",
        [OCT[7]],
        [(OCT[2], OCT[5])],
    )
    # an unwindowed input (a mapping) changed: any row may change
    write(built, KEYS, [("'a'",)], "k")
    assert plan(built, [2]).mode == "full"


def test_a_changed_sql_or_a_table_without_watermark_rebuilds_as_before(built, lakehouse):
    assert plan(built, [2], sql=SQL + " where units > 0").mode == "no watermark"
    write(lakehouse, MODEL, [("date '2026-10-01'", "'a'", "1")], "usage_date, k, units")
    found = plan(lakehouse, [2])
    assert found.mode == "no watermark"
    assert found.watermark == incremental.watermark_now(lakehouse, READS, SQL)


def test_spans_cut_long_runs_by_the_cell_budget(monkeypatch):
    monkeypatch.setattr(incremental, "MAX_SPAN_CELLS", 800_000)
    # 400,000 series: 2 days a span
    assert incremental.spans([OCT[d] for d in (1, 2, 3, 4, 5, 7)], 400_000) == [
        (OCT[1], OCT[3]),
        (OCT[3], OCT[5]),
        (OCT[5], OCT[6]),
        (OCT[7], OCT[8]),
    ]
    assert incremental.spans([OCT[3], OCT[1], OCT[2]], 1) == [(OCT[1], OCT[4])]


# -- unpartitioned models --------------------------------------------------------------------
def test_an_unpartitioned_model_is_rewritten_only_when_an_input_changed(lakehouse):
    (rates,) = [m for m in all_models() if m.name == "stg_billing_fx_rates"]
    raw = "raw.billing_fx_rates"
    write(lakehouse, raw, [("date '2026-10-05'", "'EUR'")], "rate_date, currency")
    (step,), plan = whole_table_steps(lakehouse, rates, full_requested=False)
    assert (step.window, step.series, plan) == (None, None, {})
    marks = incremental.watermark_now(lakehouse, rates.reads.values(), sql_text(rates.sql_path))
    assert marks == {
        "sql": hashlib.sha256(sql_text(rates.sql_path).encode()).hexdigest()[:16],
        raw: str(lakehouse.current_snapshot_id(raw)),
    }
    assert step.properties == incremental.watermark_properties(marks)
    # its commit records the watermark: the same inputs and SQL again write nothing
    write(lakehouse, rates.table, [("'EUR'",)], "currency", properties=step.properties)
    assert whole_table_steps(lakehouse, rates, full_requested=False) == (
        [],
        {"rebuild_mode": "unchanged"},
    )
    (forced,), _ = whole_table_steps(lakehouse, rates, full_requested=True)
    assert forced.properties == step.properties
    # a new snapshot of the input: rewritten, recording the new watermark
    write(lakehouse, raw, [("date '2026-10-06'", "'EUR'")], "rate_date, currency")
    (changed,), _ = whole_table_steps(lakehouse, rates, full_requested=False)
    assert changed.properties != step.properties


def test_a_row_count_is_the_snapshot_summary_total_after_appends_replaces_and_deletes(
    lakehouse, monkeypatch
):
    def files_total() -> int:
        return sum(t.file.record_count for t in lakehouse.load(DAILY).scan().plan_files())

    def summary_total() -> int:  # the count without listing a file
        with monkeypatch.context() as patched:
            patched.setattr(DataScan, "plan_files", None)
            return table_row_count(lakehouse, DAILY)

    daily(lakehouse, [(1, "a", 1), (1, "b", 1), (2, "a", 1)])
    assert summary_total() == files_total() == 3
    daily(lakehouse, [(2, "a", 5), (2, "c", 1)], on(2))  # 10-02: 1 row replaced by 2
    assert summary_total() == files_total() == 4
    daily(lakehouse, [(9, "c", 1)], on(9))  # appended
    assert summary_total() == files_total() == 5
    lakehouse.load(DAILY).delete(on(1))  # 10-01's two rows
    assert summary_total() == files_total() == 3


def test_a_table_written_day_by_day_keeps_few_manifests_and_its_commits_readable(lakehouse):
    snapshots = {}
    for d in range(1, 21):
        daily(lakehouse, [(d, "a", d)], on(d))
        snapshots[d] = lakehouse.current_snapshot_id(DAILY)
    table = lakehouse.load(DAILY)
    # one manifest per commit unless merged: the table property merges them at 16
    assert len(table.current_snapshot().manifests(table.io)) < 16
    assert table_row_count(lakehouse, DAILY) == 20
    # the commits after day 10's, across the merges: days 11..20 (merged entries are EXISTING)
    found = incremental.committed_days(table, "usage_date", snapshots[10], snapshots[20])
    assert found == {OCT[d] for d in range(11, 21)}
