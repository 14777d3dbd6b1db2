"""Raw layer: one asset per landing source, all ingested by one multi-asset step.

A raw asset is materialized only when its source had new files; its metadata lists the UTC days
(``touched_dates``) and months (``touched_months``) the new rows fall in, which the sensors and
``c360 run`` turn into exactly the partitions to rebuild, the files quarantined whole and the
columns no declaration names. Its checks: rows (and files) conserved, blocking; the quarantined
share of rows, the files quarantined whole and the undeclared columns, WARN (a bad file never
stops ingestion: it is shown, and every other file lands).

Ingestion never rejects a valid row for its date: a row dated before the first partition or
after the last one (more than ``HORIZON_DAYS`` ahead) lands in raw and waits there, counted by
the WARN check ``rows_wait_for_partitions``, until its partition exists (docs/DECISIONLOG.md §17).
"""

import datetime as dt

import dagster as dg
import pyarrow as pa
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, And, BooleanExpression, EqualTo, In

from c360_assets.defs.domains import ownership
from c360_assets.defs.ingest.sources import SOURCES
from c360_assets.lib.ingest import (
    ANY_DATE,
    LANDING_FILES_TABLE,
    QUARANTINE_TABLE,
    IngestSummary,
    ingest_source,
)
from c360_assets.lib.models import check_spec, trino_table_name
from c360_assets.lib.partitions import bounds
from c360_assets.lib.sources import Source
from c360_assets.lib.sqlmodel import SqlSession, scan_where, sql_text
from c360_assets.lib.sqlquote import literal_list
from c360_assets.lib.tablestats import column_schema, partition_row_counts, table_row_count
from resources.lakehouse import LakehouseResource

DOMAIN = "ingest"  # its SQL: sql/ingest/
QUARANTINE_WARN_RATE = 0.05
# every date a row may carry: the partitions decide what is built, not what is accepted
# usage must have landed within this long (a WARN: it watches the wall clock)
USAGE_FRESHNESS = dt.timedelta(hours=26)


def _iso(days: set[dt.date]) -> list[str]:
    return sorted(d.isoformat() for d in days)


def _metadata(lakehouse: LakehouseResource, source: Source, summary: IngestSummary) -> dict:
    rate = summary.rows_quarantined / summary.rows_in if summary.rows_in else 0.0
    return {
        "files": summary.files,
        "files_already_ingested": summary.skipped_files,
        "rows_in": summary.rows_in,
        "rows_accepted": summary.rows_accepted,
        "rows_quarantined": summary.rows_quarantined,
        "quarantine_rate": round(rate, 6),  # of this ingestion's rows: a plot over time
        "touched_dates": dg.MetadataValue.json(_iso(summary.touched_dates)),
        "touched_months": dg.MetadataValue.json(_iso(summary.touched_months)),
        "files_quarantined": len(summary.quarantined_files),
        "quarantined_files": dg.MetadataValue.json(summary.quarantined_files),
        "undeclared_columns": dg.MetadataValue.json(summary.undeclared_columns),
        "dagster/row_count": table_row_count(lakehouse, source.table),
        "dagster/column_schema": column_schema(lakehouse, source.table),
    }


def _rows_outside_partitions(lakehouse: LakehouseResource, source: Source) -> dg.AssetCheckResult:
    """Rows whose day has no daily partition (yet): before the first or after the last."""
    first, last = bounds("daily")
    before = partition_row_counts(lakehouse, source.table, "event_date", (ANY_DATE[0], first))
    after = partition_row_counts(
        lakehouse, source.table, "event_date", (last + dt.timedelta(days=1), ANY_DATE[1])
    )
    waiting = {**before, **after}
    return dg.AssetCheckResult(
        check_name="rows_wait_for_partitions",
        asset_key=dg.AssetKey(source.asset_name),
        passed=not waiting,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_before_first_partition": sum(before.values()),
            "rows_after_last_partition": sum(after.values()),
            "first_partition": first.isoformat(),
            "last_partition": last.isoformat(),
            "days_waiting": dg.MetadataValue.json(_iso(set(waiting))[:20]),
        },
    )


def _listed(rows: pa.Table) -> dg.MetadataValue:
    return dg.MetadataValue.json(rows.to_pylist())


def ingestion_checks(
    lakehouse: LakehouseResource, source: Source, summary: IngestSummary
) -> list[dg.AssetCheckResult]:
    """Per file of this run: rows in = rows in the raw table + rows in the quarantine (or the
    file is quarantined whole), proven from the tables; then what a data engineer should see."""
    digests = summary.digests
    # this source's files (the same bytes may land under two sources, e.g. two empty files)
    logged = And(EqualTo("source", source.name), In("file_sha256", digests))
    # the raw files of only the day partitions this run's rows went to, read by DuckDB
    partitions: BooleanExpression = AlwaysTrue()
    if source.event_time:
        days = [d.isoformat() for d in summary.touched_dates]
        partitions = In("event_date", days) if days else AlwaysFalse()
    accepted = scan_where(
        lakehouse,
        source.table,
        partitions,
        ("_file_sha256",),
        f"list_contains({literal_list(digests)}, _file_sha256)",
    )
    session = SqlSession(
        {
            "files": lakehouse.scan(LANDING_FILES_TABLE, logged),
            "accepted": accepted,
            "quarantined": lakehouse.scan(
                QUARANTINE_TABLE,
                logged,
                ("file_sha256", "source_line", "reason"),
            ),
            "run_files": pa.table({"file_sha256": pa.array(digests, pa.string())}),
        }
    )
    with session:
        bad = session.query(sql_text(f"{DOMAIN}/checks/rows_conserved"))
        totals = session.query(sql_text(f"{DOMAIN}/landing_file_totals")).to_pylist()[0]
        whole = session.query(sql_text(f"{DOMAIN}/checks/files_quarantined"))
        undeclared = session.query(sql_text(f"{DOMAIN}/checks/undeclared_columns"))
    rate = totals["rows_quarantined"] / totals["rows_in"] if totals["rows_in"] else 0.0
    key, warn = dg.AssetKey(source.asset_name), dg.AssetCheckSeverity.WARN
    return [
        dg.AssetCheckResult(
            check_name="rows_conserved",
            asset_key=key,
            passed=bad.num_rows == 0,
            metadata={
                "files_not_conserved": bad.num_rows,
                "not_conserved": _listed(bad.slice(0, 20)),
                "rows_in_all_files": totals["rows_in"],
                "quarantine_rate": round(rate, 6),
            },
        ),
        dg.AssetCheckResult(
            check_name="quarantine_rate",
            asset_key=key,
            passed=rate <= QUARANTINE_WARN_RATE,
            severity=warn,
            metadata={"quarantine_rate": round(rate, 6), "threshold": QUARANTINE_WARN_RATE},
        ),
        dg.AssetCheckResult(
            check_name="files_quarantined",
            asset_key=key,
            passed=whole.num_rows == 0,
            severity=warn,
            metadata={"files_quarantined": whole.num_rows, "files": _listed(whole)},
        ),
        dg.AssetCheckResult(
            check_name="undeclared_columns",
            asset_key=key,
            passed=undeclared.num_rows == 0,
            severity=warn,
            metadata={
                "files_with_undeclared_columns": undeclared.num_rows,
                "files": _listed(undeclared),
            },
        ),
    ]


def _specs() -> list[dg.AssetSpec]:
    owners = ownership(DOMAIN)
    return [
        dg.AssetSpec(
            source.asset_name,
            group_name="raw",
            kinds={"iceberg"},
            skippable=True,
            description=f"Landing files under `{source.folder}/` as rows of `{source.table}` "
            "(malformed records go to `raw.quarantine` with their reason).",
            metadata={
                "table": source.table,
                "landing_folder": source.folder,
                "dagster/table_name": trino_table_name(source.table),
            },
            owners=list(owners.owners),
            tags={**owners.tags, "layer": "raw"},
            freshness_policy=(
                dg.FreshnessPolicy.time_window(fail_window=USAGE_FRESHNESS)
                if source.event_time
                else None
            ),
        )
        for source in SOURCES
    ]


def _check_specs() -> list[dg.AssetCheckSpec]:
    specs = []
    for source in SOURCES:
        specs.append(
            check_spec(
                "rows_conserved",
                source.asset_name,
                "per new file: rows in = rows landed + rows quarantined",
                blocking=True,
                severity="ERROR",
            )
        )
        specs.append(
            check_spec(
                "quarantine_rate",
                source.asset_name,
                f"quarantined share of all rows <= {QUARANTINE_WARN_RATE:.0%}",
                blocking=False,
                severity="WARN",
            )
        )
        specs.append(
            check_spec(
                "files_quarantined",
                source.asset_name,
                "no new file quarantined whole (unreadable, or breaking the declared columns); "
                "lists each with its reason",
                blocking=False,
                severity="WARN",
            )
        )
        specs.append(
            check_spec(
                "undeclared_columns",
                source.asset_name,
                "no new file with columns the source does not declare (they land nowhere); "
                "lists them per file",
                blocking=False,
                severity="WARN",
            )
        )
        if source.event_time:
            specs.append(
                check_spec(
                    "rows_wait_for_partitions",
                    source.asset_name,
                    "no row dated before the first or after the last daily partition (such "
                    "rows wait in raw until their partition exists)",
                    blocking=False,
                    severity="WARN",
                )
            )
    return specs


def _nothing_new(source: Source) -> list[dg.AssetCheckResult]:
    """The per-file checks of a source without new files: nothing to check, passed."""
    key = dg.AssetKey(source.asset_name)
    return [
        dg.AssetCheckResult(
            check_name=name, asset_key=key, passed=True, metadata={"new_files": 0}, severity=sev
        )
        for name, sev in (
            ("rows_conserved", dg.AssetCheckSeverity.ERROR),
            ("quarantine_rate", dg.AssetCheckSeverity.WARN),
        )
    ]


@dg.multi_asset(
    name="ingest_landing",
    specs=_specs(),
    check_specs=_check_specs(),
    can_subset=True,
)
def ingest_landing(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """Ingest every landing file not yet ingested, source by source.

    A source without new files is not materialized; its checks report that nothing was new."""
    for source in SOURCES:
        key = dg.AssetKey(source.asset_name)
        if key not in context.selected_asset_keys:
            continue
        summary = ingest_source(lakehouse, source)
        context.log.info(
            f"{source.name}: {summary.files} new files, {summary.rows_in} rows = "
            f"{summary.rows_accepted} accepted + {summary.rows_quarantined} quarantined"
        )
        for name, reason in summary.quarantined_files.items():
            context.log.warning(f"{name}: quarantined whole ({reason}); every other file landed")
        for name, columns in summary.undeclared_columns.items():
            context.log.warning(f"{name}: columns {source.name} does not declare: {columns}")
        if summary.files == 0:
            yield from _nothing_new(source)
            if source.event_time:
                yield _rows_outside_partitions(lakehouse, source)
            continue
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(lakehouse, source, summary))
        yield from ingestion_checks(lakehouse, source, summary)
        if source.event_time:
            yield _rows_outside_partitions(lakehouse, source)
