"""SQL models as Dagster assets: one declaration per model, one factory for all of them.

A :class:`Model` names its SQL file (``sql/<domain>/<name>.sql``), its inputs, its partitioning,
the columns that make a row unique (checked on every build) and any further checks (SQL files
under ``sql/<domain>/checks/`` that return violating rows). The factory turns it into an asset that:
scans the inputs for the partition's window, runs the SQL in DuckDB, replaces exactly that
partition of the Iceberg table, and reports row counts and check results.
"""

import datetime as dt
import json
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Literal, get_args

import dagster as dg
import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue

from c360_assets.lib import incremental
from c360_assets.lib.partitions import BACKFILL_RUN_SIZE, PARTITIONS, advance, window_of
from c360_assets.lib.sqlmodel import Read, SqlSession, between, open_model_session, sql_text
from resources.lakehouse import LakehouseResource

Layer = Literal["staging", "core", "marts"]  # the namespace, the asset group
Partitioning = Literal["daily", "monthly"]
Severity = Literal["ERROR", "WARN"]
Report = Literal["touched_dates", "touched_months"]  # what a change hook reports
LAYERS: tuple[Layer, ...] = get_args(Layer)
PARTITIONINGS: tuple[Partitioning, ...] = get_args(Partitioning)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


class ModelDeclarationError(ValueError):
    """A model or check declaration that cannot run as declared (raised at definition time)."""


@dataclass(frozen=True)
class SqlCheck:
    """A check whose SQL (``sql/<domain>/checks/<name>.sql``) returns the violating rows.

    ``domain`` is the folder of its SQL; None: the domain of the model it is attached to.
    A blocking check is an ERROR (downstream assets do not run); a WARN never blocks.
    The first rows the SQL returns are the check's sample (order them to show the worst first).
    ``summary`` names a second SQL file of the same folder whose rows (e.g. counts per month
    and status) the check reports in its metadata whether it passes or not.
    """

    name: str
    description: str
    blocking: bool = True
    severity: Severity = "ERROR"
    domain: str | None = None
    summary: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ModelDeclarationError(
                f"check {self.name}: severity {self.severity!r} is not one of {SEVERITIES}"
            )
        if self.blocking and self.severity != "ERROR":
            raise ModelDeclarationError(f"check {self.name}: a blocking check must be an ERROR")

    def sql_path(self, model_domain: str, name: str | None = None) -> str:
        return f"{self.domain or model_domain}/checks/{name or self.name}"


AfterWriteFn = Callable[[LakehouseResource, SqlSession, int | None], Mapping]


@dataclass(frozen=True)
class ChangeReport:
    """An ``after_write`` hook of an unpartitioned model: ``fn(lakehouse, session, snapshot id
    before the write)`` returns metadata holding the partitions the change touched under the
    keys in ``reports``, so partitioned models reading it are rebuilt there."""

    fn: AfterWriteFn
    reports: frozenset[Report]

    def __call__(
        self, lakehouse: LakehouseResource, session: SqlSession, before: int | None
    ) -> Mapping:
        return self.fn(lakehouse, session, before)


@dataclass(frozen=True)
class Model:
    """A SQL model: ``sql/<domain>/<name>.sql`` written to the Iceberg table ``<layer>.<name>``."""

    name: str  # asset name, table name and SQL file name
    layer: Layer
    domain: str  # the sql/ folder of its SQL and checks
    reads: Mapping[str, Read]
    grain: tuple[str, ...]
    partitioning: Partitioning | None = None
    partition_column: str | None = None
    checks: tuple[SqlCheck, ...] = ()
    description: str = ""
    # the partitions a change of an unpartitioned model touched, computed after its write
    after_write: ChangeReport | None = None
    extra_deps: tuple[str, ...] = field(default=())
    # partitions after the window whose rows depend on the window's data (e.g. trailing baselines
    # of the following days): each build also rewrites them, so late data never leaves them stale
    rebuild_ahead: int = 0
    # columns of a series when a row depends on its windowed inputs only through its own series'
    # rows: builds then rewrite only the series whose inputs changed (lib/incremental.py)
    series: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def refuse(why: str) -> None:
            raise ModelDeclarationError(f"model {self.name}: {why}")

        if self.layer not in LAYERS:
            refuse(f"layer {self.layer!r} is not one of {LAYERS}")
        if self.partitioning is not None and self.partitioning not in PARTITIONINGS:
            refuse(f"partitioning {self.partitioning!r} is not one of {PARTITIONINGS}")
        if (self.partitioning is None) != (self.partition_column is None):
            refuse("partitioning and partition_column are declared together or not at all")
        if self.partition_column is not None and self.partition_column not in self.grain:
            refuse(f"the partition column {self.partition_column} is not part of the grain")
        if not self.grain:
            refuse("a grain (the columns that make a row unique) is required")
        if (self.rebuild_ahead or self.series) and self.partitioning is None:
            refuse("rebuild_ahead and series need a partitioned model")
        if self.after_write is not None and self.partitioning is not None:
            refuse("a change report (after_write) belongs to an unpartitioned model")
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names) or "grain_is_unique" in names:
            refuse(f"check names must be unique (grain_is_unique is implicit): {names}")

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def sql_path(self) -> str:
        return f"{self.domain}/{self.name}"


def earliest_changed_month(table: str, columns: tuple[str, ...]) -> ChangeReport:
    """An ``after_write`` hook for an unpartitioned model that monthly facts read.

    Compares the build with the previous one (on the columns both have) and reports, as
    ``touched_months``, the earliest UTC month of ``columns`` among the rows that differ (old
    and new values). The planner rebuilds from it through the latest month built
    (``plan.month_span``): a changed version, document or mapping can change every month from
    there on, and months after the data are never reported. The first build reports nothing:
    the ingestion of its inputs already touched their months.
    """

    def hook(lakehouse: LakehouseResource, session: SqlSession, before: int | None) -> dict:
        changed, months = 0, []
        if before is not None:
            previous = lakehouse.scan(table, snapshot_id=before)
            session.register("previous_output", previous)
            produced = session.query("select * from model_output limit 0").column_names
            common = ", ".join(c for c in produced if c in previous.column_names)
            earliest = " union all ".join(
                f"select min(date_trunc('month', {c}))::date as month from changed" for c in columns
            )
            found = session.query(
                f"""
                with changed as (
                    (select {common} from model_output except select {common} from previous_output)
                    union all
                    (select {common} from previous_output except select {common} from model_output)
                )
                select
                    (select count(*) from changed) as changed_rows,
                    (select min(month) from ({earliest})) as earliest_month
                """
            ).to_pylist()[0]
            changed = found["changed_rows"]
            months = [found["earliest_month"]] if found["earliest_month"] else []
        return {
            "changed_rows": changed,
            "touched_months": dg.MetadataValue.json([m.isoformat() for m in months]),
        }

    return ChangeReport(hook, frozenset({"touched_months"}))


def asset_key_for_table(table: str) -> dg.AssetKey:
    namespace, name = table.split(".", 1)
    return dg.AssetKey(f"raw_{name}" if namespace == "raw" else name)


def grain_check_sql(grain: tuple[str, ...]) -> str:
    cols = ", ".join(grain)
    return (
        f"select {cols}, count(*) as rows_with_key from model_output "
        f"group by {cols} having count(*) > 1"
    )


def _json(rows: list[dict]) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(rows, default=str)))


def _check_result(
    session: SqlSession,
    name: str,
    sql: str,
    blocking: bool,
    severity: str,
    summary_sql: str | None = None,
) -> dg.AssetCheckResult:
    violations = session.query(sql)
    sample = violations.slice(0, 5).to_pylist()
    metadata = {"violations": violations.num_rows, "sample": _json(sample)}
    if summary_sql is not None:
        metadata["summary"] = _json(session.query(summary_sql).to_pylist())
    return dg.AssetCheckResult(
        check_name=name,
        passed=violations.num_rows == 0,
        severity=dg.AssetCheckSeverity(severity),
        metadata=metadata,
    )


def run_checks(session: SqlSession, model: Model) -> list[dg.AssetCheckResult]:
    """The model's checks over ``model_output`` (and its inputs) in an open session."""
    return [
        _check_result(session, "grain_is_unique", grain_check_sql(model.grain), True, "ERROR")
    ] + [
        _check_result(
            session,
            c.name,
            sql_text(c.sql_path(model.domain)),
            c.blocking,
            c.severity,
            c.summary and sql_text(c.sql_path(model.domain, c.summary)),
        )
        for c in model.checks
    ]


def check_stored_partition(
    lakehouse: LakehouseResource, model: Model, window: tuple[dt.date, dt.date] | None
) -> list[dg.AssetCheckResult]:
    """Re-run the model's checks on what its table holds now for ``window`` (no rebuild).

    Only the inputs the check SQL names are scanned, and only the grain columns of the table
    when the grain is its only check.
    """
    check_sql = " ".join(sql_text(c.sql_path(model.domain)) for c in model.checks)
    reads = {name: read for name, read in model.reads.items() if name in check_sql}
    columns = ("*",) if model.checks else model.grain
    with open_model_session(lakehouse, reads, window) as session:
        where = between(model.partition_column, *window) if window else AlwaysTrue()
        session.register("model_output", lakehouse.scan(model.table, where, columns))
        return run_checks(session, model)


def build_window(context: dg.AssetExecutionContext, model: Model) -> tuple[dt.date, dt.date] | None:
    """The dates a build covers: the run's partitions plus up to ``rebuild_ahead`` partitions
    after them that are already built (one never built gets its baseline when it is built)."""
    if not model.partitioning:
        return None
    start, end = window_of(context)
    if model.rebuild_ahead:
        built = context.instance.get_materialized_partitions(context.asset_key)
        last = max((dt.date.fromisoformat(key) for key in built), default=None)
        if last is not None:
            ahead = advance(end, model.partitioning, model.rebuild_ahead)
            end = max(end, min(ahead, advance(last, model.partitioning)))
    return start, end


def chunks(
    window: tuple[dt.date, dt.date] | None, partitioning: str | None
) -> list[tuple[dt.date, dt.date] | None]:
    """The window cut into single partitions ([None] for an unpartitioned model)."""
    if window is None or partitioning is None:
        return [None]
    parts, start = [], window[0]
    while start < window[1]:
        following = advance(start, partitioning)
        parts.append((start, min(following, window[1])))
        start = following
    return parts


@dataclass(frozen=True)
class Step:
    """One commit of a build: a window (None: the whole table), rebuilt in full or, with
    ``series``, only for those series (the window's other rows are kept)."""

    window: tuple[dt.date, dt.date] | None
    series: pa.Table | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


def patch_sql(sql: str, series: tuple[str, ...]) -> str:
    """The model's rows for ``changed_series`` plus the kept rows of every other series."""
    using = ", ".join(f'"{c}"' for c in series)
    return (
        f"select * from (\n{sql}\n)\nunion all by name\n"
        f"select * from kept_rows anti join changed_series using ({using})"
    )


def build_steps(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource, model: Model
) -> tuple[list[Step], dict]:
    """The commits of one build (one partition at a time: memory is bounded by the largest
    partition, not by the range) and metadata describing the plan."""
    if not model.series:
        return [
            Step(chunk) for chunk in chunks(build_window(context, model), model.partitioning)
        ], {}
    start, end = window_of(context)
    run_days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    materialized = {
        dt.date.fromisoformat(k)
        for k in context.instance.get_materialized_partitions(context.asset_key)
    }
    plan = incremental.plan_build(
        lakehouse,
        model.table,
        model.reads.values(),
        sql_text(model.sql_path),
        model.series,
        model.rebuild_ahead,
        run_days,
        materialized,
        full_requested=context.run.tags.get(incremental.FULL_TAG) == "full",
    )
    if plan.mode == "no watermark":  # the run's days and the days ahead, in full
        steps = [Step(c) for c in chunks(build_window(context, model), model.partitioning)]
    else:
        steps = [Step((day, day + dt.timedelta(days=1))) for day in plan.full_days]
        steps += [Step(span, plan.changed_series) for span in plan.patch_spans]
    return _stamped(steps, plan.previous, plan.watermark), plan.metadata()


def _stamped(steps: list[Step], meanwhile: dict | None, last: dict) -> list[Step]:
    """The watermark each commit records: the run's last commit moves it to ``last``; the
    others keep ``meanwhile`` (the one the run started from), so a run that stops halfway is
    diffed again from there."""
    marks = [meanwhile] * (len(steps) - 1) + [last]
    return [
        Step(s.window, s.series, incremental.watermark_properties(m))
        for s, m in zip(steps, marks, strict=False)
    ]


def _build(
    lakehouse: LakehouseResource, model: Model, step: Step
) -> tuple[int, list[dg.AssetCheckResult], dict]:
    """Build one step: scan, run the SQL, replace the window's rows, check, report."""
    window = step.window
    with open_model_session(lakehouse, model.reads, window) as session:
        where = between(model.partition_column, *window) if window else AlwaysTrue()
        before = lakehouse.current_snapshot_id(model.table)
        partition_by = (model.partition_column,) if model.partition_column else ()
        sql = sql_text(model.sql_path)
        if step.series is not None:
            windowed = [name for name, read in model.reads.items() if read.window_column]
            session.restrict(windowed, step.series, model.series)
            session.register("kept_rows", lakehouse.scan(model.table, where))
            sql = patch_sql(sql, model.series)
        rows = session.write_output(
            lakehouse, model.table, sql, where, partition_by, step.properties
        )
        checks = run_checks(session, model)
        extra = dict(model.after_write(lakehouse, session, before)) if model.after_write else {}
    return rows, checks, extra


def partition_local(model: Model) -> bool:
    """Whether a build of one partition depends on nothing but its inputs (no plan read from
    the table, no rows written ahead of the run's partitions): then builds of different
    partitions run at once and only builds of the same partition are serialized."""
    return model.partitioning is not None and not model.series and not model.rebuild_ahead


def partition_lease(table: str, start: dt.date) -> str:
    """The lease name of one partition of a table (whoever writes or freezes that partition)."""
    return f"{table}/{start.isoformat()}"


def merge_checks(per_chunk: list[list[dg.AssetCheckResult]]) -> list[dg.AssetCheckResult]:
    """One result per check over all chunks: passed only if every chunk passed."""
    if len(per_chunk) == 1:
        return per_chunk[0]
    merged = []
    for results in zip(*per_chunk, strict=True):
        failing = [r for r in results if not r.passed]
        first = (failing or list(results))[0]
        violations = sum(r.metadata["violations"].value for r in results)
        metadata = {
            "violations": violations,
            "partitions_failing": len(failing),
            "sample": first.metadata["sample"],
        }
        if "summary" in first.metadata:  # per-partition rows: every chunk's, and its sample
            metadata["summary"] = _json(
                [row for r in results for row in r.metadata["summary"].data]
            )
            metadata["sample"] = _json([row for r in failing for row in r.metadata["sample"].data])
        merged.append(
            dg.AssetCheckResult(
                check_name=first.check_name,
                passed=not failing,
                severity=first.severity,
                metadata=metadata,
            )
        )
    return merged


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
    # a model reading its own previous output (e.g. to keep first-seen times) does not depend on
    # it; a table read twice (e.g. now and as of a tag) is one dependency
    by_table: dict[str, dg.AssetDep] = {}
    for read in model.reads.values():
        if read.table != model.table:
            by_table.setdefault(read.table, _dep(model, read))
    deps = [*by_table.values(), *(dg.AssetDep(name) for name in model.extra_deps)]
    description = model.description or sql_text(model.sql_path).split("\nwith", 1)[0]

    @dg.asset(
        name=model.name,
        group_name=model.layer,
        partitions_def=partitions_def,
        # a backfill of many partitions becomes several runs that the run queue runs at once
        backfill_policy=(
            dg.BackfillPolicy.multi_run(BACKFILL_RUN_SIZE[model.partitioning])
            if model.partitioning
            else None
        ),
        deps=deps,
        check_specs=check_specs,
        kinds={"duckdb", "iceberg"},
        description=description,
        metadata={"table": model.table, "grain": ", ".join(model.grain)},
    )
    def _asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
        with ExitStack() as whole:
            if not partition_local(model):  # planned from the table's state: one build at a time
                whole.enter_context(lakehouse.lease(model.table, on_wait=context.log.info))
            steps, extra = build_steps(context, lakehouse, model)
            rows, per_chunk = 0, []
            for step in steps:
                with ExitStack() as one:
                    if partition_local(model) and step.window is not None:
                        name = partition_lease(model.table, step.window[0])
                        one.enter_context(lakehouse.lease(name, on_wait=context.log.info))
                    written, checks, step_extra = _build(lakehouse, model, step)
                rows += written
                per_chunk.append(checks)
                extra.update(step_extra)
                what = "changed series of" if step.series is not None else "all of"
                context.log.info(
                    f"{model.table}: wrote {written} rows for {what} {step.window or 'all'}"
                )
        if not per_chunk:  # nothing changed that this build depends on
            per_chunk.append(check_stored_partition(lakehouse, model, window_of(context)))
        windows = [s.window for s in steps if s.window]
        window = (min(w[0] for w in windows), max(w[1] for w in windows)) if windows else None
        return dg.MaterializeResult(
            metadata={"rows": rows, **_window_metadata(window), **extra},
            check_results=merge_checks(per_chunk),
        )

    return _asset
