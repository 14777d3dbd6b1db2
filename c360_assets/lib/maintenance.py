"""Table maintenance: compact small files, expire snapshots, remove orphan files. No row changes.

For every table of the catalog, in this order:
1. **compact** the partitions (or the unpartitioned table) that hold two or more data files, one
   of them small (late data appends a small file to a day of ``raw.usage_events``; every
   ingestion appends one to the unpartitioned raw tables): their rows are written again as one
   file set, in one commit, holding the leases a build of that partition holds, so no build
   commits into it meanwhile. The rows are the same rows: the rewrite is a replace of the
   partition by ``select *`` of itself. A table whose current snapshot carries an incremental
   watermark (``c360.watermark``) keeps it on the rewrite's snapshot.
2. **expire** the snapshots older than ``keep_days``, except the ones something still needs:
   - a tag or branch (``close-YYYY-MM``: the as-closed figures) and the current snapshot;
   - a snapshot an incremental watermark names (``usage_anomalies`` diffs
     ``fct_usage_daily`` from it: expiring it would widen the next build to a full fallback);
   - a snapshot whose summary lists landing files (ingestion's ledger, ``c360.files.<source>``)
     not yet in ``raw.landing_files``: the ledger keeps a re-run from appending them twice;
   - a snapshot superseded less than ``min_file_age`` ago (a reader may still be reading it).
   The expiry names the snapshots one by one (pyiceberg), so it keeps exactly these; a cutoff
   (Trino's ``expire_snapshots``) would keep everything newer than the oldest one needed too.
   The watermark tables' leases are held meanwhile, so no build records a new watermark that
   names a snapshot this expiry removes.
3. **remove orphan files**: files under the table's location that no snapshot, manifest or kept
   metadata file references (a killed writer's files, the files of expired snapshots), older
   than ``min_file_age`` (a running writer's files are younger: it commits them within
   minutes).

Two engines do steps 1 and 3: Trino's procedures (``optimize``, ``remove_orphan_files``) where
the serving stack is up, c360's own (DuckDB rewrite through ``write_query``; a listing of the
table's directory) where it is not. Both report the same figures.
"""

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from c360_assets.lib.incremental import WATERMARK
from c360_assets.lib.ingest import LANDING_FILES_TABLE
from c360_assets.lib.sqlmodel import Read, between, open_model_session, partition_value
from c360_assets.lib.tablestats import TableStats, table_files
from resources.lakehouse import ALL_ROWS, NAMESPACES, LakehouseResource
from resources.trino import TrinoResource

LEDGER_PREFIX = "c360.files."  # lib/ingest.ledger_key
SMALL_FILE_BYTES = 32 << 20
COMMIT_ATTEMPTS = 5
MAINTENANCE_PROPERTY = "c360.maintenance"


@dataclass(frozen=True)
class Policy:
    keep_days: float = 7.0
    min_file_age: dt.timedelta = dt.timedelta(hours=1)
    small_file_bytes: int = SMALL_FILE_BYTES

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(days=self.keep_days)


@dataclass(frozen=True)
class TableRole:
    """What maintenance must know of a table it may rewrite: the leases a writer of a partition
    (a date: its partition start; None: the unpartitioned table) holds. A table without a role
    is never rewritten (its snapshots are expired and its orphans removed all the same)."""

    identifier: str
    rewrite_leases: Callable[[dt.date | None], tuple[str, ...]]


@dataclass
class TableReport:
    table: str
    before: TableStats
    after: TableStats | None = None
    compacted: list[str] = field(default_factory=list)  # partition values ("" = whole table)
    expired: int = 0
    kept_needed: dict[str, int] = field(default_factory=dict)  # why -> snapshots kept
    orphans_removed: int = 0
    orphan_bytes_removed: int = 0
    disk_before: tuple[int, int] | None = None  # (files, bytes) under the table's location
    disk_after: tuple[int, int] | None = None

    def metadata(self) -> dict:
        found = {**self.before.as_metadata("before")}
        if self.after is not None:
            found.update(self.after.as_metadata("after"))
        if self.disk_before is not None and self.disk_after is not None:
            found.update(
                disk_files_before=self.disk_before[0],
                disk_bytes_before=self.disk_before[1],
                disk_files_after=self.disk_after[0],
                disk_bytes_after=self.disk_after[1],
            )
        found.update(
            partitions_compacted=len(self.compacted),
            snapshots_expired=self.expired,
            orphan_files_removed=self.orphans_removed,
            orphan_bytes_removed=self.orphan_bytes_removed,
            **{f"snapshots_kept_for_{why}": n for why, n in self.kept_needed.items()},
        )
        return found


@dataclass
class MaintenanceReport:
    engine: str
    tables: list[TableReport] = field(default_factory=list)
    seconds: float = 0.0


# -- what must be kept -------------------------------------------------------------------------
def needed_snapshots(lakehouse: LakehouseResource, tables: Iterable[str]) -> dict[str, dict]:
    """table -> snapshot id -> why it is needed (a watermark names it; its ledger lists files
    not yet logged). The file log is read before the tables: a file logged after that read
    keeps its ledger snapshots this time, which is only cautious."""
    logged: set[str] = set()
    if lakehouse.table_exists(LANDING_FILES_TABLE):
        logged = set(
            lakehouse.scan(LANDING_FILES_TABLE, columns=("file_sha256",))
            .column("file_sha256")
            .to_pylist()
        )
    needed: dict[str, dict[int, str]] = {}
    for identifier in tables:
        table = lakehouse.load(identifier)
        current = table.current_snapshot()
        props = current.summary.additional_properties if current and current.summary else {}
        if WATERMARK in props:
            for name, snapshot_id in json.loads(props[WATERMARK]).items():
                if name != "sql" and snapshot_id not in (None, "None"):
                    needed.setdefault(name, {})[int(snapshot_id)] = "watermark"
        for snapshot in table.snapshots():
            summary = snapshot.summary.additional_properties if snapshot.summary else {}
            for key, value in summary.items():
                if key.startswith(LEDGER_PREFIX) and set(value.split(",")) - logged:
                    needed.setdefault(identifier, {})[snapshot.snapshot_id] = "ledger"
    return needed


def expirable(
    table: Table, cutoff: dt.datetime, now: dt.datetime, min_age: dt.timedelta, needed: dict
) -> tuple[list[int], dict[str, int]]:
    """The snapshots to expire, and how many old ones were kept for each reason."""
    refs = {r.snapshot_id: str(r.snapshot_ref_type) for r in table.refs().values()}
    superseded: dict[int, int] = {}  # snapshot -> when its first child was committed (ms)
    for snapshot in table.snapshots():
        parent, at = snapshot.parent_snapshot_id, snapshot.timestamp_ms
        if parent is not None:
            superseded[parent] = min(superseded.get(parent, at), at)
    cutoff_ms, recent_ms = cutoff.timestamp() * 1000, (now - min_age).timestamp() * 1000
    ids: list[int] = []
    kept: dict[str, int] = {}
    for snapshot in table.snapshots():
        sid = snapshot.snapshot_id
        if snapshot.timestamp_ms >= cutoff_ms:
            continue
        if sid in refs:
            why = "tag" if refs[sid] == "tag" else "current"
        elif sid in needed:
            why = needed[sid]
        elif superseded.get(sid, snapshot.timestamp_ms) > recent_ms:
            why = "recently_superseded"
        else:
            ids.append(sid)
            continue
        kept[why] = kept.get(why, 0) + 1
    return ids, kept


def _expire(
    lakehouse: LakehouseResource, identifier: str, policy: Policy, now: dt.datetime, needed: dict
) -> tuple[int, dict[str, int]]:
    """Expire the table's expirable snapshots by id; plan again after a lost commit race."""
    for attempt in range(COMMIT_ATTEMPTS):
        table = lakehouse.load(identifier)
        ids, kept = expirable(table, policy.cutoff(now), now, policy.min_file_age, needed)
        if not ids:
            return 0, kept
        try:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
            return len(ids), kept
        except CommitFailedException:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
    return 0, {}


# -- compaction ----------------------------------------------------------------------------------
def partition_column(table: Table) -> str | None:
    """The column of the table's identity partition (c360 tables have at most one)."""
    schema = table.schema()
    for spec_field in table.spec().fields:
        if isinstance(spec_field.transform, IdentityTransform):
            return schema.find_column_name(spec_field.source_id)
    return None


def compaction_candidates(table: Table, small: int) -> list[dt.date | None]:
    """Partition values (None: the unpartitioned table) holding 2+ data files, one small."""
    column = partition_column(table)
    position = None
    if column is not None:
        source_id = table.schema().find_field(column).field_id
        fields = table.spec().fields
        position = next(i for i, f in enumerate(fields) if f.source_id == source_id)
    sizes: dict[dt.date | None, list[int]] = {}
    for task in table.scan().plan_files():
        value = partition_value(task.file.partition[position]) if position is not None else None
        sizes.setdefault(value, []).append(task.file.file_size_in_bytes)
    return sorted(
        (v for v, s in sizes.items() if len(s) >= 2 and min(s) < small),
        key=lambda v: (v is not None, v),
    )


def _stamp_properties(table: Table) -> dict[str, str]:
    """What a rewrite's snapshot must carry over from the current one (the watermark)."""
    current = table.current_snapshot()
    props = current.summary.additional_properties if current and current.summary else {}
    kept = {WATERMARK: props[WATERMARK]} if WATERMARK in props else {}
    return {**kept, MAINTENANCE_PROPERTY: "compact"}


class LocalEngine:
    """c360's own: DuckDB rewrites a partition through ``write_query``; orphans are found by
    listing the table's directory (a local warehouse)."""

    name = "pyiceberg"

    def __init__(self, lakehouse: LakehouseResource):
        self.lakehouse = lakehouse

    def compact(self, identifier: str, column: str | None, value: dt.date | None, props) -> None:
        window = (value, value + dt.timedelta(days=1)) if value is not None else None
        reads = {"kept_rows": Read(identifier, column)}
        with open_model_session(self.lakehouse, reads, window) as session:
            where = between(column, *window) if window and column else None
            session.write_output(
                self.lakehouse,
                identifier,
                "select * from kept_rows",
                where if where is not None else ALL_ROWS,
                (column,) if column else (),
                props,
            )

    def remove_orphans(self, identifier: str, older_than: dt.datetime) -> tuple[int, int] | None:
        table = self.lakehouse.load(identifier)
        root = _local_root(table)
        if root is None:
            return None  # an object store: only Trino lists it
        referenced = {_local_path(p) for p in table_files(table).all}
        removed, size = 0, 0
        for path in _listing(root):
            stat = path.stat()
            if str(path) in referenced or stat.st_mtime >= older_than.timestamp():
                continue
            path.unlink()
            removed, size = removed + 1, size + stat.st_size
        _remove_empty_dirs(root)
        return removed, size


class TrinoEngine:
    """Trino's table procedures, on the same tables (the serving stack's catalog)."""

    name = "trino"

    def __init__(self, lakehouse: LakehouseResource, trino: TrinoResource):
        self.lakehouse = lakehouse
        self.trino = trino

    def _name(self, identifier: str) -> str:
        namespace, table = identifier.split(".", 1)
        return f'{self.trino.catalog}."{namespace}"."{table}"'

    def compact(self, identifier: str, column: str | None, value: dt.date | None, props) -> None:
        where = ""
        if column is not None and value is not None:
            end = value + dt.timedelta(days=1)
            where = f" where \"{column}\" >= date '{value}' and \"{column}\" < date '{end}'"
        threshold = f"{SMALL_FILE_BYTES >> 20}MB"
        self.trino.query(
            f"alter table {self._name(identifier)} execute optimize"
            f"(file_size_threshold => '{threshold}'){where}"
        )
        _stamp(self.lakehouse.load(identifier), props)  # Trino's snapshot lacks the watermark

    def remove_orphans(self, identifier: str, older_than: dt.datetime) -> tuple[int, int] | None:
        table = self.lakehouse.load(identifier)
        root = _local_root(table)
        before = _disk(root)
        now = self.trino.query("select to_unixtime(current_timestamp)")[0][0]
        retention = max(0, int(now - older_than.timestamp()))
        self.trino.query(
            f"alter table {self._name(identifier)} execute remove_orphan_files"
            f"(retention_threshold => '{retention}s')"
        )
        after = _disk(root)
        if before is None or after is None:
            return None
        return before[0] - after[0], before[1] - after[1]


def _stamp(table: Table, props: dict[str, str]) -> None:
    """Record ``props`` in an empty snapshot (a watermark Trino's rewrite did not carry)."""
    if WATERMARK not in props:
        return
    with table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).fast_append():
        pass


# -- files on disk ------------------------------------------------------------------------------
def _local_path(uri: str) -> str:
    return uri.removeprefix("file://")


def _local_root(table: Table) -> Path | None:
    location = table.location()
    if location.startswith(("file://", "/")):
        return Path(_local_path(location))
    return None


def _listing(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


def _disk(root: Path | None) -> tuple[int, int] | None:
    if root is None:
        return None
    files = _listing(root)
    return len(files), sum(p.stat().st_size for p in files)


def _remove_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


# -- the whole pass ---------------------------------------------------------------------------
def catalog_tables(lakehouse: LakehouseResource) -> list[str]:
    catalog = lakehouse.catalog
    return sorted(".".join(t) for ns in NAMESPACES for t in catalog.list_tables(ns))


def maintain(
    lakehouse: LakehouseResource,
    roles: Sequence[TableRole],
    policy: Policy,
    trino: TrinoResource | None = None,
    now: dt.datetime | None = None,
    watermark_leases: Sequence[str] = (),
    log: Callable[[str], None] = lambda _: None,
) -> MaintenanceReport:
    """Maintain every table of the catalog (see the module). ``watermark_leases``: the leases of
    the tables whose builds record a watermark, held while snapshots are expired."""
    started = time.monotonic()
    engine = TrinoEngine(lakehouse, trino) if trino is not None else LocalEngine(lakehouse)
    report = MaintenanceReport(engine.name)
    by_table = {role.identifier: role for role in roles}
    tables = catalog_tables(lakehouse)
    for identifier in tables:
        table = lakehouse.load(identifier)
        entry = TableReport(identifier, TableStats.of(table_files(table)))
        root = _local_root(table)
        entry.disk_before = _disk(root)
        role = by_table.get(identifier)
        if role is not None:
            entry.compacted = _compact(lakehouse, engine, role, policy, log)
        report.tables.append(entry)
    now = now or dt.datetime.now(dt.UTC)
    with ExitStack() as held:
        for name in sorted(watermark_leases):
            held.enter_context(lakehouse.lease(name, on_wait=log))
        needed = needed_snapshots(lakehouse, tables)
        for entry in report.tables:
            entry.expired, entry.kept_needed = _expire(
                lakehouse, entry.table, policy, now, needed.get(entry.table, {})
            )
    older_than = dt.datetime.now(dt.UTC) - policy.min_file_age
    for entry in report.tables:
        removed = engine.remove_orphans(entry.table, older_than)
        if removed is not None:
            entry.orphans_removed, entry.orphan_bytes_removed = removed
        table = lakehouse.load(entry.table)
        entry.after = TableStats.of(table_files(table))
        entry.disk_after = _disk(_local_root(table))
        log(f"{entry.table}: {_summary(entry)}")
    report.seconds = time.monotonic() - started
    return report


def _compact(lakehouse, engine, role: TableRole, policy: Policy, log) -> list[str]:
    table = lakehouse.load(role.identifier)
    column = partition_column(table)
    done = []
    for value in compaction_candidates(table, policy.small_file_bytes):
        with ExitStack() as held:
            for name in sorted(role.rewrite_leases(value)):
                held.enter_context(lakehouse.lease(name, on_wait=log))
            current = lakehouse.load(role.identifier)
            if value not in compaction_candidates(current, policy.small_file_bytes):
                continue  # a build rewrote it meanwhile
            engine.compact(role.identifier, column, value, _stamp_properties(current))
        done.append(value.isoformat() if value is not None else "")
    return done


def _summary(entry: TableReport) -> str:
    before, after = entry.before, entry.after
    if after is None:
        raise ValueError(f"{entry.table}: maintenance has not finished")
    return (
        f"snapshots {before.snapshots} -> {after.snapshots}, data files {before.data_files} -> "
        f"{after.data_files}, {len(entry.compacted)} partition(s) compacted, "
        f"{entry.orphans_removed} orphan file(s) removed"
    )
