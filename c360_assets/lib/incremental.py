"""Series-local rebuilds: rewrite only the series whose input rows changed.

A model declares ``series`` (e.g. customer_key, tenant_id, product) when each of its rows depends
on its windowed inputs only through the rows of its own series, within ``rebuild_ahead`` days
before the row's day (a trailing baseline). Its unwindowed inputs (dimensions, mappings) may
matter to any row.

Every commit to such a model records a *watermark* in the Iceberg snapshot summary: the
snapshot id of each input it read and a hash of its SQL. The next build compares its inputs with
the watermark of the table's current snapshot:
- the windowed inputs' partitions whose data files changed since then are diffed row by row;
  the series of the differing rows are the *changed series*, and each changed day ``c`` makes the
  built days ``c .. c + rebuild_ahead`` *affected*;
- the affected days are rewritten for the changed series only (their other rows are kept);
- the run's own days are rebuilt in full when they cannot be patched: never built before, an
  unwindowed input changed, the SQL changed, or the run asks for it (tag ``c360/rebuild=full``).
Without a watermark (the first build, a table written before watermarks, an expired snapshot)
the model falls back to rebuilding the run's days and ``rebuild_ahead`` days after them in full.

The watermark only moves forward on a run's last commit: a run that fails halfway leaves the
older watermark, and the next build (of any day) diffs from it again, so no change is ever
skipped. Rewriting a series from current inputs is idempotent, so diffing too much is only work.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from pyiceberg.expressions import In
from pyiceberg.manifest import ManifestEntryStatus
from pyiceberg.table import Table

from c360_assets.lib.sqlmodel import (
    Read,
    connect,
    files_by_date,
    files_relation,
    identity_position,
    partition_value,
)
from resources.lakehouse import ALL_ROWS, DataFiles, LakehouseResource

WATERMARK = "c360.watermark"
FULL_TAG = "c360/rebuild"  # = "full": rebuild the run's days in full, whatever changed
# a patch span holds at most this many (series x day) cells: bounded memory, few scans
MAX_SPAN_CELLS = 1_000_000


@dataclass
class Plan:
    """What one build of a series-local model does."""

    mode: str  # "incremental" | "full" | "no watermark"
    full_days: list[dt.date]  # rebuilt completely
    patch_spans: list[tuple[dt.date, dt.date]]  # rewritten for the changed series only
    changed_series: pa.Table | None  # the series columns of every changed input row
    changed_days: list[dt.date] = field(default_factory=list)
    watermark: dict[str, str] = field(default_factory=dict)  # recorded by the last commit
    previous: dict[str, str] | None = None  # recorded by intermediate commits

    def metadata(self) -> dict:
        return {
            "rebuild_mode": self.mode,
            "changed_input_days": [d.isoformat() for d in self.changed_days],
            "changed_series": 0 if self.changed_series is None else self.changed_series.num_rows,
            "patched_days": sum((b - a).days for a, b in self.patch_spans),
        }


def watermark_now(lakehouse: LakehouseResource, reads: Iterable[Read], sql: str) -> dict:
    marks = {"sql": hashlib.sha256(sql.encode()).hexdigest()[:16]}
    for read in reads:
        marks[read.table] = str(lakehouse.current_snapshot_id(read.table))
    return marks


def recorded_watermark(lakehouse: LakehouseResource, table: str) -> dict | None:
    if not lakehouse.table_exists(table):
        return None
    snapshot = lakehouse.load(table).current_snapshot()
    props = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    return json.loads(props[WATERMARK]) if WATERMARK in props else None


def watermark_properties(marks: dict | None) -> dict[str, str]:
    return {WATERMARK: json.dumps(marks, sort_keys=True)} if marks else {}


def _files_by_day(
    table: Table, column: str, snapshot_id: int, days: set[dt.date] | None = None
) -> dict[dt.date, set[str]]:
    """The data files of each partition value of ``column`` in a snapshot (only ``days``)."""
    where = ALL_ROWS if days is None else In(column, [d.isoformat() for d in sorted(days)])
    found = files_by_date(table, column, where, snapshot_id=snapshot_id)
    if found is None:
        raise ValueError(f"{table.name()}: a series input must be partitioned by {column}")
    return {day: {f.file_path for f in files} for day, files in found.items()}


def committed_days(table: Table, column: str, before: int, now: int) -> set[dt.date] | None:
    """The values of ``column`` (a date the table is identity-partitioned by) of every data file
    the snapshots after ``before`` up to ``now`` added or removed, read from the manifests each
    of them wrote (a commit's own entries, not the table's whole file list); None when ``now``
    does not descend from ``before`` through snapshots that still exist (found from the table's
    metadata before any manifest is read), or a manifest was written with another partition
    spec: then only comparing the two snapshots' files tells."""
    position = identity_position(table, column)
    if position is None:
        return None
    chain = []
    snapshot_id: int | None = now
    while snapshot_id != before:
        snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
        if snapshot is None:
            return None
        chain.append(snapshot)
        snapshot_id = snapshot.parent_snapshot_id
    days: set[dt.date] = set()
    for snapshot in chain:
        for manifest in snapshot.manifests(table.io):
            if manifest.added_snapshot_id != snapshot.snapshot_id:
                continue  # carried over from an earlier commit
            if manifest.partition_spec_id != table.spec().spec_id:
                return None
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                if entry.status == ManifestEntryStatus.EXISTING:
                    continue  # a rewritten manifest's unchanged file
                days.add(partition_value(entry.data_file.partition[position]))
    return days


def changed_input(
    lakehouse: LakehouseResource, read: Read, before: int, now: int, series: tuple[str, ...]
) -> tuple[set[dt.date], pa.Table | None]:
    """The days of ``read.window_column`` whose rows differ between two snapshots of the input,
    and the distinct ``series`` of the differing rows, old and new (None: no day differs).

    Only the days the commits in between touched are compared (``committed_days``), so the cost
    follows the change, not the table's age; without that chain, every day of both snapshots."""
    if read.window_column is None:
        raise ValueError(f"{read.table}: a series input is read by a window column")
    table = lakehouse.load(read.table)
    if before == now:
        return set(), None
    if table.snapshot_by_id(before) is None:
        raise LookupError(f"{read.table}: snapshot {before} is gone")
    candidates = committed_days(table, read.window_column, before, now)
    if candidates is not None and not candidates:
        return set(), None
    old = _files_by_day(table, read.window_column, before, candidates)
    new = _files_by_day(table, read.window_column, now, candidates)
    days = {d for d in old.keys() | new.keys() if old.get(d) != new.get(d)}
    cols = ", ".join(f'"{c}"' for c in series)
    if not days:
        return days, None
    before_files = sorted(p for d in days for p in old.get(d, ()))
    after_files = sorted(p for d in days for p in new.get(d, ()))
    con = connect()
    try:
        # a day only one side has: the other side reads the same files, with no rows
        before_sql = _scan_sql(
            con,
            "before_files",
            lakehouse.data_files(table, before_files or after_files),
            bool(before_files),
        )
        after_sql = _scan_sql(
            con,
            "after_files",
            lakehouse.data_files(table, after_files or before_files),
            bool(after_files),
        )
        diff = f"""
            select distinct {cols} from (
                ({before_sql} except all {after_sql})
                union all
                ({after_sql} except all {before_sql})
            )
        """
        try:
            return days, con.sql(diff).to_arrow_table()
        except duckdb.Error:  # the two sides' columns differ (schema evolution): every series
            either = f"({before_sql}) union all by name ({after_sql})"
            return days, con.sql(f"select distinct {cols} from ({either})").to_arrow_table()
    finally:
        con.close()


def _scan_sql(con: duckdb.DuckDBPyConnection, name: str, files: DataFiles, rows: bool) -> str:
    scan = f"select * from {files_relation(con, name, files)}"
    return scan if rows else f"{scan} where false"


def _distinct(parts: list[pa.Table | None], series: tuple[str, ...]) -> pa.Table | None:
    parts = [p for p in parts if p is not None and p.num_rows]
    if not parts:
        return None
    return (
        pa.concat_tables(parts, promote_options="permissive").group_by(list(series)).aggregate([])
    )


def spans(days: Iterable[dt.date], series_count: int) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days cut into [start, end) spans of at most MAX_SPAN_CELLS series-days."""
    width = max(1, MAX_SPAN_CELLS // max(1, series_count))
    out: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if out and out[-1][1] == day and (day - out[-1][0]).days < width:
            out[-1] = (out[-1][0], day + dt.timedelta(days=1))
        else:
            out.append((day, day + dt.timedelta(days=1)))
    return out


def plan_build(
    lakehouse: LakehouseResource,
    table: str,
    reads: Iterable[Read],
    sql: str,
    series: tuple[str, ...],
    ahead: int,
    run_days: list[dt.date],
    materialized: set[dt.date],
    full_requested: bool,
) -> Plan:
    """The plan of one build. Without a usable watermark its mode is "no watermark": the
    caller rebuilds as before (the run's days and ``ahead`` days after them, in full).

    ``materialized``: the days built before; days between them count as built too (a day
    rewritten ahead of a run is not recorded as materialized by Dagster).
    """
    reads = list(reads)
    built = set()
    if materialized:
        first, last = min(materialized), max(materialized)
        built = {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}
    now = watermark_now(lakehouse, reads, sql)
    previous = recorded_watermark(lakehouse, table)
    windowed = [r for r in reads if r.window_column]
    no_watermark = Plan("no watermark", [], [], None, watermark=now)
    if previous is None or previous.get("sql") != now["sql"]:
        return no_watermark
    if any(previous.get(r.table) in (None, "None") for r in windowed):
        return no_watermark
    changed_days: set[dt.date] = set()
    parts = []
    try:
        for read in windowed:
            days, keys = changed_input(
                lakehouse, read, int(previous[read.table]), int(now[read.table]), series
            )
            changed_days |= days
            parts.append(keys)
    except LookupError:  # the recorded snapshot is gone (expired): nothing to diff from
        return no_watermark
    changed = _distinct(parts, series)
    unwindowed = [r for r in reads if not r.window_column]
    unwindowed_same = all(previous.get(r.table) == now[r.table] for r in unwindowed)
    patchable = unwindowed_same and not full_requested and set(run_days) <= materialized
    affected = {c + dt.timedelta(days=i) for c in changed_days for i in range(ahead + 1)} & built
    full_days = [] if patchable else sorted(run_days)
    patch_days = affected - set(full_days)
    count = changed.num_rows if changed is not None else 0
    return Plan(
        mode="incremental" if patchable else "full",
        full_days=full_days,
        patch_spans=spans(patch_days, count) if count else [],
        changed_series=changed,
        changed_days=sorted(changed_days),
        watermark=now,
        previous=previous,
    )
