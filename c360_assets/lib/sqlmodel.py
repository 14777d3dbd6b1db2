"""The one way a SQL model runs: Iceberg scans (filters pushed down) -> in-memory DuckDB -> Arrow.

A model is a file ``sql/<layer>/<name>.sql`` holding one ``select``. It reads its inputs by the
view names declared in its :class:`Model` and may use the named parameters ``$window_start`` and
``$window_end`` (dates, end exclusive) of the partition being built. The asset factory in
``c360_assets.lib.models`` wraps every model the same way; nothing else runs SQL on the marts.
"""

import datetime as dt
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
from pyiceberg.expressions import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    LessThan,
)
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from c360_assets.lib.partitions import advance, month_of
from c360_assets.lib.sqlquote import literal_list
from resources.lakehouse import ALL_ROWS, DataFiles, LakehouseResource, duckdb_types

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
EPOCH = dt.date(1970, 1, 1)  # an identity partition on a date holds days since then
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Read:
    """One input of a model: an Iceberg table, optionally restricted to a date window.

    ``window_column`` is filtered to the partition's window widened by ``lookback_days`` before
    it (for trailing baselines) and ``lookahead_days`` after it.

    ``at_tag`` reads the table as of an Iceberg tag instead of its current snapshot. A ``{month}``
    in the tag name (``YYYY-MM``) reads each month of the window from its own tag, restricted to
    that month of ``window_column``; a month without its tag contributes no rows.
    ``missing_as`` is the schema read (empty) while the table does not exist yet, e.g. a model
    reading its own previous output.
    """

    table: str
    window_column: str | None = None
    lookback_days: int = 0
    lookahead_days: int = 0
    columns: tuple[str, ...] = ("*",)
    at_tag: str | None = None
    missing_as: pa.Schema | None = None

    def bounds(self, window: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
        """The dates read for ``window`` (end exclusive): widened by lookback and lookahead."""
        return (
            window[0] - dt.timedelta(days=self.lookback_days),
            window[1] + dt.timedelta(days=self.lookahead_days),
        )

    def row_filter(self, window: tuple[dt.date, dt.date] | None) -> BooleanExpression:
        if window is None or self.window_column is None:
            return AlwaysTrue()
        return between(self.window_column, *self.bounds(window))

    def sql_filter(self, window: tuple[dt.date, dt.date] | None) -> str:
        """``row_filter`` as a DuckDB predicate ("true": every row)."""
        if window is None or self.window_column is None:
            return "true"
        start, end = self.bounds(window)
        column = f'"{self.window_column}"'
        return f"{column} >= date '{start.isoformat()}' and {column} < date '{end.isoformat()}'"


@dataclass(frozen=True)
class Intermediate:
    """A step of a model's build that is not stored: ``sql/<domain>/<name>.sql`` over the model's
    inputs (and earlier intermediates), readable by ``name`` in the model's SQL and its checks.

    ``view`` (dbt's ephemeral staging): evaluated inside each query that reads it. ``temp_table``:
    computed once when the build's session opens and held by DuckDB (spilling past its memory
    limit), for a result that both the model and its checks read (it is computed once, not once
    per query). Neither may use window parameters: a view cannot hold them, and the window
    already bounds the inputs.
    """

    name: str
    materialized: Literal["view", "temp_table"] = "view"

    def create_sql(self, sql: str) -> str:
        if _PARAM.search(sql):
            raise ValueError(f"intermediate {self.name} uses a parameter; it reads its inputs")
        kind = "view" if self.materialized == "view" else "table"
        return f'create temp {kind} "{self.name}" as\n{sql}'


def between(column: str, start: dt.date, end: dt.date) -> BooleanExpression:
    """``start <= column < end`` on a date column, as an Iceberg expression."""
    return And(GreaterThanOrEqual(column, start.isoformat()), LessThan(column, end.isoformat()))


def sql_text(model_path: str) -> str:
    return (SQL_DIR / f"{model_path}.sql").read_text()


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in UTC whose operators spill to disk past ``C360_DUCKDB_MEMORY``
    (default 5GB): a 30M-event day is deduplicated within a bounded footprint (5GB: without
    spilling, the process staying under 6 GB; 4GB spilled and took a third longer)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{os.environ.get('C360_DUCKDB_MEMORY', '5GB')}'")
    spill = Path(tempfile.gettempdir()) / "c360-duckdb-spill"
    con.execute(f"set temp_directory = '{spill}'")
    # results are unordered unless the SQL says otherwise: lets COPY write in parallel
    con.execute("set preserve_insertion_order = false")
    return con


def files_relation(con: duckdb.DuckDBPyConnection, name: str, files: DataFiles) -> str:
    """A FROM item over a table's Parquet data files. DuckDB reads local files itself; files on
    the object store come through a pyarrow dataset registered as ``name``, which DuckDB scans
    as Arrow with the query's columns and filters pushed down (DuckDB 2.0 has no S3 client here).
    """
    if files.filesystem is None:
        return f"read_parquet({literal_list(files.paths)}, union_by_name = true)"
    import pyarrow.dataset as ds

    dataset = ds.dataset(
        list(files.paths), schema=files.schema, format="parquet", filesystem=files.filesystem
    )
    con.register(name, dataset)
    return f'"{name}"'


@dataclass(frozen=True)
class ParquetScan:
    """An input DuckDB reads straight from the Iceberg snapshot's Parquet data files.

    Used for a window read of a day-partitioned table (see ``_scan``): DuckDB streams the files
    with only the columns the query needs, so a 30M-row day is never materialized as Arrow.
    """

    files: DataFiles
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) in the table's schema order
    where: str  # SQL predicate (the window), or "true"

    def create_view(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        source = files_relation(con, f"{name}__files", self.files)
        present = {row[0] for row in con.sql(f"describe select * from {source}").fetchall()}
        select = ", ".join(
            f'"{column}"' if column in present else f'null::{kind} as "{column}"'
            for column, kind in self.columns
        )
        con.execute(
            f'create temp view "{name}" as select {select} from {source} where {self.where}'
        )


class SqlSession:
    """An in-memory DuckDB holding a model's inputs, its intermediates (``(Intermediate, its
    SQL)`` in order), its output (``model_output``) and params."""

    def __init__(
        self,
        inputs: Mapping[str, pa.Table | ParquetScan],
        params: Mapping[str, object] | None = None,
        intermediates: Sequence[tuple[Intermediate, str]] = (),
    ):
        self.con = connect()
        self.params = dict(params or {})
        self.inputs = dict(inputs)
        for name, table in inputs.items():
            if isinstance(table, ParquetScan):
                table.create_view(self.con, name)
            else:
                self.con.register(name, table)
        for intermediate, sql in intermediates:
            self.con.execute(intermediate.create_sql(sql))

    def restrict(self, names: list[str], keys: pa.Table, columns: tuple[str, ...]) -> None:
        """Narrow the inputs ``names`` to the rows whose ``columns`` appear in ``keys``
        (registered as ``changed_series``): a series-local model then computes those only."""
        self.con.register("changed_series", keys)
        using = ", ".join(f'"{c}"' for c in columns)
        for name in names:
            if isinstance(self.inputs[name], ParquetScan):
                self.con.execute(f'alter view "{name}" rename to "{name}__all"')
            else:  # an Arrow input: registered again under the new name
                self.con.unregister(name)
                self.con.register(f"{name}__all", self.inputs[name])
            self.con.execute(
                f'create or replace temp view "{name}" as select * from "{name}__all" '
                f"semi join changed_series using ({using})"
            )

    def query(self, sql: str) -> pa.Table:
        """Run one select; only the parameters the SQL references are bound."""
        return self.con.sql(sql, params=self._bound(sql)).to_arrow_table()

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def _bound(self, sql: str) -> dict[str, object] | None:
        """The parameters ``sql`` references (an error names any the session lacks)."""
        wanted = set(_PARAM.findall(sql))
        missing = wanted - self.params.keys()
        if missing:
            raise ValueError(f"SQL needs parameters {sorted(missing)}")
        return {k: v for k, v in self.params.items() if k in wanted} or None

    def write_output(
        self,
        lakehouse: LakehouseResource,
        table: str,
        sql: str,
        where: BooleanExpression,
        partition_by: tuple[str, ...] = (),
        properties: Mapping[str, str] | None = None,
    ) -> int:
        """Run the model's select into ``table``, replacing exactly the rows matching ``where``
        (``LakehouseResource.write_query``: DuckDB -> Parquet -> one Iceberg commit), and expose
        the written rows as ``model_output`` for the checks. Returns the row count."""
        bound = self._bound(sql)
        rows, files = lakehouse.write_query(
            self.con, table, sql, bound, partition_by, replace=where, properties=properties
        )
        if files:
            written = lakehouse.data_files(lakehouse.load(table), files)
            source = files_relation(self.con, "model_output__files", written)
            self.con.execute(f"create or replace temp view model_output as select * from {source}")
        else:
            empty = f"select * from ({sql}\n) limit 0"
            self.register("model_output", self.con.sql(empty, params=bound).to_arrow_table())
        return rows

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "SqlSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_model_session(
    lakehouse: LakehouseResource,
    reads: Mapping[str, Read],
    window: tuple[dt.date, dt.date] | None = None,
    params: Mapping[str, object] | None = None,
    intermediates: Sequence[tuple[Intermediate, str]] = (),
) -> SqlSession:
    """Scan each input from Iceberg (the window pushed down) into a fresh DuckDB session, then
    create the intermediates over them."""
    inputs = {name: _scan(lakehouse, read, window) for name, read in reads.items()}
    all_params = dict(params or {})
    if window is not None:
        all_params.update(window_start=window[0], window_end=window[1])
    return SqlSession(inputs, all_params, intermediates)


def identity_position(table: Table, column: str) -> int | None:
    """The position of ``column``'s identity field in the table's partition spec (None: the
    table is not partitioned by the column's value)."""
    source_id = table.schema().find_field(column).field_id
    for position, spec in enumerate(table.spec().fields):
        if spec.source_id == source_id and isinstance(spec.transform, IdentityTransform):
            return position
    return None


def partition_value(value: object) -> dt.date:
    """An identity partition value of a date column as a date (Iceberg stores days since 1970)."""
    if isinstance(value, int):
        return EPOCH + dt.timedelta(days=value)
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"not the partition value of a date column: {value!r}")


def files_by_date(
    table: Table,
    column: str,
    row_filter: BooleanExpression = ALL_ROWS,
    snapshot_id: int | None = None,
) -> dict[dt.date, list[DataFile]] | None:
    """The data files of each value of ``column`` (a date the table is identity-partitioned by)
    in a snapshot (default: the current one), from the manifests alone; None when the table is
    not partitioned by ``column``."""
    position = identity_position(table, column)
    if position is None:
        return None
    found: dict[dt.date, list[DataFile]] = {}
    for task in table.scan(row_filter=row_filter, snapshot_id=snapshot_id).plan_files():
        day = partition_value(task.file.partition[position])
        found.setdefault(day, []).append(task.file)
    return found


def _parquet_scan(
    lakehouse: LakehouseResource, read: Read, window: tuple[dt.date, dt.date]
) -> ParquetScan | None:
    """The window of a table partitioned by identity on ``read.window_column`` as Parquet files,
    or None when Arrow is the safe path (other partitioning, delete files, no files)."""
    assert read.window_column is not None
    table = lakehouse.load(read.table)
    if identity_position(table, read.window_column) is None:
        return None
    files = _plain_files(lakehouse, table, read.row_filter(window))
    return None if files is None else parquet_scan(files, read, window)


def _plain_files(
    lakehouse: LakehouseResource, table: Table, row_filter: BooleanExpression
) -> DataFiles | None:
    """The data files ``row_filter`` selects from the manifests, or None when Arrow is the safe
    path (a file with delete files, or no file)."""
    tasks = list(table.scan(row_filter=row_filter).plan_files())
    if not tasks or any(task.delete_files for task in tasks):
        return None
    return lakehouse.data_files(table, [task.file.file_path for task in tasks])


def scan_where(
    lakehouse: LakehouseResource,
    identifier: str,
    files: BooleanExpression,
    columns: tuple[str, ...],
    where: str,
) -> pa.Table | ParquetScan:
    """``columns`` of the rows of ``identifier`` that satisfy ``where`` (a DuckDB predicate), in
    the data files the Iceberg filter ``files`` selects (on partition columns: it prunes by the
    manifests, it filters no row). DuckDB reads those Parquet files itself, so a check over a
    30M-row day never materializes its rows as Arrow; with delete files, the rows come through
    pyiceberg and DuckDB applies ``where`` to them."""
    table = lakehouse.load(identifier)
    found = _plain_files(lakehouse, table, files)
    if found is None:
        con = connect()
        try:
            con.register("scanned", lakehouse.scan(identifier, files, columns))
            return con.sql(f"select * from scanned where {where}").to_arrow_table()
        finally:
            con.close()
    return parquet_scan(found, Read(identifier, columns=columns), None, where)


def parquet_scan(
    files: DataFiles, read: Read, window: tuple[dt.date, dt.date] | None, where: str = "true"
) -> ParquetScan:
    """``read``'s columns of ``files`` (a table's data files), restricted to the window and to
    ``where``."""
    con = connect()
    try:
        kinds = duckdb_types(con, files.schema)
    finally:
        con.close()
    wanted = files.schema.names if read.columns == ("*",) else list(read.columns)
    predicate = read.sql_filter(window)
    if where != "true":
        predicate = where if predicate == "true" else f"({predicate}) and ({where})"
    return ParquetScan(files, tuple((n, kinds[n]) for n in wanted), predicate)


def _scan(
    lakehouse: LakehouseResource, read: Read, window: tuple[dt.date, dt.date] | None
) -> pa.Table | ParquetScan:
    if read.missing_as is not None and not lakehouse.table_exists(read.table):
        return read.missing_as.empty_table()
    if read.at_tag is None:
        if window is not None and read.window_column is not None:
            direct = _parquet_scan(lakehouse, read, window)
            if direct is not None:
                return direct
        return lakehouse.scan(read.table, read.row_filter(window), read.columns)
    if "{month}" not in read.at_tag:
        snapshot_id = lakehouse.tag_snapshot_id(read.table, read.at_tag)
        if snapshot_id is None:
            return lakehouse.scan(read.table, AlwaysFalse(), read.columns)
        return lakehouse.scan(read.table, read.row_filter(window), read.columns, snapshot_id)
    if window is None or read.window_column is None:
        raise ValueError(f"{read.table}: a per-month tag needs a window and a window_column")
    parts = []
    month = month_of(window[0])
    while month < window[1]:
        following = advance(month, "monthly")
        tag = read.at_tag.format(month=f"{month:%Y-%m}")
        snapshot_id = lakehouse.tag_snapshot_id(read.table, tag)
        if snapshot_id is not None:
            month_filter = between(read.window_column, month, following)
            parts.append(lakehouse.scan(read.table, month_filter, read.columns, snapshot_id))
        month = following
    if not parts:
        return lakehouse.scan(read.table, AlwaysFalse(), read.columns)
    return pa.concat_tables(parts, promote_options="permissive")


def run_sql(
    sql: str,
    inputs: Mapping[str, pa.Table],
    params: Mapping[str, object] | None = None,
    intermediates: Sequence[tuple[Intermediate, str]] = (),
) -> pa.Table:
    """Run one select over Arrow inputs (tests and ad-hoc use; assets go through models.py)."""
    with SqlSession(inputs, params, intermediates) as session:
        return session.query(sql)
