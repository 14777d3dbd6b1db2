"""Month close: freeze a month's customer facts as reported, and list what changed since.

``c360 close-month YYYY-MM``:
1. refuses when the month has no facts, when a blocking check fails on what the tables hold for
   the month (every partitioned model's checks are re-run over the month's partitions, without
   rebuilding), or when the latest evaluation of a blocking check of an unpartitioned asset
   (ingestion, identity, dimensions, billing) failed;
2. tags the current snapshot of ``marts.fct_customer_month`` and of
   ``marts.fct_usage_billing_reconciliation`` ``close-YYYY-MM`` (Iceberg tags: the snapshots are
   kept, whatever later writes or snapshot expiry do);
3. records the close in ``marts.month_closes`` (month, tag, snapshot id, closed_at, rows and
   totals) and reports it to Dagster as a materialization of the ``month_closes`` asset.
Closing a month again is a no-op that says when it was closed (exit code 0); a close cannot be
moved (remove the tag and the month_closes row by hand to re-close).

After a close, late usage, CRM snapshots or billing documents still rebuild the month's current
facts; ``marts.restatements`` (rebuilt with the month) lists every measure of either table that
now differs from the as-closed figures (``table_name`` says which).

As-closed figures stay queryable by Iceberg time travel on the tag:
- Trino: ``select * from iceberg.marts.fct_customer_month for version as of 'close-2026-10'
  where month = date '2026-10-01'``;
- Python: :func:`as_closed` (a pyiceberg scan of the tagged snapshot).
"""

import argparse
import datetime as dt
from contextlib import ExitStack
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa
from pyiceberg.expressions import AlwaysFalse, BooleanExpression

from c360_assets.defs.domains import ownership
from c360_assets.lib.models import Model, check_stored_partition, partition_lease, trino_table_name
from c360_assets.lib.partitions import advance, monthly_partitions
from c360_assets.lib.sqlmodel import Read, between, run_sql, sql_text
from resources.lakehouse import LakehouseResource

DOMAIN = "close"  # its SQL: sql/close/

FACTS = "marts.fct_customer_month"
RECONCILIATION = "marts.fct_usage_billing_reconciliation"
CLOSED_TABLES = (FACTS, RECONCILIATION)  # the tables a close tags, FACTS first
CLOSES = "marts.month_closes"
RESTATEMENTS = "marts.restatements"
TAG = "close-{month}"  # {month} = YYYY-MM
CLOSE_KEYS = ("month", "tag", "table_name", "snapshot_id", "closed_at")  # then the totals

RESTATEMENTS_SCHEMA = pa.schema(
    [
        ("month", pa.date32()),
        ("customer_key", pa.string()),
        ("measure", pa.string()),
        ("as_closed", pa.string()),
        ("restated", pa.string()),
        ("detected_at", pa.timestamp("us", tz="UTC")),
        ("close_tag", pa.string()),
        ("table_name", pa.string()),
    ]
)

MODELS = (
    Model(
        name="restatements",
        layer="marts",
        domain=DOMAIN,
        reads={
            "fct_customer_month": Read(FACTS, "month"),
            "fct_customer_month_as_closed": Read(FACTS, "month", at_tag=TAG),
            "fct_usage_billing_reconciliation": Read(RECONCILIATION, "month"),
            "fct_usage_billing_reconciliation_as_closed": Read(RECONCILIATION, "month", at_tag=TAG),
            # its own previous rows, to keep the first detection time of an unchanged restatement
            "previous_restatements": Read(RESTATEMENTS, "month", missing_as=RESTATEMENTS_SCHEMA),
        },
        grain=("month", "customer_key", "measure"),
        partitioning="monthly",
        partition_column="month",
        extra_deps=("month_closes",),
    ),
)

MONTH_CLOSES = dg.AssetKey("month_closes")


def assets() -> tuple[dg.AssetSpec, ...]:
    """The close's own assets (built when the definitions are, with the monthly partitions)."""
    month_closes = dg.AssetSpec(
        MONTH_CLOSES,
        group_name="marts",
        deps=["fct_customer_month", "fct_usage_billing_reconciliation"],
        partitions_def=monthly_partitions(),
        kinds={"iceberg"},
        description=(
            "Closed months (`c360 close-month`): the Iceberg tag frozen on "
            "marts.fct_customer_month and marts.fct_usage_billing_reconciliation, and the month's "
            "totals as closed. Materialized by the command, not by a run."
        ),
        metadata={"table": CLOSES, "dagster/table_name": trino_table_name(CLOSES)},
        owners=list(ownership(DOMAIN).owners),
        tags={**ownership(DOMAIN).tags, "layer": "marts"},
    )
    return (month_closes,)


class CloseRefused(Exception):
    """The month cannot be closed (no facts, or a blocking check fails)."""


@dataclass
class CloseResult:
    month: dt.date
    tag: str
    snapshot_id: int
    closed_at: dt.datetime
    totals: dict
    already_closed: bool = False
    checks_run: int = 0
    tagged: dict[str, int] = field(default_factory=dict)  # table -> snapshot tagged by this close


def tag_name(month: dt.date) -> str:
    return TAG.format(month=f"{month:%Y-%m}")


def parse_month(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a month as YYYY-MM, got {text!r}") from None


def as_closed(lakehouse: LakehouseResource, month: dt.date) -> pa.Table:
    """The month's rows of fct_customer_month exactly as closed (empty if never closed)."""
    snapshot_id = lakehouse.tag_snapshot_id(FACTS, tag_name(month))
    if snapshot_id is None:
        return lakehouse.scan(FACTS, AlwaysFalse())
    return lakehouse.scan(FACTS, _month_filter(month), snapshot_id=snapshot_id)


def _month_filter(month: dt.date) -> BooleanExpression:
    return between("month", month, advance(month, "monthly"))


# -- the gate ----------------------------------------------------------------------------------
def failed_partition_checks(
    lakehouse: LakehouseResource, models: tuple[Model, ...], month: dt.date
) -> tuple[int, list[str]]:
    """Blocking checks of every partitioned model, re-run over the month's stored partitions."""
    window = (month, advance(month, "monthly"))
    runs, failures = 0, []
    for model in models:
        if not model.partitioning or not lakehouse.table_exists(model.table):
            continue
        blocking = {"grain_is_unique"} | {c.name for c in model.checks if c.blocking}
        for result in check_stored_partition(lakehouse, model, window):
            runs += 1
            if not result.passed and result.check_name in blocking:
                violations = result.metadata.get("violations")
                count = getattr(violations, "value", violations)
                failures.append(f"{model.name}:{result.check_name} ({count} violations)")
    return runs, failures


def failed_latest_checks(instance: dg.DagsterInstance, defs: dg.Definitions) -> list[str]:
    """Blocking checks of unpartitioned assets whose latest evaluation failed."""
    failures = []
    for assets_def in defs.assets or []:
        if not isinstance(assets_def, dg.AssetsDefinition) or assets_def.partitions_def:
            continue
        for spec in assets_def.check_specs:
            if not spec.blocking:
                continue
            record = instance.get_latest_asset_check_evaluation_record(spec.key)
            if record is not None and record.status.value == "FAILED":
                failures.append(f"{spec.key.asset_key.to_user_string()}:{spec.key.name}")
    return failures


# -- the close ---------------------------------------------------------------------------------
def _closes_row(month: dt.date, tag: str, snapshot_id: int, closed_at: dt.datetime, totals: dict):
    return pa.Table.from_pylist(
        [
            {
                "month": month,
                "tag": tag,
                "table_name": FACTS,
                "snapshot_id": snapshot_id,
                "closed_at": closed_at,
                **totals,
            }
        ]
    )


def _totals(lakehouse: LakehouseResource, month: dt.date, snapshot_id: int) -> dict:
    facts = lakehouse.scan(FACTS, _month_filter(month), snapshot_id=snapshot_id)
    totals_sql = sql_text(f"{DOMAIN}/close_month_totals")
    rows = run_sql(totals_sql, {"fct_customer_month": facts}).to_pylist()
    return {k: v for k, v in rows[0].items() if k != "month"} if rows else {"rows": 0}


def _recorded(lakehouse: LakehouseResource, month: dt.date) -> dict | None:
    if not lakehouse.table_exists(CLOSES):
        return None
    rows = lakehouse.scan(CLOSES, _month_filter(month)).to_pylist()
    return rows[0] if rows else None


def _record(
    lakehouse: LakehouseResource, instance: dg.DagsterInstance, result: CloseResult
) -> None:
    row = _closes_row(result.month, result.tag, result.snapshot_id, result.closed_at, result.totals)
    lakehouse.replace_where(CLOSES, row, _month_filter(result.month))
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=MONTH_CLOSES,
            partition=result.month.isoformat(),
            description=f"closed {result.month:%Y-%m}: {FACTS} tagged {result.tag}",
            metadata={
                "tag": result.tag,
                "snapshot_id": str(result.snapshot_id),
                "closed_at": result.closed_at.isoformat(),
                "checks_run": result.checks_run,
                **{k: v if isinstance(v, int) else float(v or 0) for k, v in result.totals.items()},
            },
        )
    )


def close_month(
    lakehouse: LakehouseResource,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    models: tuple[Model, ...],
    month: dt.date,
) -> CloseResult:
    """Close ``month`` (its first day); raises :class:`CloseRefused` when it must not be closed.

    Holds the month's partition lease of each table it tags: no build of the month is half-way
    while it is judged and tagged, and two closes of one month run one after the other.
    """
    month = month.replace(day=1)
    with ExitStack() as leases:
        for table in CLOSED_TABLES:  # always in this order
            leases.enter_context(lakehouse.lease(partition_lease(table, month)))
        return _close_month(lakehouse, instance, defs, models, month)


def _close_month(
    lakehouse: LakehouseResource,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    models: tuple[Model, ...],
    month: dt.date,
) -> CloseResult:
    tag = tag_name(month)
    closed = lakehouse.tag_snapshot_id(FACTS, tag)
    if closed is not None:  # closed before: a no-op (repairs the record if a close was cut short)
        recorded = _recorded(lakehouse, month)
        if recorded is None:
            result = CloseResult(
                month, tag, closed, dt.datetime.now(dt.UTC), _totals(lakehouse, month, closed)
            )
            _record(lakehouse, instance, result)
            recorded = _recorded(lakehouse, month)
            assert recorded is not None, f"{CLOSES}: the close of {month:%Y-%m} was just recorded"
        totals = {k: v for k, v in recorded.items() if k not in CLOSE_KEYS}
        return CloseResult(month, tag, closed, recorded["closed_at"], totals, already_closed=True)

    snapshot_id = lakehouse.current_snapshot_id(FACTS)
    if snapshot_id is None:
        raise CloseRefused(f"{FACTS} does not exist yet: run `c360 run` first")
    totals = _totals(lakehouse, month, snapshot_id)
    if not totals.get("rows"):
        raise CloseRefused(f"{FACTS} has no rows for {month:%Y-%m}: nothing to close")
    checks_run, failures = failed_partition_checks(lakehouse, models, month)
    failures += failed_latest_checks(instance, defs)
    if failures:
        raise CloseRefused(
            f"{month:%Y-%m} not closed: blocking checks fail: " + "; ".join(failures)
        )
    tagged = {FACTS: snapshot_id}
    for table in CLOSED_TABLES[1:]:
        current = lakehouse.current_snapshot_id(table) if lakehouse.table_exists(table) else None
        if current is not None:
            tagged[table] = current
    # the facts' tag last: it says the month is closed, so a close cut short before it is done
    # again in full (its other tags moved to the snapshots it freezes then)
    for table, snapshot in reversed(tagged.items()):
        lakehouse.create_tag(table, tag, snapshot, move=table != FACTS)
    result = CloseResult(
        month,
        tag,
        snapshot_id,
        dt.datetime.now(dt.UTC),
        totals,
        checks_run=checks_run,
        tagged=tagged,
    )
    _record(lakehouse, instance, result)
    return result
