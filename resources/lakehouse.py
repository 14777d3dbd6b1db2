"""The lakehouse resource: the one place that knows the Iceberg catalog, warehouse and landing.

Every asset reads and writes Iceberg through this resource. Writes come in two kinds only:
- replace exactly the rows matching a filter (a partition): repeatable;
- append, recording in the snapshot summary a ledger of what was appended (the landing files'
  digests), so a caller never appends the same input twice, even after a crash mid-way.
Commits are optimistic: a commit that lost a race with another writer is retried on the new
table state (pyiceberg re-validates it: a replace whose window another writer changed fails
instead of overwriting it). What must not run at once is serialized by ``lease`` (a row in the
catalog's database, see ``resources/leases.py``).
Besides data, ``create_tag`` names a snapshot (a month close) so it stays readable forever.
"""

import functools
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table
from pyiceberg.types import NestedField

from resources.leases import Lease, Leases, check_held

NAMESPACES = ("raw", "staging", "core", "marts")
ALL_ROWS = AlwaysTrue()
# Parallel partition runs commit to one table at once: a commit that lost the race is retried
# on the new state (different partitions never conflict), with more patience than the default.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "12",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "5000",
}


def _abs_uri(path_or_uri: str) -> str:
    if "://" in path_or_uri:
        return path_or_uri
    return Path(path_or_uri).resolve().as_uri()


def _sqlite_dir(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return Path(uri[len(prefix) :]).parent
    return None


@functools.cache
def _open_catalog(name: str, uri: str, warehouse: str) -> Catalog:
    sqlite_dir = _sqlite_dir(uri)
    if sqlite_dir is not None:
        sqlite_dir.mkdir(parents=True, exist_ok=True)
    if warehouse.startswith("file://"):
        Path(warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    # A server catalog (PostgreSQL in the stack) outlives this process's pooled connections:
    # after `c360 stack down/up` a cached catalog would fail its first query without a ping.
    server = {} if sqlite_dir is not None else {"pool_pre_ping": "true"}
    catalog = SqlCatalog(name, uri=uri, warehouse=warehouse, **server)
    for namespace in NAMESPACES:
        catalog.create_namespace_if_not_exists(namespace)
    return catalog


def _normalize_arrow(table: pa.Table) -> pa.Table:
    """Iceberg-friendly Arrow types: microsecond timestamps, plain strings."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_timestamp(kind) and kind.unit != "us":
            kind = pa.timestamp("us", tz=kind.tz)
        elif pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(field.name, kind, nullable=True))
    schema = pa.schema(fields)
    return table if schema == table.schema else table.cast(schema)


def duckdb_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> dict[str, str]:
    """DuckDB's type for each field of an Arrow schema (as DuckDB would read that Arrow)."""
    con.register("schema_probe", schema.empty_table())
    types = con.sql("select * from schema_probe").types
    con.unregister("schema_probe")
    return {name: str(kind) for name, kind in zip(schema.names, types, strict=True)}


def _field_id(field: NestedField) -> str:
    """A column's Iceberg field ids in DuckDB's FIELD_IDS syntax (nested: per child)."""
    kind = field.field_type
    if kind.is_primitive:
        return str(field.field_id)
    if kind.is_struct:
        children = ", ".join(f'"{c.name}": {_field_id(c)}' for c in kind.fields)
        return f"{{__duckdb_field_id: {field.field_id}, {children}}}"
    raise NotImplementedError(f"{field.name}: lists and maps are not written through DuckDB")


class LakehouseResource(dg.ConfigurableResource):
    """Iceberg catalog + warehouse + landing zone, configured from the environment."""

    catalog_uri: str
    warehouse: str
    catalog_name: str = "c360"
    landing_dir: str

    @classmethod
    def from_env(cls) -> "LakehouseResource":
        return cls(
            catalog_uri=os.environ.get("C360_CATALOG_URI", "sqlite:///./data/catalog.db"),
            warehouse=os.environ.get("C360_WAREHOUSE", "./data/warehouse"),
            catalog_name=os.environ.get("C360_CATALOG_NAME", "c360"),
            landing_dir=os.environ.get("C360_LANDING_DIR", "./data/landing"),
        )

    # -- catalog ---------------------------------------------------------------------------
    @property
    def catalog_db_uri(self) -> str:
        """The catalog's database (relative SQLite paths made absolute and stable)."""
        uri = self.catalog_uri
        sqlite_dir = _sqlite_dir(uri)
        if sqlite_dir is not None:
            sqlite_dir.mkdir(parents=True, exist_ok=True)
            uri = "sqlite:///" + str((sqlite_dir / Path(uri).name).resolve())
        return uri

    @property
    def catalog(self) -> Catalog:
        return _open_catalog(self.catalog_name, self.catalog_db_uri, _abs_uri(self.warehouse))

    @property
    def leases(self) -> Leases:
        return Leases(self.catalog_db_uri, self.catalog_name)

    def lease(
        self, name: str, on_wait: Callable[[str], None] | None = None
    ) -> AbstractContextManager[Lease]:
        """Hold the lease ``name`` in the catalog's database for a block (``Leases.hold``)."""
        return self.leases.hold(name, on_wait=on_wait)

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir).resolve()

    def table_exists(self, identifier: str) -> bool:
        return self.catalog.table_exists(identifier)

    def load(self, identifier: str) -> Table:
        return self.catalog.load_table(identifier)

    def ensure_table(
        self, identifier: str, schema: pa.Schema, partition_by: Iterable[str] = ()
    ) -> Table:
        """Create the table from an Arrow schema (identity partitions), or evolve it to match.

        Creation is one commit holding the schema, the partition spec and the commit-retry
        properties, so a concurrent writer never sees the table half made; two creators race
        harmlessly (the loser loads the winner's table), and so do two schema evolutions.
        """
        schema = _normalize_arrow(schema.empty_table()).schema
        for _ in range(5):
            try:
                table = self.catalog.load_table(identifier)
            except NoSuchTableError:
                return self._create_table(identifier, schema, tuple(partition_by))
            missing = [f for f in schema if f.name not in table.schema().column_names]
            stale = {k: v for k, v in TABLE_PROPERTIES.items() if table.properties.get(k) != v}
            if not missing and not stale:
                return table
            try:
                with table.transaction() as tx:
                    if stale:  # a table made before these properties existed
                        tx.set_properties(stale)
                    if missing:
                        with tx.update_schema() as update:
                            update.union_by_name(schema)
            except CommitFailedException:
                continue  # another writer changed the table meanwhile: look again
        return self.catalog.load_table(identifier)

    def _create_table(self, identifier: str, schema: pa.Schema, partition_by: tuple[str, ...]):
        try:
            with self.catalog.create_table_transaction(
                identifier, schema=schema, properties=TABLE_PROPERTIES
            ) as tx:
                if partition_by:
                    with tx.update_spec() as spec:
                        for name in partition_by:
                            spec.add_identity(name)
        except (TableAlreadyExistsError, CommitFailedException):
            pass  # another writer created it first: use theirs
        return self.catalog.load_table(identifier)

    # -- reads -----------------------------------------------------------------------------
    def scan(
        self,
        identifier: str,
        row_filter: BooleanExpression | str = ALL_ROWS,
        columns: tuple[str, ...] = ("*",),
        snapshot_id: int | None = None,
    ) -> pa.Table:
        table = self.load(identifier)
        return table.scan(
            row_filter=row_filter, selected_fields=columns, snapshot_id=snapshot_id
        ).to_arrow()

    def current_snapshot_id(self, identifier: str) -> int | None:
        if not self.table_exists(identifier):
            return None
        snapshot = self.load(identifier).current_snapshot()
        return snapshot.snapshot_id if snapshot else None

    def tag_snapshot_id(self, identifier: str, tag: str) -> int | None:
        """The snapshot a tag points to, or None when the table or the tag does not exist."""
        if not self.table_exists(identifier):
            return None
        ref = self.load(identifier).refs().get(tag)
        return ref.snapshot_id if ref is not None and ref.snapshot_ref_type == "tag" else None

    def ledger(self, identifier: str, key: str) -> set[str]:
        """Every entry that commits of the table recorded under ``key`` in their snapshot summary
        (a comma-separated list, e.g. the landing files an append holds)."""
        if not self.table_exists(identifier):
            return set()
        found: set[str] = set()
        for snapshot in self.load(identifier).snapshots():
            props = snapshot.summary.additional_properties if snapshot.summary else {}
            if props.get(key):
                found.update(props[key].split(","))
        return found

    # -- writes ----------------------------------------------------------------------------
    def write_query(
        self,
        con: duckdb.DuckDBPyConnection,
        identifier: str,
        sql: str,
        params: dict[str, object] | None = None,
        partition_by: tuple[str, ...] = (),
        *,
        replace: BooleanExpression | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> tuple[int, list[str]]:
        """Write a DuckDB query's rows to the table: ``replace`` the rows matching a filter, or
        append them. Returns (rows written, data files added).

        DuckDB streams the rows straight into Parquet data files of the table (its Iceberg field
        ids, types and column order; one file set per partition value), which one Iceberg commit
        then adds (after deleting what ``replace`` matches): the rows are never materialized in
        Python, so a 30M-event day stays within DuckDB's memory limit. A table outside this
        machine's file system (an object store) goes through pyiceberg's writer instead.
        ``properties`` go into the snapshot summary (e.g. a model's input watermark), in an empty
        snapshot when nothing else changes.
        """
        shape = con.sql(f"select * from ({sql}\n) limit 0", params=params).to_arrow_table()
        table = self.ensure_table(identifier, shape.schema, partition_by)
        record_always = bool(properties)  # a caller's properties are committed even with no rows
        properties = dict(properties or {})
        location = table.location()
        if not location.startswith(("file://", "/")):
            data = _normalize_arrow(con.sql(sql, params=params).to_arrow_table())
            check_held()
            if replace is not None:
                self.replace_where(identifier, data, replace, partition_by, properties)
            else:
                ordered = data.select(table.schema().column_names) if data.num_columns else data
                table.append(ordered, snapshot_properties=properties)
            return data.num_rows, []
        schema = table.schema()
        kinds = duckdb_types(con, schema_to_pyarrow(schema, include_field_ids=False))
        select = ", ".join(
            f'cast("{f.name}" as {kinds[f.name]}) as "{f.name}"'
            if f.name in shape.column_names
            else f'null::{kinds[f.name]} as "{f.name}"'
            for f in schema.fields
        )
        field_ids = ", ".join(f'"{f.name}": {_field_id(f)}' for f in schema.fields)
        # a fresh folder per write: DuckDB never writes into an existing partition folder
        folder = Path(location.removeprefix("file://")) / "data" / f"w-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        options = "format parquet, compression zstd, return_files true"
        if partition_by:
            columns = ", ".join(f'"{c}"' for c in partition_by)
            target = str(folder)
            options += f", partition_by ({columns}), write_partition_columns true"
            options += ", filename_pattern 'c360-{uuid}'"
        else:
            target = str(folder / "c360-0.parquet")
        rows, files = con.execute(
            f"copy (select {select} from ({sql}\n)) to '{target}' "
            f"({options}, field_ids {{{field_ids}}})",
            params,
        ).fetchone()
        if not rows:
            shutil.rmtree(folder)
            files = []
        check_held()  # a lease that expired under this writer: stop before committing
        with table.transaction() as tx:
            if replace is not None:
                with warnings.catch_warnings():  # a first build replaces nothing: expected
                    warnings.filterwarnings("ignore", "Delete operation did not match any records")
                    tx.delete(replace, snapshot_properties=properties)
            if files:
                # the table's own scheme, the path as written (no percent-encoding of '=')
                scheme = "file://" if location.startswith("file://") else ""
                uris = [scheme + str(Path(f).resolve()) for f in files]
                tx.add_files(uris, properties, check_duplicate_files=False)
            elif record_always:  # an empty snapshot carries them
                with tx.update_snapshot(snapshot_properties=properties).fast_append():
                    pass
        return rows, list(files)

    def create_tag(self, identifier: str, tag: str, snapshot_id: int) -> None:
        """Tag a snapshot (kept until the tag is removed: readable by time travel)."""
        self.load(identifier).manage_snapshots().create_tag(snapshot_id, tag).commit()

    def replace_where(
        self,
        identifier: str,
        data: pa.Table,
        where: BooleanExpression | str,
        partition_by: Iterable[str] = (),
        properties: dict[str, str] | None = None,
    ) -> None:
        """Replace exactly the rows matching ``where`` with ``data`` (an empty result clears it)."""
        data = _normalize_arrow(data)
        table = self.ensure_table(identifier, data.schema, partition_by)
        ordered = data.select([c for c in table.schema().column_names if c in data.column_names])
        table.overwrite(ordered, overwrite_filter=where, snapshot_properties=properties or {})
