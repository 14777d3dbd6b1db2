"""One SQL model on hand-built rows: given rows in, exact rows out, in milliseconds.

``run_model`` runs a model's SQL file (``sql/<domain>/<name>.sql``) the one way every model runs
(``run_sql``: an in-memory DuckDB session over Arrow inputs), under the input names its
``Model(...)`` declares and with its window parameters. Each input holds the given rows in the
table's own schema (a column not given is null); a windowed input keeps only the rows its
Iceberg scan would return for the window (``Read.row_filter``: lookback and lookahead included).
Schemas are not written by hand: a raw table's comes from its source declaration, a model's
from its SQL run on empty inputs.
"""

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from c360_assets.definitions import all_models
from c360_assets.defs.ingest.sources import SOURCES
from c360_assets.lib.ingest import raw_schema
from c360_assets.lib.models import Model
from c360_assets.lib.sqlmodel import Read, run_sql, sql_text

Row = Mapping[str, object]
Window = tuple[dt.date, dt.date]
# the window a partitioned model's schema is probed with (any window gives the same columns)
PROBE_WINDOW = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))


def ts(text: str) -> dt.datetime:
    """A UTC instant from ISO text without a zone: ts("2026-10-01T10:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def landed(file: str, at: str, *records: Row) -> list[dict]:
    """Raw rows as ingestion writes them: ``records`` are lines 1, 2, ... of landing file
    ``file``, ingested at ``at`` (the total order staging dedupes by)."""
    return [
        {**record, "_source_file": file, "_source_line": line, "_ingested_at": ts(at)}
        for line, record in enumerate(records, start=1)
    ]


@functools.cache
def models() -> dict[str, Model]:
    return {model.name: model for model in all_models()}


@functools.cache
def table_schema(table: str) -> pa.Schema:
    """A table's columns: a raw table's from its source declaration, a model's from its SQL."""
    for source in SOURCES:
        if source.table == table:
            return raw_schema(source)
    (model,) = [m for m in models().values() if m.table == table]
    window = PROBE_WINDOW if model.partitioning else None
    return _run(model, {}, window).schema


def _input_schema(read: Read) -> pa.Schema:
    schema = read.missing_as if read.missing_as is not None else table_schema(read.table)
    if read.columns == ("*",):
        return schema
    return pa.schema([schema.field(name) for name in read.columns])


def _input(rows: Sequence[Row], read: Read, window: Window | None) -> pa.Table:
    schema = _input_schema(read)
    for row in rows:
        unknown = set(row) - set(schema.names)
        assert not unknown, f"{read.table} has no column {sorted(unknown)}"
    table = pa.Table.from_pylist(list(rows), schema=schema)
    if window is None or read.window_column is None:
        return table
    start, end = read.bounds(window)
    column = pc.field(read.window_column)
    return table.filter((column >= start) & (column < end))


def _run(model: Model, given: Mapping[str, Sequence[Row]], window: Window | None) -> pa.Table:
    unknown = set(given) - set(model.reads)
    assert not unknown, f"{model.name} reads {sorted(model.reads)}, not {sorted(unknown)}"
    assert (window is None) == (model.partitioning is None), "a window for partitioned models"
    inputs = {name: _input(given.get(name, ()), read, window) for name, read in model.reads.items()}
    params = {"window_start": window[0], "window_end": window[1]} if window else {}
    return run_sql(sql_text(model.sql_path), inputs, params, model.intermediate_sql())


def run_intermediate(
    model_name: str,
    name: str,
    given: Mapping[str, Sequence[Row]],
    window: Window | None = None,
    order_by: Sequence[str] = (),
) -> list[dict]:
    """The rows intermediate ``name`` of model ``model_name`` computes inside the model's build
    from the ``given`` rows of the model's inputs, ordered by ``order_by``."""
    model = models()[model_name]
    assert name in {i.name for i in model.intermediates}, f"{model_name} has no {name}"
    inputs = {n: _input(given.get(n, ()), read, window) for n, read in model.reads.items()}
    order = f" order by {', '.join(order_by)}" if order_by else ""
    return run_sql(f"select * from {name}{order}", inputs, {}, model.intermediate_sql()).to_pylist()


def run_model(
    name: str,
    given: Mapping[str, Sequence[Row]],
    window: Window | None = None,
    columns: Sequence[str] | None = None,
) -> list[dict]:
    """The rows model ``name`` computes from the ``given`` rows of its inputs (by their declared
    names; an input not given is empty), ordered by the model's grain, with only ``columns``
    when given."""
    model = models()[name]
    table = _run(model, given, window)
    table = table.sort_by([(column, "ascending") for column in model.grain])
    if columns is not None:
        table = table.select(list(columns))
    return table.to_pylist()


def key(natural: str) -> str:
    """A durable customer_key: the first 16 hex of md5('crm:<account>' or 'billing:<id>')."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


def in_grain_order(name: str, rows: Sequence[Row]) -> list[Row]:
    """Rows in the order ``run_model`` returns them: by the model's grain."""
    grain = models()[name].grain
    return sorted(rows, key=lambda row: tuple(row[column] for column in grain))
