"""Serving: what Trino users see of the lakehouse, and what Dagster knows of Trino.

Trino reads the pipeline's own Iceberg tables (catalog ``iceberg``, schemas raw/staging/core/
marts) through the PostgreSQL JDBC catalog: nothing is copied. On top of the marts:

- **BI views** in ``iceberg.bi``: one Trino SQL file per view, ``sql/serving/bi/<view>.sql``,
  holding the view's query; the DDL around it (``create or replace view iceberg.bi.<view>
  comment ... security invoker as``) is added here, so every view is SECURITY INVOKER: the
  reader's own rights and column masks apply (the bi user sees ``owner_email`` masked through a
  view too).
  A view reads marts and may read other BI views (``bi.customers``, the customer as its latest
  version, is shared this way); views are created after the views they read.
  ``create_bi_views`` runs them: ``c360 stack up`` calls it once the stack is ready, and the
  ``bi_views`` asset after each ``c360 run``. A view is re-created only when its file changed
  (the file's digest is kept in the view's comment), so calling it again rewrites nothing.
  Trino 476 stores these views in the Iceberg JDBC catalog itself (Iceberg view metadata,
  ``iceberg_type = 'VIEW'`` rows; pyiceberg's SqlCatalog never lists or loads them as tables).
- **Parity**: :func:`compare_with_trino` reads a mart's row count and key sums through Trino and
  through pyiceberg + DuckDB at the same snapshot (``FOR VERSION AS OF``), so a concurrent
  commit never makes them differ. :func:`serving_definitions` turns it into a non-blocking
  ``trino_matches_iceberg`` asset check on every mart, over the partitions its latest build
  wrote (a partitioned mart's check does not grow with its history).

Trino joins the Dagster definitions only when configured (``C360_TRINO_HOST``, exported by
``c360 stack env``); the embedded default has no Trino, no ``bi_views`` asset and no checks.
"""

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import dagster as dg
from pyiceberg.expressions import AlwaysTrue

from c360_assets.lib.models import SEVERITY_METADATA, Model, asset_key_for_table
from c360_assets.lib.sqlmodel import SQL_DIR, between, run_sql
from c360_assets.lib.sqlquote import literal
from resources.lakehouse import LakehouseResource
from resources.trino import TRINO_CATALOG, TrinoResource

BI_SCHEMA = "bi"
VIEWS_DIR = SQL_DIR / "serving" / "bi"
VIEW_MARKER = "c360 sha256:"  # in a view's comment: the digest of the file that created it
BI_VIEWS_ASSET = "bi_views"
SERVING_JOB = "serving_job"
PARITY_CHECK = "trino_matches_iceberg"

_READS = re.compile(r"\biceberg\.(?P<schema>\w+)\.\"?(?P<table>\w+)", re.IGNORECASE)


# --------------------------------------------------------------------------- BI views


@dataclass(frozen=True)
class BiView:
    """One file of sql/serving/bi/: the query of the view ``iceberg.bi.<file name>``.

    The file holds the view's ``select`` (Trino SQL) under a header comment (grain, date basis);
    :meth:`statement` wraps it in the DDL, always ``SECURITY INVOKER``, with the header and the
    file's digest as the view's comment.
    """

    name: str
    query: str
    description: str  # the file's leading comment
    reads: tuple[str, ...]  # "schema.table" of every table it reads (through ``uses`` too)
    digest: str
    uses: tuple[str, ...] = ()  # the other BI views it reads (``iceberg.bi.<name>``)

    @classmethod
    def from_file(cls, path: Path) -> "BiView":
        text = path.read_text()
        comment: list[str] = []
        body: list[str] = []
        for line in text.splitlines():
            if line.startswith("--") and not body:
                comment.append(line.removeprefix("--").strip())
            else:
                body.append(line)
        query = "\n".join(body).strip().rstrip(";").strip()
        if not re.match(r"(with|select)\b", query, re.IGNORECASE):
            raise ValueError(f"{path}: a BI view file holds the view's query (with/select ...)")
        found = {(m["schema"].lower(), m["table"].lower()) for m in _READS.finditer(query)}
        return cls(
            name=path.stem,
            query=query,
            description=" ".join(comment),
            reads=tuple(sorted(f"{s}.{t}" for s, t in found if s != BI_SCHEMA)),
            digest=hashlib.sha256(text.encode()).hexdigest()[:16],
            uses=tuple(sorted(t for s, t in found if s == BI_SCHEMA)),
        )

    @property
    def comment(self) -> str:
        return f"{self.description} [{VIEW_MARKER}{self.digest}]"

    def statement(self) -> str:
        """The DDL: one atomic ``create or replace``, security invoker, commented."""
        return (
            f"create or replace view {TRINO_CATALOG}.{BI_SCHEMA}.{self.name}\n"
            f"comment {literal(self.comment)}\n"
            f"security invoker\n"
            f"as\n{self.query}"
        )


def load_bi_views(directory: Path = VIEWS_DIR) -> list[BiView]:
    """The views of ``directory`` in creation order: a view after the BI views it reads.

    A view's ``reads`` include the tables it reads through those views, so it is skipped when
    they are (see :func:`create_bi_views`) and the ``bi_views`` asset depends on them.
    """
    files = {v.name: v for v in map(BiView.from_file, sorted(directory.glob("*.sql")))}
    ordered: dict[str, BiView] = {}

    def resolve(view: BiView, path: tuple[str, ...]) -> BiView:
        if view.name in ordered:
            return ordered[view.name]
        reads = set(view.reads)
        for name in view.uses:
            if name in path:
                raise ValueError(f"BI views read each other: {' -> '.join((*path, name))}")
            if name not in files:
                raise ValueError(f"bi.{view.name} reads bi.{name}: no {name}.sql in {directory}")
            reads |= set(resolve(files[name], (*path, name)).reads)
        ordered[view.name] = replace(view, reads=tuple(sorted(reads)))
        return ordered[view.name]

    for view in files.values():
        resolve(view, (view.name,))
    return list(ordered.values())


def _existing_tables(trino: TrinoResource, schemas: Iterable[str]) -> set[str]:
    names = ", ".join(literal(s) for s in sorted(set(schemas)))
    if not names:
        return set()
    rows = trino.query(
        f"select table_schema || '.' || table_name from {TRINO_CATALOG}.information_schema.tables "
        f"where table_schema in ({names})"
    )
    return {row[0] for row in rows}


def _view_comments(trino: TrinoResource) -> dict[str, str | None]:
    """The views of iceberg.bi and their comments."""
    views = {
        row[0]
        for row in trino.query(
            f"select table_name from {TRINO_CATALOG}.information_schema.tables "
            f"where table_schema = '{BI_SCHEMA}' and table_type = 'VIEW'"
        )
    }
    comments = dict(
        trino.query(
            "select table_name, comment from system.metadata.table_comments "
            f"where catalog_name = '{TRINO_CATALOG}' and schema_name = '{BI_SCHEMA}'"
        )
    )
    return {name: comments.get(name) for name in views}


def create_bi_views(trino: TrinoResource, views: Sequence[BiView] | None = None) -> dict[str, str]:
    """Create or refresh every view of sql/serving/bi/ in ``iceberg.bi``; returns view -> outcome.

    Outcomes: ``created``, ``replaced`` (its file changed), ``unchanged``, ``skipped: missing
    marts.x`` (a table it reads, itself or through a BI view it reads, does not exist yet),
    ``dropped`` (a view this function made whose file is gone). Views are created in the order
    of :func:`load_bi_views`, a view after the views it reads. ``trino`` must be allowed to
    create views (the admin user ``c360``).
    """
    views = load_bi_views() if views is None else list(views)
    trino.query(f"create schema if not exists {TRINO_CATALOG}.{BI_SCHEMA}")
    existing = _view_comments(trino)
    tables = _existing_tables(trino, (r.split(".")[0] for v in views for r in v.reads))
    outcome: dict[str, str] = {}
    for view in views:
        missing = [r for r in view.reads if r not in tables]
        if missing:
            outcome[view.name] = f"skipped: missing {', '.join(missing)}"
            continue
        if view.name in existing and existing[view.name] == view.comment:
            outcome[view.name] = "unchanged"
            continue
        trino.query(view.statement())
        outcome[view.name] = "replaced" if view.name in existing else "created"
    ours = {name for name, comment in existing.items() if comment and VIEW_MARKER in comment}
    for name in sorted(ours - {v.name for v in views}):
        trino.query(f"drop view {TRINO_CATALOG}.{BI_SCHEMA}.{name}")
        outcome[name] = "dropped"
    return outcome


# --------------------------------------------------------------------------- parity


@dataclass(frozen=True)
class KeySums:
    """What must agree between Trino and pyiceberg for one table: rows and these aggregates."""

    table: str
    sums: tuple[str, ...] = ()
    distinct: tuple[str, ...] = ()

    def select_list(self) -> str:
        """Aggregates that read the same in Trino and DuckDB."""
        parts = ['count(*) as "rows"']
        parts += [f'sum("{c}") as "sum_{c}"' for c in self.sums]
        parts += [f'count(distinct "{c}") as "distinct_{c}"' for c in self.distinct]
        return ", ".join(parts)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.sums + self.distinct))


MART_KEY_SUMS = (
    KeySums("marts.fct_usage_daily", sums=("events", "units")),
    KeySums("marts.dim_customer", distinct=("customer_key", "crm_account_id")),
    KeySums(
        "marts.fct_invoice_reconciliation",
        sums=("total_minor", "lines_minor", "credits_minor", "refunds_minor", "net_minor"),
        distinct=("invoice_id",),
    ),
    KeySums(
        "marts.fct_customer_month",
        sums=("usage_units", "billed_usage_units", "invoiced_usd", "net_revenue_usd"),
        distinct=("customer_key",),
    ),
    KeySums(
        "marts.fct_usage_billing_reconciliation",
        sums=("metered_units", "billed_units", "amount_gap_minor", "amount_gap_usd"),
        distinct=("customer_key", "status"),
    ),
    KeySums(
        "marts.fct_customer_adoption_monthly",
        sums=("usage_units", "products_adopted_count"),
        distinct=("customer_key",),
    ),
    KeySums("marts.usage_anomalies", sums=("units",), distinct=("reason",)),
    KeySums("marts.restatements", distinct=("customer_key", "measure")),
    KeySums("marts.month_closes", sums=("rows", "usage_units", "net_revenue_usd")),
)


@dataclass
class Comparison:
    table: str
    snapshot_id: int | None
    iceberg: dict = field(default_factory=dict)
    trino: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.iceberg == self.trino

    @property
    def differences(self) -> dict[str, tuple]:
        return {
            k: (self.iceberg.get(k), self.trino.get(k))
            for k in self.iceberg.keys() | self.trino.keys()
            if self.iceberg.get(k) != self.trino.get(k)
        }

    def metadata(self) -> dict:
        def plain(values: dict) -> dict:
            # DuckDB sums integers as HUGEINT (a Decimal here); show whole numbers as numbers
            def number(v):
                exponent = v.as_tuple().exponent if isinstance(v, Decimal) else None
                if isinstance(exponent, int) and exponent >= 0:  # no decimal places
                    return int(v)
                return v

            return json.loads(json.dumps({k: number(v) for k, v in values.items()}, default=str))

        return {
            "snapshot_id": str(self.snapshot_id),
            "pyiceberg_duckdb": dg.MetadataValue.json(plain(self.iceberg)),
            "trino": dg.MetadataValue.json(plain(self.trino)),
            "differences": dg.MetadataValue.json(plain(self.differences)),
        }


def compare_with_trino(
    lakehouse: LakehouseResource,
    trino: TrinoResource,
    key_sums: KeySums,
    window: tuple[str, dt.date, dt.date] | None = None,
) -> Comparison:
    """Rows and key sums of a table read by Trino and by pyiceberg + DuckDB, at one snapshot.

    Both sides read the snapshot that is current when the comparison starts (Trino with
    ``FOR VERSION AS OF``), so a commit in between never makes them differ. ``window``
    (column, start, end exclusive) compares only those days, e.g. the partitions a build wrote.
    """
    table = key_sums.table
    snapshot_id = lakehouse.current_snapshot_id(table)
    version = f" for version as of {snapshot_id}" if snapshot_id is not None else ""
    where, row_filter = "", AlwaysTrue()
    if window is not None:
        column, start, end = window
        where = f" where \"{column}\" >= date '{start}' and \"{column}\" < date '{end}'"
        row_filter = between(column, start, end)
    conn = trino.connect()
    try:
        cursor = conn.cursor()
        cursor.execute(
            f"select {key_sums.select_list()} from {TRINO_CATALOG}.{table}{version}{where}"
        )
        names = [d[0] for d in cursor.description]
        trino_side = dict(zip(names, cursor.fetchone(), strict=True))
    finally:
        conn.close()
    data = lakehouse.scan(table, row_filter, key_sums.columns or ("*",), snapshot_id)
    rows = run_sql(f"select {key_sums.select_list()} from mart", {"mart": data}).to_pylist()
    return Comparison(table, snapshot_id, rows[0], trino_side)


def written_window(
    instance: dg.DagsterInstance, key: dg.AssetKey, column: str | None
) -> tuple[str, dt.date, dt.date] | None:
    """The window the asset's latest build wrote (its ``window_start``/``window_end``
    metadata), or None for a whole-table build."""
    event = instance.get_latest_materialization_event(key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if column is None or "window_start" not in metadata:
        return None
    start, end = (metadata[k].value for k in ("window_start", "window_end"))
    return column, dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end))


# --------------------------------------------------------------------------- Dagster


def trino_from_env() -> TrinoResource | None:
    """The stack's Trino when ``C360_TRINO_HOST`` is set (``c360 stack env``), else None."""
    return TrinoResource.from_env() if os.environ.get("C360_TRINO_HOST") else None


def _parity_check(key_sums: KeySums, partition_column: str | None) -> dg.AssetChecksDefinition:
    key = asset_key_for_table(key_sums.table)

    @dg.asset_check(
        asset=key,
        name=PARITY_CHECK,
        blocking=False,
        metadata={SEVERITY_METADATA: "ERROR"},  # a failed comparison is an error; never blocks
        description=(
            f"Trino reads the same {key_sums.table} as the pipeline wrote: rows"
            + "".join(f", sum({c})" for c in key_sums.sums)
            + "".join(f", distinct {c}" for c in key_sums.distinct)
            + " agree at the same snapshot, over the partitions the latest build wrote"
        ),
    )
    def _check(
        context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, trino: TrinoResource
    ) -> dg.AssetCheckResult:
        try:
            window = written_window(context.instance, key, partition_column)
            comparison = compare_with_trino(lakehouse, trino, key_sums, window)
        except Exception as exc:  # Trino down or refusing: a failed check, not a failed run
            return dg.AssetCheckResult(
                passed=False, metadata={"error": f"{type(exc).__name__}: {exc}"[:2000]}
            )
        compared = f"{window[0]} in [{window[1]}, {window[2]})" if window else "whole table"
        return dg.AssetCheckResult(
            passed=comparison.ok, metadata={**comparison.metadata(), "compared": compared}
        )

    return _check


def _bi_views_asset(views: Sequence[BiView]) -> dg.AssetsDefinition:
    tables = sorted({t for v in views for t in v.reads})
    deps = [asset_key_for_table(t) for t in tables]

    @dg.asset(
        name=BI_VIEWS_ASSET,
        group_name="serving",
        deps=deps,
        kinds={"trino"},
        description=(
            "Trino views for BI in iceberg.bi (sql/serving/bi/*.sql, security invoker): "
            + ", ".join(v.name for v in views)
            + ". Re-created only when their SQL changed."
        ),
    )
    def bi_views(context: dg.AssetExecutionContext, trino: TrinoResource) -> dg.MaterializeResult:
        outcome = create_bi_views(trino, views)
        for name, state in outcome.items():
            context.log.info(f"{TRINO_CATALOG}.{BI_SCHEMA}.{name}: {state}")
        skipped = sorted(n for n, s in outcome.items() if s.startswith("skipped"))
        if skipped:
            raise dg.Failure(
                f"BI views not created, their marts do not exist yet: {', '.join(skipped)}",
                metadata={"views": dg.MetadataValue.json(outcome)},
            )
        return dg.MaterializeResult(metadata={"views": dg.MetadataValue.json(outcome)})

    return bi_views


def serving_definitions(models: Sequence[Model], trino: TrinoResource) -> dg.Definitions:
    """The ``trino`` resource, the ``bi_views`` asset (+ job) and the marts' parity checks."""
    views = load_bi_views()
    columns = {m.table: m.partition_column for m in models}
    checks = [_parity_check(k, columns[k.table]) for k in MART_KEY_SUMS if k.table in columns]
    return dg.Definitions(
        assets=[_bi_views_asset(views)],
        asset_checks=checks,
        jobs=[dg.define_asset_job(SERVING_JOB, dg.AssetSelection.assets(BI_VIEWS_ASSET))],
        resources={"trino": trino},
    )
