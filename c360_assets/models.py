"""SQL models as Dagster assets: one declaration per model, one factory for all of them.

A :class:`Model` names its SQL file (``sql/<layer>/<name>.sql``), its inputs, its partitioning,
the columns that make a row unique (checked on every build) and any further checks (SQL files
under ``sql/checks/`` that return violating rows). The factory turns it into an asset that:
scans the inputs for the partition's window, runs the SQL in DuckDB, replaces exactly that
partition of the Iceberg table, and reports row counts and check results.
"""

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue

from c360_assets.partitions import PARTITIONS, window_of
from c360_assets.sqlmodel import Read, SqlSession, between, open_model_session, sql_text
from resources.lakehouse import LakehouseResource


@dataclass(frozen=True)
class SqlCheck:
    """A check whose SQL (``sql/checks/<name>.sql``) returns the violating rows."""

    name: str
    description: str
    blocking: bool = True
    severity: str = "ERROR"  # or WARN


@dataclass(frozen=True)
class Model:
    name: str  # asset name, table name and SQL file name
    layer: str  # staging | core | marts: the namespace, the asset group and the sql/ folder
    reads: Mapping[str, Read]
    grain: tuple[str, ...]
    partitioning: str | None = None  # "daily" | "monthly"
    partition_column: str | None = None
    checks: tuple[SqlCheck, ...] = ()
    description: str = ""
    # extra metadata computed after the write, e.g. the partitions a change touched
    # (lakehouse, session, result, snapshot id before the write) -> metadata
    after_write: Callable[[LakehouseResource, SqlSession, pa.Table, int | None], Mapping] | None = (
        None
    )
    extra_deps: tuple[str, ...] = field(default=())

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def sql_path(self) -> str:
        return f"{self.layer}/{self.name}"


def asset_key_for_table(table: str) -> dg.AssetKey:
    namespace, name = table.split(".", 1)
    return dg.AssetKey(f"raw_{name}" if namespace == "raw" else name)


def grain_check_sql(grain: tuple[str, ...]) -> str:
    cols = ", ".join(grain)
    return (
        f"select {cols}, count(*) as rows_with_key from model_output "
        f"group by {cols} having count(*) > 1"
    )


def _check_result(
    session: SqlSession, name: str, sql: str, blocking: bool, severity: str
) -> dg.AssetCheckResult:
    violations = session.query(sql)
    sample = violations.slice(0, 5).to_pylist()
    return dg.AssetCheckResult(
        check_name=name,
        passed=violations.num_rows == 0,
        severity=dg.AssetCheckSeverity(severity),
        metadata={
            "violations": violations.num_rows,
            "sample": dg.MetadataValue.json(json.loads(json.dumps(sample, default=str))),
        },
    )


def _dep(model: Model, read: Read) -> dg.AssetDep:
    key = asset_key_for_table(read.table)
    if read.lookback_days and model.partitioning == "daily":
        mapping = dg.TimeWindowPartitionMapping(start_offset=-read.lookback_days)
        return dg.AssetDep(key, partition_mapping=mapping)
    return dg.AssetDep(key)


def _window_metadata(window: tuple[dt.date, dt.date] | None) -> dict:
    if window is None:
        return {}
    return {"window_start": window[0].isoformat(), "window_end": window[1].isoformat()}


def build_model_asset(model: Model) -> dg.AssetsDefinition:
    partitions_def = PARTITIONS.get(model.partitioning) if model.partitioning else None
    check_specs = [
        dg.AssetCheckSpec(
            "grain_is_unique",
            asset=model.name,
            blocking=True,
            description=f"one row per ({', '.join(model.grain)})",
        )
    ] + [
        dg.AssetCheckSpec(c.name, asset=model.name, blocking=c.blocking, description=c.description)
        for c in model.checks
    ]
    deps = [_dep(model, read) for read in model.reads.values()]
    deps += [dg.AssetDep(name) for name in model.extra_deps]
    description = model.description or sql_text(model.sql_path).split("\nwith", 1)[0]

    @dg.asset(
        name=model.name,
        group_name=model.layer,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        deps=deps,
        check_specs=check_specs,
        kinds={"duckdb", "iceberg"},
        description=description,
        metadata={"table": model.table, "grain": ", ".join(model.grain)},
    )
    def _asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        window = window_of(context) if partitions_def else None
        with open_model_session(lakehouse, model.reads, window) as session:
            result = session.query(sql_text(model.sql_path))
            where = between(model.partition_column, *window) if window else AlwaysTrue()
            before = lakehouse.current_snapshot_id(model.table)
            partition_by = (model.partition_column,) if model.partition_column else ()
            lakehouse.replace_where(model.table, result, where, partition_by)
            session.register("model_output", result)
            checks = [
                _check_result(
                    session, "grain_is_unique", grain_check_sql(model.grain), True, "ERROR"
                )
            ] + [
                _check_result(session, c.name, sql_text(f"checks/{c.name}"), c.blocking, c.severity)
                for c in model.checks
            ]
            extra = (
                dict(model.after_write(lakehouse, session, result, before))
                if model.after_write
                else {}
            )
        context.log.info(f"{model.table}: wrote {result.num_rows} rows for {window or 'all'}")
        return dg.MaterializeResult(
            metadata={"rows": result.num_rows, **_window_metadata(window), **extra},
            check_results=checks,
        )

    return _asset
