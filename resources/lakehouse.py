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

No value of a masked column reaches a table's metadata: ``ensure_table`` gives every column in
``UNMEASURED_COLUMNS`` the Iceberg metrics mode ``none``, so no manifest holds its bounds (nor its
counts) for any engine to show, whatever its column masks.

The warehouse is a local folder or ``s3://bucket/prefix`` on an object store (endpoint and
credentials from the environment: ``C360_S3_ENDPOINT``, ``AWS_*``). Readers get a table's data
files as ``DataFiles``: DuckDB reads local files itself and object-store files through pyarrow.
"""

import functools
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
from pyarrow import fs as pafs
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow
from pyiceberg.manifest import DATA_FILE_TYPE, DEFAULT_READ_VERSION
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.types import NestedField, StructType
from sqlalchemy import select
from sqlalchemy.orm import Session

from resources.leases import Lease, Leases, check_held
from resources.objectstore import file_io_properties, is_object_store, store_io, upload
from resources.private_files import private_dir

NAMESPACES = ("raw", "staging", "core", "marts")
ALL_ROWS = AlwaysTrue()
# the data files' codec: zstd at level 1 writes this data with about an eighth less CPU than
# its default level 3, a little smaller, and reads as fast (docs/performance.md, session 9); the
# bench's floors write it too
PARQUET_CODEC = "compression zstd, compression_level 1"
# Parallel partition runs commit to one table at once: a commit that lost the race is retried
# on the new state (different partitions never conflict), with more patience than the default.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "12",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "5000",
    # the metadata log keeps the last 10 metadata files (not 100): older ones are orphans that
    # `c360 maintain` removes, so a table's metadata files stay few however often it is written
    "write.metadata.previous-versions-max": "10",
    # a commit that adds files merges the table's manifests once it holds 16 (one per commit
    # otherwise): a plan or a commit reads the manifest list, and a table of daily partitions
    # written every day would hold one more manifest each day (a year: 365)
    TableProperties.MANIFEST_MERGE_ENABLED: "true",
    TableProperties.MANIFEST_MIN_MERGE_COUNT: "16",
}
# Columns masked for BI users (c360_assets/tools/stack_templates/rules.json): their values never
# go into table metadata. Iceberg keeps per-file bounds of every column in the manifests, which
# any reader of the metadata tables ("$files", "$partitions", readable_metrics, ...) sees unmasked.
UNMEASURED_COLUMNS = frozenset({"owner_email"})
_SORT_ORDER_ID = [f.name for f in DATA_FILE_TYPE[DEFAULT_READ_VERSION].fields].index(
    "sort_order_id"
)


def _abs_uri(path_or_uri: str) -> str:
    if "://" in path_or_uri:
        return path_or_uri
    return Path(path_or_uri).resolve().as_uri()


def _sqlite_dir(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return Path(uri[len(prefix) :]).parent
    return None


class MissingMetadataError(RuntimeError):
    """The catalog names a metadata file the warehouse does not hold."""


@dataclass(frozen=True)
class DataFiles:
    """Parquet data files of one table as a reader gets them: local paths (DuckDB reads them
    itself), or paths on the object store's pyarrow file system (``bucket/key``)."""

    paths: tuple[str, ...]
    schema: pa.Schema  # the table's columns in Arrow (files lacking one read it as null)
    filesystem: pafs.FileSystem | None = None  # None: local files


@functools.cache
def _open_catalog(name: str, uri: str, warehouse: str, file_io: tuple = ()) -> SqlCatalog:
    sqlite_dir = _sqlite_dir(uri)
    if sqlite_dir is not None:
        sqlite_dir.mkdir(parents=True, exist_ok=True)
    if warehouse.startswith("file://"):
        private_dir(Path(warehouse.removeprefix("file://")))
    # A server catalog (PostgreSQL in the stack) outlives this process's pooled connections:
    # after `c360 stack down/up` a cached catalog would fail its first query without a ping.
    server = {} if sqlite_dir is not None else {"pool_pre_ping": "true"}
    catalog = SqlCatalog(name, uri=uri, warehouse=warehouse, **server, **dict(file_io))
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


def _unmeasured(schema: pa.Schema) -> dict[str, str]:
    """The metrics-mode properties of the table's masked columns."""
    return {
        f"{TableProperties.METRICS_MODE_COLUMN_CONF_PREFIX}.{c}": "none"
        for c in UNMEASURED_COLUMNS
        if c in schema.names
    }


def _add_files(tx: Transaction, table: Table, uris: list[str], properties: dict[str, str]) -> None:
    """``tx.add_files`` (the statistics of each file read from its Parquet footer, by the table's
    metrics modes) as a merging append (the table's manifests merged by its properties, see
    ``TABLE_PROPERTIES``), with each data file's sort order stated: pyiceberg 0.12 leaves
    ``sort_order_id`` null, which the spec allows but Trino 476's "$entries" cannot read
    (trinodb/trino#29211, fixed after 480). The table's files are unsorted or in its default order.
    """
    metadata = tx.table_metadata  # each read of it deep-copies the table's whole metadata
    if metadata.name_mapping() is None:
        mapping = metadata.schema().name_mapping.model_dump_json()
        tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})
        metadata = tx.table_metadata
    order = metadata.default_sort_order_id
    with tx.update_snapshot(snapshot_properties=properties).merge_append() as append:
        for uri in uris:
            data_file = parquet_file_to_data_file(table.io, metadata, uri)
            data_file[_SORT_ORDER_ID] = order
            append.append_data_file(data_file)


def _field_id(field: NestedField) -> str:
    """A column's Iceberg field ids in DuckDB's FIELD_IDS syntax (nested: per child)."""
    kind = field.field_type
    if kind.is_primitive:
        return str(field.field_id)
    if isinstance(kind, StructType):
        children = ", ".join(f'"{c.name}": {_field_id(c)}' for c in kind.fields)
        return f"{{__duckdb_field_id: {field.field_id}, {children}}}"
    raise NotImplementedError(f"{field.name}: lists and maps are not written through DuckDB")


class _DataFolder:
    """Where one write's data files go: a fresh folder per write (DuckDB never writes into an
    existing partition folder) in the table's location on local disk, or, for a table on an
    object store, in a private local staging folder whose files ``publish`` uploads into the
    table's location. Either way ``publish`` returns the URIs to add to the table."""

    def __init__(self, table: Table) -> None:
        self.location = table.location()
        self.io = table.io
        self.name = f"w-{uuid.uuid4().hex}"
        if is_object_store(self.location):
            self.staging: Path | None = Path(tempfile.mkdtemp(prefix="c360-write-"))  # 0700
            self.path = self.staging / self.name
        else:
            self.staging = None
            self.path = Path(self.location.removeprefix("file://")) / "data" / self.name
        self.path.mkdir(parents=True)
        self.published = False

    def publish(self, written: list[str]) -> list[str]:
        self.published = True
        if self.staging is not None:
            return upload(self.io, self.path, f"{self.location}/data/{self.name}")
        # the table's own scheme, the path as written (no percent-encoding of '=')
        scheme = "file://" if self.location.startswith("file://") else ""
        return [scheme + str(Path(f).resolve()) for f in written]

    def __enter__(self) -> "_DataFolder":
        return self

    def __exit__(self, *_) -> None:
        """The staging folder always goes; a local folder stays once its files are published."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        elif not self.published:
            shutil.rmtree(self.path, ignore_errors=True)


def _env_var(name: str) -> dg.EnvVar | None:
    """The variable as Dagster config (its value never lands in the definitions), when set."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _value(setting: str | None) -> str | None:
    """A config value, read from the environment when it is an ``EnvVar`` (outside a run)."""
    return setting.get_value() if isinstance(setting, dg.EnvVar) else setting


class LakehouseResource(dg.ConfigurableResource):
    """Iceberg catalog + warehouse + landing zone, configured from the environment."""

    catalog_uri: str
    warehouse: str
    catalog_name: str = "c360"
    landing_dir: str
    # the object store of an s3:// warehouse (C360_S3_ENDPOINT, AWS_*): unset means AWS itself
    s3_endpoint: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str | None = None

    @classmethod
    def from_env(cls) -> "LakehouseResource":
        return cls(
            catalog_uri=os.environ.get("C360_CATALOG_URI", "sqlite:///./data/catalog.db"),
            warehouse=os.environ.get("C360_WAREHOUSE", "./data/warehouse"),
            catalog_name=os.environ.get("C360_CATALOG_NAME", "c360"),
            landing_dir=os.environ.get("C360_LANDING_DIR", "./data/landing"),
            s3_endpoint=_env_var("C360_S3_ENDPOINT"),
            s3_access_key_id=_env_var("AWS_ACCESS_KEY_ID"),
            s3_secret_access_key=_env_var("AWS_SECRET_ACCESS_KEY"),
            s3_region=_env_var("AWS_REGION"),
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
    def catalog(self) -> SqlCatalog:
        file_io: dict[str, str] = {}
        if is_object_store(self.warehouse):
            settings = (self.s3_endpoint, self.s3_access_key_id, self.s3_secret_access_key)
            endpoint, key_id, secret = (_value(setting) for setting in settings)
            file_io = file_io_properties(endpoint, key_id, secret, _value(self.s3_region))
        return _open_catalog(
            self.catalog_name,
            self.catalog_db_uri,
            _abs_uri(self.warehouse),
            tuple(sorted(file_io.items())),
        )

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
        """The table; a catalog entry whose metadata file is missing fails naming both."""
        try:
            return self.catalog.load_table(identifier)
        except FileNotFoundError as exc:
            namespace, _, name = identifier.rpartition(".")
            with Session(self.catalog.engine) as session:
                location = session.scalar(
                    select(IcebergTables.metadata_location).where(
                        IcebergTables.catalog_name == self.catalog_name,
                        IcebergTables.table_namespace == namespace,
                        IcebergTables.table_name == name,
                    )
                )
            raise MissingMetadataError(
                f"table {identifier}: the catalog ({self.catalog_name}) points at the metadata "
                f"file {location}, which the warehouse does not hold: the catalog and the "
                f"warehouse disagree (restore the file, or drop the table and rebuild it)"
            ) from exc

    def data_files(self, table: Table, files: Iterable[str]) -> DataFiles:
        """The table's data files ``files`` (URIs or local paths) as a reader gets them."""
        files = list(files)
        schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
        if not any(is_object_store(f) for f in files):
            return DataFiles(tuple(f.removeprefix("file://") for f in files), schema)
        io = store_io(table.io)
        placed = [io.filesystem(f) for f in files]
        return DataFiles(tuple(path for _, path in placed), schema, placed[0][0])

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
                table = self.load(identifier)
            except NoSuchTableError:
                return self._create_table(identifier, schema, tuple(partition_by))
            missing = [f for f in schema if f.name not in table.schema().column_names]
            wanted = {**TABLE_PROPERTIES, **_unmeasured(schema)}
            stale = {k: v for k, v in wanted.items() if table.properties.get(k) != v}
            if not missing and not stale:
                return table
            try:
                with table.transaction() as tx:
                    if stale:  # a table made before these properties (or its column's mask)
                        tx.set_properties(stale)
                    if missing:
                        with tx.update_schema() as update:
                            update.union_by_name(schema)
            except CommitFailedException:
                continue  # another writer changed the table meanwhile: look again
        return self.load(identifier)

    def _create_table(self, identifier: str, schema: pa.Schema, partition_by: tuple[str, ...]):
        try:
            with self.catalog.create_table_transaction(
                identifier, schema=schema, properties={**TABLE_PROPERTIES, **_unmeasured(schema)}
            ) as tx:
                if partition_by:
                    with tx.update_spec() as spec:
                        for name in partition_by:
                            spec.add_identity(name)
        except (TableAlreadyExistsError, CommitFailedException):
            pass  # another writer created it first: use theirs
        return self.load(identifier)

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

    def table_property(self, identifier: str, name: str) -> str | None:
        """A property of the table (None: no such property, or no such table)."""
        try:
            return self.load(identifier).properties.get(name)
        except NoSuchTableError:
            return None

    def set_table_property(self, identifier: str, name: str, value: str) -> None:
        """Set a property of the table, again after a concurrent commit (a property update
        conflicts with no data commit, only with the catalog's compare-and-swap)."""
        for attempt in range(5):
            try:
                with self.load(identifier).transaction() as tx:
                    tx.set_properties({name: value})
                return
            except CommitFailedException:
                if attempt == 4:
                    raise

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
        one_partition: bool = False,
    ) -> tuple[int, list[str]]:
        """Write a DuckDB query's rows to the table: ``replace`` the rows matching a filter, or
        append them. Returns (rows written, data files added).

        DuckDB streams the rows straight into Parquet data files of the table (its Iceberg field
        ids, types and column order; one file set per partition value), which one Iceberg commit
        then adds (after deleting what ``replace`` matches): the rows are never materialized in
        Python, so a 30M-event day stays within DuckDB's memory limit. On an object store DuckDB
        writes the same files into a private local staging folder, and pyiceberg's file IO
        uploads them into the table's location before the same commit (``_DataFolder``).
        ``properties`` go into the snapshot summary (e.g. a model's input watermark), in an empty
        snapshot when nothing else changes. ``one_partition``: the caller knows that every row has
        the same partition values, so DuckDB writes one file without its partitioned writer (about
        a third less CPU); the commit reads the values from the file's statistics and fails on a
        file holding two.
        """
        shape = con.sql(f"select * from ({sql}\n) limit 0", params=params).to_arrow_table()
        table = self.ensure_table(identifier, shape.schema, partition_by)
        record_always = bool(properties)  # a caller's properties are committed even with no rows
        properties = dict(properties or {})
        schema = table.schema()
        kinds = duckdb_types(con, schema_to_pyarrow(schema, include_field_ids=False))
        select = ", ".join(
            f'cast("{f.name}" as {kinds[f.name]}) as "{f.name}"'
            if f.name in shape.column_names
            else f'null::{kinds[f.name]} as "{f.name}"'
            for f in schema.fields
        )
        field_ids = ", ".join(f'"{f.name}": {_field_id(f)}' for f in schema.fields)
        options = f"format parquet, {PARQUET_CODEC}, return_files true"
        with _DataFolder(table) as folder:
            if partition_by and not one_partition:
                columns = ", ".join(f'"{c}"' for c in partition_by)
                target = str(folder.path)
                options += f", partition_by ({columns}), write_partition_columns true"
                options += ", filename_pattern 'c360-{uuid}'"
            else:
                target = str(folder.path / "c360-0.parquet")
            ((rows, written),) = con.execute(
                f"copy (select {select} from ({sql}\n)) to '{target}' "
                f"({options}, field_ids {{{field_ids}}})",
                params,
            ).fetchall()
            files = folder.publish(written) if rows else []
        check_held()  # a lease that expired under this writer: stop before committing
        with table.transaction() as tx:
            if replace is not None:
                with warnings.catch_warnings():  # a first build replaces nothing: expected
                    warnings.filterwarnings("ignore", "Delete operation did not match any records")
                    tx.delete(replace, snapshot_properties=properties)
            if files:
                _add_files(tx, table, files, properties)
            elif record_always:  # an empty snapshot carries them
                with tx.update_snapshot(snapshot_properties=properties).fast_append():
                    pass
        return rows, files

    def create_tag(self, identifier: str, tag: str, snapshot_id: int, move: bool = False) -> None:
        """Tag a snapshot (kept until the tag is removed: readable by time travel). ``move``: a
        tag of that name on another snapshot is moved to this one."""
        table = self.load(identifier)
        ref = table.metadata.refs.get(tag)
        if ref is not None and move and ref.snapshot_id != snapshot_id:
            table.manage_snapshots().remove_tag(tag).commit()
        elif ref is not None and ref.snapshot_id == snapshot_id:
            return
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
        with warnings.catch_warnings():  # a first write replaces nothing: expected
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            table.overwrite(ordered, overwrite_filter=where, snapshot_properties=properties or {})
