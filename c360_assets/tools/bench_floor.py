"""The floor of a bench stage: the same work in plain DuckDB over the same files, with no Dagster,
no Iceberg commit and no checks, so what orchestration costs is a number in the report.

- Ingestion's floor parses the same landing files with DuckDB's JSON reader (the declared
  columns, malformed lines skipped) and writes them as one Parquet file: no validation, no
  quarantine, no ledger, no commit.
- A model's floor runs the model's own SQL (and its intermediates) in a DuckDB session set up as
  c360's (``sqlmodel.connect``: threads, memory limit, spill) over the Parquet data files its
  inputs' current snapshots hold for the partition's window, and copies the result to a local
  Parquet file. The files are listed from the Iceberg manifests before the clock starts
  (``list_seconds``, reported apart). Every input is read from its table's current files
  (the floor runs after c360's stage, whose rows they are): a floor's own outputs are never
  read back, so each step reads exactly what c360's build of it reads.

Local warehouses only (the object store's floors are not measured).
"""

import datetime as dt
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb

from c360_assets.lib.ingest import raw_schema
from c360_assets.lib.models import Model
from c360_assets.lib.partitions import advance
from c360_assets.lib.sqlmodel import ParquetScan, Read, connect, parquet_scan, sql_text
from resources.lakehouse import PARQUET_CODEC, LakehouseResource, duckdb_types

USAGE_SOURCE = "usage_events"


def ingest_floor(files: Iterable[Path], out: Path) -> dict:
    """Parse the usage landing files and write their records as Parquet, timed."""
    from c360_assets.defs.ingest.sources import SOURCES

    (source,) = [s for s in SOURCES if s.name == USAGE_SOURCE]
    paths = sorted(str(p) for p in files)
    con = connect()
    try:
        kinds = duckdb_types(con, raw_schema(source))
        columns = ", ".join(f"'{c.name}': '{kinds[c.name]}'" for c in source.columns)
        t0 = time.perf_counter()
        ((rows,),) = con.execute(
            f"copy (select *, (occurred_at at time zone 'UTC')::date as event_date "
            f"from read_json({paths!r}, format = 'newline_delimited', columns = {{{columns}}}, "
            f"ignore_errors = true, filename = true)) "
            f"to '{out}' (format parquet, {PARQUET_CODEC})"
        ).fetchall()
        seconds = time.perf_counter() - t0
    finally:
        con.close()
    return {"seconds": seconds, "rows": rows, "files": len(paths)}


def _window(model: Model, partition: str) -> tuple[dt.date, dt.date] | None:
    if model.partitioning is None:
        return None
    start = dt.date.fromisoformat(partition)
    return start, advance(start, model.partitioning)


def _input_scan(
    lakehouse: LakehouseResource, read: Read, window: tuple[dt.date, dt.date] | None
) -> ParquetScan:
    """The current data files of ``read``'s table for the window, as plain DuckDB reads them."""
    if read.at_tag is not None:
        raise ValueError(f"{read.table}: a read as of a tag has no floor here")
    table = lakehouse.load(read.table)
    tasks = list(table.scan(row_filter=read.row_filter(window)).plan_files())
    if any(task.delete_files for task in tasks):
        raise ValueError(f"{read.table} has delete files: its floor would not be the same work")
    files = lakehouse.data_files(table, [task.file.file_path for task in tasks])
    if files.filesystem is not None:
        raise ValueError("floors are measured on a local warehouse")
    return parquet_scan(files, read, window)


def _create_input(con: duckdb.DuckDBPyConnection, name: str, scan: ParquetScan) -> None:
    if scan.files.paths:
        scan.create_view(con, name)
    else:  # an empty table: its columns, no rows
        select = ", ".join(f'null::{kind} as "{column}"' for column, kind in scan.columns)
        con.execute(f'create temp view "{name}" as select {select} where false')


def model_floor(
    lakehouse: LakehouseResource, steps: list[tuple[Model, str | None]], out_dir: Path
) -> dict:
    """Run each (model, partition key or None) in order, each into
    ``out_dir/<table>-<partition>.parquet``. Returns seconds (the runs), list_seconds (the file
    listing before them), and each step's seconds and rows."""
    listed = []
    t_list = time.perf_counter()
    for model, partition in steps:
        window = _window(model, partition) if partition else None
        inputs = {name: _input_scan(lakehouse, read, window) for name, read in model.reads.items()}
        out = out_dir / f"{model.table}-{partition or 'all'}.parquet"
        listed.append((model, partition, window, inputs, out))
    list_seconds = time.perf_counter() - t_list

    parts = []
    t0 = time.perf_counter()
    for model, partition, window, inputs, out in listed:
        started = time.perf_counter()
        con = connect()
        try:
            for name, scan in inputs.items():
                _create_input(con, name, scan)
            for intermediate, sql in model.intermediate_sql():
                con.execute(intermediate.create_sql(sql))
            sql = sql_text(model.sql_path)
            params = {"window_start": window[0], "window_end": window[1]} if window else {}
            wanted = {k: v for k, v in params.items() if f"${k}" in sql} or None
            ((rows,),) = con.execute(
                f"copy ({sql}\n) to '{out}' (format parquet, {PARQUET_CODEC})", wanted
            ).fetchall()
        finally:
            con.close()
        parts.append(
            {
                "model": model.name,
                "partition": partition,
                "seconds": round(time.perf_counter() - started, 3),
                "rows": rows,
            }
        )
    return {
        "seconds": time.perf_counter() - t0,
        "list_seconds": round(list_seconds, 3),
        "rows": sum(p["rows"] for p in parts),
        "steps": parts,
    }


def ordered_steps(
    models: Iterable[Model], daily: Iterable[str], monthly: Iterable[str]
) -> list[tuple[Model, str | None]]:
    """The partitioned models over the given days and months, each model after the models it
    reads (days before months, as a run builds them); models reading a tag are left out (their
    floor is not defined: restatements after a close)."""
    chosen = [
        m
        for m in models
        if m.partitioning is not None and all(r.at_tag is None for r in m.reads.values())
    ]
    tables = {m.table for m in chosen}
    order: list[Model] = []
    pending = list(chosen)
    while pending:
        ready = [
            m
            for m in pending
            if all(
                r.table == m.table or r.table not in tables or r.table in {o.table for o in order}
                for r in m.reads.values()
            )
        ]
        if not ready:
            raise ValueError(f"a cycle among {[m.name for m in pending]}")
        order += ready
        pending = [m for m in pending if m not in ready]
    partitions = {"daily": sorted(daily), "monthly": sorted(monthly)}
    return [
        (model, key)
        for kind in ("daily", "monthly")
        for model in order
        if model.partitioning == kind
        for key in partitions[kind]
    ]


def task_floor(args: dict) -> dict:
    """The bench child: ``ingest`` (landing files) and/or ``models`` ([name, partition]) floors,
    in that order, written under ``out_dir``."""
    from c360_assets.definitions import all_models

    out_dir = Path(args["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"seconds": 0.0, "rows": 0}
    if args.get("ingest"):
        ingest = ingest_floor([Path(p) for p in args["ingest"]], out_dir / "ingest.parquet")
        result.update(seconds=ingest["seconds"], rows=ingest["rows"], ingest=ingest)
    if args.get("models"):
        by_name = {m.name: m for m in all_models()}
        steps = [(by_name[name], partition) for name, partition in args["models"]]
        built = model_floor(LakehouseResource.from_env(), steps, out_dir)
        result["seconds"] += built.pop("seconds")
        result["rows"] = result["rows"] or built["rows"]
        result["models"] = built
    return result


def floor_models(daily: Iterable[str], monthly: Iterable[str]) -> list[list]:
    """[name, partition] of the partitioned models over those days and months, in build order."""
    from c360_assets.definitions import all_models

    return [[m.name, key] for m, key in ordered_steps(all_models(), daily, monthly)]
