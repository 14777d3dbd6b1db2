"""SQL models as Dagster assets: one declaration per model, one factory for all of them.

A :class:`Model` names its SQL file (``sql/<domain>/<name>.sql``), its inputs, its partitioning,
the columns that make a row unique (checked on every build) and any further checks (SQL files
under ``sql/<domain>/checks/`` that return violating rows). The factory turns it into an asset that:
scans the inputs for the partition's window, runs the SQL in DuckDB, replaces exactly that
partition of the Iceberg table, and reports row counts and check results.
"""

import datetime as dt
import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, get_args

import dagster as dg
import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from c360_assets.lib import incremental
from c360_assets.lib.partitions import (
    BACKFILL_RUN_SIZE,
    advance,
    bounds,
    first_month,
    month_of,
    partitions_def,
    window_of,
)
from c360_assets.lib.sqlmodel import (
    SQL_DIR,
    Intermediate,
    Read,
    SqlSession,
    between,
    files_by_date,
    open_model_session,
    sql_text,
)
from c360_assets.lib.tablestats import column_schema, partition_row_counts, table_row_count
from resources.lakehouse import LakehouseResource

Layer = Literal["staging", "core", "marts"]  # the namespace, the asset group
Partitioning = Literal["daily", "monthly"]
Severity = Literal["ERROR", "WARN"]
Report = Literal["touched_dates", "touched_months"]  # what a change hook reports
LAYERS: tuple[Layer, ...] = get_args(Layer)
PARTITIONINGS: tuple[Partitioning, ...] = get_args(Partitioning)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
# an AssetCheckSpec's metadata key for the severity its failures carry (UI, `c360 graph`)
SEVERITY_METADATA = "c360/severity"


def check_spec(
    name: str, asset: str, description: str, blocking: bool, severity: Severity
) -> dg.AssetCheckSpec:
    """A check's spec, its severity in its metadata (a blocking check must be an ERROR)."""
    return dg.AssetCheckSpec(
        name,
        asset=asset,
        blocking=blocking,
        description=description,
        metadata={SEVERITY_METADATA: severity},
    )


# the table property a complete_on_first_build model's table carries once every partition has
# been built (see ``every_partition_due``)
COMPLETE = "c360.every-partition-built"
# a build step reads at most this many rows of its windowed inputs, unless one partition holds
# more: adjacent small partitions are built and committed together (see ``step_windows``)
MAX_STEP_ROWS = 1_000_000


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

    def nothing_changed(self) -> dict:
        """The report of a build that did not rewrite the table: no partition touched."""
        return {key: dg.MetadataValue.json([]) for key in sorted(self.reports)}


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
    # steps of the build that are not stored (``sql/<domain>/<name>.sql`` each), in order: the
    # model's SQL and its checks read them by name (see ``Intermediate``)
    intermediates: tuple[Intermediate, ...] = ()
    # a partitioned table that other models read whole: its first build (no table yet) writes
    # every partition that exists, not only the run's, so a model added to a lakehouse built
    # before it is complete after one run and its readers never see a month missing
    complete_on_first_build: bool = False

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
        if (
            self.rebuild_ahead or self.series or self.complete_on_first_build
        ) and self.partitioning is None:
            refuse("rebuild_ahead, series and complete_on_first_build need a partitioned model")
        if self.after_write is not None and self.partitioning is not None:
            refuse("a change report (after_write) belongs to an unpartitioned model")
        if self.series and self.complete_on_first_build:
            refuse("complete_on_first_build writes whole partitions: a series build patches them")
        if self.series and any(i.materialized == "temp_table" for i in self.intermediates):
            refuse("a series build narrows its inputs after the session opens: views only")
        if self.name in {i.name for i in self.intermediates}:
            refuse("an intermediate cannot have the model's name")
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names) or "grain_is_unique" in names:
            refuse(f"check names must be unique (grain_is_unique is implicit): {names}")

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def sql_path(self) -> str:
        return f"{self.domain}/{self.name}"

    def intermediate_sql(self) -> list[tuple[Intermediate, str]]:
        """Each intermediate with its SQL, in the order the session creates them."""
        return [(i, sql_text(f"{self.domain}/{i.name}")) for i in self.intermediates]


def earliest_changed_month(table: str, columns: tuple[str, ...]) -> ChangeReport:
    """An ``after_write`` hook for an unpartitioned model that monthly facts read.

    Compares the build with the previous one (on the columns both have) and reports, as
    ``touched_months``, the earliest UTC month of ``columns`` among the rows that differ (old
    and new values). The planner rebuilds from it through the latest month built
    (``plan.month_span``): a changed version, document or mapping can change every month from
    there on, and months after the data are never reported. The first build reports nothing:
    the ingestion of its inputs already touched their months. Without ``columns`` (a table of
    constants, e.g. currencies' minor units) a change touches every month: the first partition's.
    """

    def hook(lakehouse: LakehouseResource, session: SqlSession, before: int | None) -> dict:
        changed, months = 0, []
        if before is not None:
            previous = lakehouse.scan(table, snapshot_id=before)
            session.register("previous_output", previous)
            produced = session.query("select * from model_output limit 0").column_names
            common = ", ".join(c for c in produced if c in previous.column_names)
            earliest = (
                " union all ".join(
                    f"select min(date_trunc('month', {c}))::date as month from changed"
                    for c in columns
                )
                or "select null::date as month"
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
            if changed and not columns:
                months = [first_month()]
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


def _json_value(value: object) -> object:
    """A value JSON has no type for: a decimal of scale 0 (units, minor units) as an integer,
    any other (an amount with cents, a date) as its text."""
    if isinstance(value, Decimal) and value.as_tuple().exponent == 0:
        return int(value)
    return str(value)


def _json(rows: list[dict]) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(rows, default=_json_value)))


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


def partition_filter(model: Model, window: tuple[dt.date, dt.date] | None) -> BooleanExpression:
    """The rows of the model's table in ``window`` (every row: no window, or unpartitioned)."""
    if window is None or model.partition_column is None:
        return AlwaysTrue()
    return between(model.partition_column, *window)


def check_stored_partition(
    lakehouse: LakehouseResource, model: Model, window: tuple[dt.date, dt.date] | None
) -> list[dg.AssetCheckResult]:
    """Re-run the model's checks on what its table holds now for ``window`` (no rebuild).

    Only the inputs the check SQL names are scanned, and only the grain columns of the table
    when the grain is its only check.
    """
    check_sql = " ".join(sql_text(c.sql_path(model.domain)) for c in model.checks)
    intermediates = model.intermediate_sql()
    if any(i.name in check_sql for i, _ in intermediates):  # they read the inputs
        check_sql += " ".join(sql for _, sql in intermediates)
    else:
        intermediates = []
    reads = {name: read for name, read in model.reads.items() if name in check_sql}
    columns = ("*",) if model.checks else model.grain
    with open_model_session(lakehouse, reads, window, intermediates=intermediates) as session:
        where = partition_filter(model, window)
        session.register("model_output", lakehouse.scan(model.table, where, columns))
        return run_checks(session, model)


def every_partition_due(lakehouse: LakehouseResource, model: Model) -> bool:
    """Whether a ``complete_on_first_build`` model's build must write every partition: its
    table does not exist, or its first build stopped before its last commit (the table property
    ``COMPLETE`` is set only after that commit)."""
    if not model.complete_on_first_build:
        return False
    return lakehouse.table_property(model.table, COMPLETE) != "true"


def build_window(
    context: dg.AssetExecutionContext, model: Model, every_partition: bool = False
) -> tuple[dt.date, dt.date] | None:
    """The dates a build covers: the run's partitions plus up to ``rebuild_ahead`` partitions
    after them that are already built (one never built gets its baseline when it is built);
    with ``every_partition`` (``every_partition_due``), every partition that exists."""
    if not model.partitioning:
        return None
    start, end = window_of(context)
    if every_partition:
        first, final = bounds(model.partitioning)
        context.log.info(f"{model.table}: first build, every partition from {first} to {final}")
        return min(start, first), max(end, advance(final, model.partitioning))
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
    parts: list[tuple[dt.date, dt.date] | None] = []
    start = window[0]
    while start < window[1]:
        following = advance(start, partitioning)
        parts.append((start, min(following, window[1])))
        start = following
    return parts


def rows_per_partition(
    lakehouse: LakehouseResource, model: Model, window: tuple[dt.date, dt.date]
) -> dict[dt.date, int] | None:
    """The rows of the model's windowed inputs in each of its partitions within ``window``,
    from the Iceberg manifests (no data is read); None when an input is not partitioned by
    its window column (its rows per partition are unknown)."""
    assert model.partitioning is not None
    rows: dict[dt.date, int] = {}
    for read in model.reads.values():
        if read.window_column is None or not lakehouse.table_exists(read.table):
            continue
        table = lakehouse.load(read.table)
        found = files_by_date(table, read.window_column, between(read.window_column, *window))
        if found is None:
            return None
        for day, files in found.items():
            partition = day if model.partitioning == "daily" else month_of(day)
            rows[partition] = rows.get(partition, 0) + sum(f.record_count for f in files)
    return rows


def group_steps(
    parts: list[tuple[dt.date, dt.date]],
    rows: Mapping[dt.date, int] | None,
    limit: int,
) -> list[tuple[dt.date, dt.date]]:
    """Adjacent partitions joined into windows whose input rows add up to at most ``limit``;
    a partition holding more is a window of its own, and without counts every partition is."""
    if rows is None:
        return list(parts)
    windows: list[tuple[dt.date, dt.date]] = []
    total = 0
    for start, end in parts:
        count = rows.get(start, 0)
        if windows and windows[-1][1] == start and total + count <= limit:
            windows[-1] = (windows[-1][0], end)
            total += count
        else:
            windows.append((start, end))
            total = count
    return windows


def step_windows(
    lakehouse: LakehouseResource, model: Model, window: tuple[dt.date, dt.date] | None
) -> list[tuple[dt.date, dt.date] | None]:
    """The windows a build commits one by one: the partitions of ``window``, adjacent ones
    joined while their windowed inputs hold at most MAX_STEP_ROWS rows (memory is bounded by
    the larger of that and the largest partition; a range of small partitions is one commit)."""
    if window is None or model.partitioning is None:
        return [None]
    parts = [c for c in chunks(window, model.partitioning) if c is not None]
    return list(group_steps(parts, rows_per_partition(lakehouse, model, window), MAX_STEP_ROWS))


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
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    model: Model,
    every_partition: bool = False,
) -> tuple[list[Step], dict]:
    """The commits of one build (adjacent partitions together up to MAX_STEP_ROWS input rows:
    memory is bounded by that or the largest partition, not by the range) and metadata
    describing the plan; ``every_partition``: see ``build_window``."""
    full_requested = context.run.tags.get(incremental.FULL_TAG) == "full"
    if model.partitioning is None:
        return whole_table_steps(lakehouse, model, full_requested)
    if not model.series:
        window = build_window(context, model, every_partition)
        return [Step(w) for w in step_windows(lakehouse, model, window)], {}
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
        full_requested=full_requested,
    )
    if plan.mode == "no watermark":  # the run's days and the days ahead, in full
        steps = [Step(w) for w in step_windows(lakehouse, model, build_window(context, model))]
    else:
        days = [(day, day + dt.timedelta(days=1)) for day in plan.full_days]
        rows = rows_per_partition(lakehouse, model, (days[0][0], days[-1][1])) if days else {}
        steps = [Step(w) for w in group_steps(days, rows, MAX_STEP_ROWS)]
        steps += [Step(span, plan.changed_series) for span in plan.patch_spans]
    return _stamped(steps, plan.previous, plan.watermark), plan.metadata()


def whole_table_steps(
    lakehouse: LakehouseResource, model: Model, full_requested: bool
) -> tuple[list[Step], dict]:
    """An unpartitioned model: rewritten in one commit that records the watermark of its inputs
    (their snapshot ids and the SQL's hash), or not at all when the table's current snapshot
    already records the same watermark: the same SQL over the same inputs writes the same rows.
    Tag ``c360/rebuild=full`` rewrites it anyway; a read as of a tag always rewrites (a tag can
    move while the table's snapshot stays)."""
    marks = incremental.watermark_now(lakehouse, model.reads.values(), sql_text(model.sql_path))
    replayable = all(read.at_tag is None for read in model.reads.values())
    if (
        replayable
        and not full_requested
        and incremental.recorded_watermark(lakehouse, model.table) == marks
    ):
        return [], {"rebuild_mode": "unchanged"}
    return [Step(None, properties=incremental.watermark_properties(marks))], {}


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
    intermediates = model.intermediate_sql()
    with open_model_session(lakehouse, model.reads, window, intermediates=intermediates) as session:
        where = partition_filter(model, window)
        # the snapshot a change report compares the new rows with
        before = lakehouse.current_snapshot_id(model.table) if model.after_write else None
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
    the table, no rows written outside the run's partitions): then builds of different
    partitions run at once and only builds of the same partition are serialized."""
    return (
        model.partitioning is not None
        and not model.series
        and not model.rebuild_ahead
        and not model.complete_on_first_build
    )


def partition_lease(table: str, start: dt.date) -> str:
    """The lease name of one partition of a table (whoever writes or freezes that partition)."""
    return f"{table}/{start.isoformat()}"


def step_leases(model: Model, step: "Step") -> list[str]:
    """The leases a build step holds, in one global order (by name): the table's for a model
    that is not partition-local (held for the whole build instead, see ``build_model_asset``),
    else one per partition of the step's window, so steps of two runs that share partitions
    take them in the same order and never wait for each other in a circle."""
    if not partition_local(model) or step.window is None or model.partitioning is None:
        return []
    return sorted(
        partition_lease(model.table, part[0])
        for part in chunks(step.window, model.partitioning)
        if part is not None
    )


def merge_checks(per_chunk: list[list[dg.AssetCheckResult]]) -> list[dg.AssetCheckResult]:
    """One result per check over all steps: passed only if every step passed."""
    if len(per_chunk) == 1:
        return per_chunk[0]
    merged = []
    for results in zip(*per_chunk, strict=True):
        failing = [r for r in results if not r.passed]
        first = (failing or list(results))[0]
        violations = sum(r.metadata["violations"].value for r in results)
        metadata = {
            "violations": violations,
            "steps_failing": len(failing),
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


def sql_description(sql: str) -> str:
    """The SQL file's header comment as Markdown: the ``--`` markers gone, each paragraph one
    block, indented or ``-``/``1.`` lines as list items (deeper-indented lines continue them)."""
    blocks: list[list[str]] = []
    item_indent = None  # the indentation of the current list item, None in a paragraph
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        text = line[2:].removeprefix(" ")
        stripped = text.lstrip()
        indent = len(text) - len(stripped)
        if not stripped:
            item_indent = None
            blocks.append([])
        elif item_indent is not None and indent > item_indent:
            blocks[-1][-1] += " " + stripped  # continues the item
        elif indent >= 2 or re.match(r"(- |\d+\. )", stripped):
            if item_indent is None:
                blocks.append([])
            item_indent = indent
            if not re.match(r"(- |\d+\. )", stripped):  # "term   meaning" -> "- `term` meaning"
                stripped = "- " + re.sub(r"^(\S+)\s{2,}", r"`\1` ", stripped)
            blocks[-1].append(stripped)
        elif item_indent is not None or not blocks:
            item_indent = None
            blocks.append([stripped])
        else:
            blocks[-1][-1] += " " + stripped  # continues the paragraph
    return "\n\n".join("\n".join(b) for b in blocks if b)


# Dagster marks these beta; c360 uses them on purpose (a backfill split into runs of a few
# partitions; a link from each asset to its SQL file), so their warnings say nothing new.
DELIBERATE_BETAS = (
    "Parameter `backfill_policy` of function `asset`",
    "Class `LocalFileCodeReference`",
    "Class `CodeReferencesMetadataValue`",
)


@contextmanager
def deliberate_betas() -> Iterator[None]:
    """Silence Dagster's BetaWarning for exactly ``DELIBERATE_BETAS``, for a block."""
    with warnings.catch_warnings():
        for api in DELIBERATE_BETAS:
            warnings.filterwarnings(
                "ignore", message=re.escape(api) + " is currently in beta", category=dg.BetaWarning
            )
        yield


@dataclass(frozen=True)
class Ownership:
    """Who answers for a domain's assets and how the UI groups them (``defs/domains.py``)."""

    owners: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


def trino_table_name(table: str) -> str:
    """The name BI tools query a table by (Trino's ``iceberg`` catalog, CONTRACT section 3)."""
    return f"iceberg.{table}"


def _definition_metadata(model: Model) -> dict:
    paths = [model.sql_path] + [f"{model.domain}/{i.name}" for i in model.intermediates]
    references = dg.CodeReferencesMetadataValue(
        code_references=[
            dg.LocalFileCodeReference(
                file_path=str(SQL_DIR / f"{path}.sql"), line_number=1, label=f"sql/{path}.sql"
            )
            for path in paths
        ]
    )
    metadata = {
        "table": model.table,
        "grain": ", ".join(model.grain),
        "dagster/table_name": trino_table_name(model.table),
        "dagster/code_references": references,
    }
    if model.intermediates:  # computed inside each build, never stored
        metadata["intermediates"] = ", ".join(
            f"{i.name} ({i.materialized})" for i in model.intermediates
        )
    return metadata


def _partition_metadata(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource, model: Model, steps, checks
) -> None:
    """``dagster/row_count`` of every partition of the run as the table holds it now, and the
    violations each check found in its partitions (per-partition plots)."""
    if model.partitioning is None or model.partition_column is None:
        raise ValueError(f"{model.name}: per-partition metadata of an unpartitioned model")
    keys = context.partition_keys
    run_window = window_of(context)
    counts = partition_row_counts(lakehouse, model.table, model.partition_column, run_window)
    for key in keys:
        context.add_asset_metadata(
            {"dagster/row_count": counts.get(dt.date.fromisoformat(key), 0)}, partition_key=key
        )
    for step, results in zip(steps, checks, strict=False):
        if step.window is None or step.series is not None:
            continue  # a patch of some series: not a whole partition's count
        built = []  # the partitions of this step (adjacent small ones are built together)
        start = step.window[0]
        while start < step.window[1]:
            built.append(start.isoformat())
            start = advance(start, model.partitioning)
        violations = _violations(results)
        for key in set(built) & set(keys):
            # a step of one partition: its counts; of several: a check that found none in the
            # step found none in each (a count above 0 cannot be split among them)
            known = {n: v for n, v in violations.items() if len(built) == 1 or v == 0}
            context.add_asset_metadata(known, partition_key=key)


def _violations(results: list[dg.AssetCheckResult]) -> dict[str, int]:
    counts = {f"violations/{r.check_name}": r.metadata["violations"].value for r in results}
    return {name: value for name, value in counts.items() if isinstance(value, int)}


def build_model_asset(model: Model, ownership: Ownership | None = None) -> dg.AssetsDefinition:
    ownership = ownership or Ownership()
    check_specs = [
        check_spec(
            "grain_is_unique", model.name, f"one row per ({', '.join(model.grain)})", True, "ERROR"
        )
    ] + [
        check_spec(c.name, model.name, c.description, c.blocking, c.severity) for c in model.checks
    ]
    # a model reading its own previous output (e.g. to keep first-seen times) does not depend on
    # it; a table read twice (e.g. now and as of a tag) is one dependency
    by_table: dict[str, dg.AssetDep] = {}
    for read in model.reads.values():
        if read.table != model.table:
            by_table.setdefault(read.table, _dep(model, read))
    deps = [*by_table.values(), *(dg.AssetDep(name) for name in model.extra_deps)]
    description = model.description or sql_description(sql_text(model.sql_path))

    with deliberate_betas():

        @dg.asset(
            name=model.name,
            group_name=model.layer,
            partitions_def=partitions_def(model.partitioning) if model.partitioning else None,
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
            owners=list(ownership.owners),
            tags={**ownership.tags, "layer": model.layer},
            metadata=_definition_metadata(model),
        )
        def _asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
            with ExitStack() as whole:
                if not partition_local(model):  # planned from the table's state: one at a time
                    whole.enter_context(lakehouse.lease(model.table, on_wait=context.log.info))
                every_partition = every_partition_due(lakehouse, model)
                steps, extra = build_steps(context, lakehouse, model, every_partition)
                rows, per_chunk = 0, []
                for step in steps:
                    with ExitStack() as held:
                        for name in step_leases(model, step):
                            held.enter_context(lakehouse.lease(name, on_wait=context.log.info))
                        written, checks, step_extra = _build(lakehouse, model, step)
                    rows += written
                    per_chunk.append(checks)
                    extra.update(step_extra)
                    what = "changed series of" if step.series is not None else "all of"
                    context.log.info(
                        f"{model.table}: wrote {written} rows for {what} {step.window or 'all'}"
                    )
                if every_partition:  # its last commit is in (the window held a partition,
                    # so the write made the table): later builds write their own partitions only
                    lakehouse.set_table_property(model.table, COMPLETE, "true")
            if not per_chunk:  # nothing changed that this build depends on
                stored = window_of(context) if model.partitioning else None
                per_chunk.append(check_stored_partition(lakehouse, model, stored))
                if model.after_write is not None:
                    extra.update(model.after_write.nothing_changed())
            windows = [s.window for s in steps if s.window]
            window = (min(w[0] for w in windows), max(w[1] for w in windows)) if windows else None
            merged = merge_checks(per_chunk)
            metadata = {
                "rows": rows,
                **_window_metadata(window),
                **extra,
                "dagster/column_schema": column_schema(lakehouse, model.table),
            }
            if model.partitioning:
                _partition_metadata(context, lakehouse, model, steps, per_chunk)
            else:
                metadata["dagster/row_count"] = table_row_count(lakehouse, model.table)
                metadata.update(_violations(merged))
            return dg.MaterializeResult(metadata=metadata, check_results=merged)

    return _asset
