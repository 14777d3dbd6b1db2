"""Raw layer: one asset per landing source, all ingested by one multi-asset step.

A raw asset is materialized only when its source had new files; its metadata lists the UTC days
(``touched_dates``) and months (``touched_months``) the new rows fall in, which the sensors and
``c360 run`` turn into exactly the partitions to rebuild.
"""

import datetime as dt

import dagster as dg
from pyiceberg.expressions import AlwaysFalse, And, In

from c360_assets.defs.ingest.sources import SOURCES
from c360_assets.lib.ingest import (
    LANDING_FILES_TABLE,
    QUARANTINE_TABLE,
    IngestSummary,
    ingest_source,
)
from c360_assets.lib.models import check_spec
from c360_assets.lib.partitions import accepted_date_range
from c360_assets.lib.sources import Source
from c360_assets.lib.sqlmodel import SqlSession, sql_text
from resources.lakehouse import LakehouseResource

DOMAIN = "ingest"  # its SQL: sql/ingest/
QUARANTINE_WARN_RATE = 0.05


def _iso(days: set[dt.date]) -> list[str]:
    return sorted(d.isoformat() for d in days)


def _metadata(summary: IngestSummary) -> dict:
    return {
        "files": summary.files,
        "files_already_ingested": summary.skipped_files,
        "rows_in": summary.rows_in,
        "rows_accepted": summary.rows_accepted,
        "rows_quarantined": summary.rows_quarantined,
        "touched_dates": dg.MetadataValue.json(_iso(summary.touched_dates)),
        "touched_months": dg.MetadataValue.json(_iso(summary.touched_months)),
    }


def _rows_conserved(
    lakehouse: LakehouseResource, source: Source, summary: IngestSummary
) -> tuple[dg.AssetCheckResult, dg.AssetCheckResult]:
    """Per file of this run: rows in = rows in the raw table + rows in the quarantine."""
    digests = summary.digests
    accepted = In("_file_sha256", digests)
    if source.event_time:  # only the day partitions this run's rows went to
        days = [d.isoformat() for d in summary.touched_dates]
        accepted = And(accepted, In("event_date", days)) if days else AlwaysFalse()
    session = SqlSession(
        {
            "files": lakehouse.scan(LANDING_FILES_TABLE, In("file_sha256", digests)),
            "accepted": lakehouse.scan(source.table, accepted, ("_file_sha256",)),
            "quarantined": lakehouse.scan(
                QUARANTINE_TABLE, In("file_sha256", digests), ("file_sha256",)
            ),
        }
    )
    with session:
        bad = session.query(sql_text(f"{DOMAIN}/checks/rows_conserved"))
        totals = session.query(sql_text(f"{DOMAIN}/landing_file_totals")).to_pylist()[0]
    rate = totals["rows_quarantined"] / totals["rows_in"] if totals["rows_in"] else 0.0
    return dg.AssetCheckResult(
        check_name="rows_conserved",
        asset_key=dg.AssetKey(source.asset_name),
        passed=bad.num_rows == 0,
        metadata={
            "files_not_conserved": bad.num_rows,
            "rows_in_all_files": totals["rows_in"],
            "quarantine_rate": round(rate, 6),
        },
    ), dg.AssetCheckResult(
        check_name="quarantine_rate",
        asset_key=dg.AssetKey(source.asset_name),
        passed=rate <= QUARANTINE_WARN_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantine_rate": round(rate, 6), "threshold": QUARANTINE_WARN_RATE},
    )


def _specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            source.asset_name,
            group_name="raw",
            kinds={"iceberg"},
            skippable=True,
            description=f"Landing files under {source.folder}/ as rows of {source.table}.",
            metadata={"table": source.table, "landing_folder": source.folder},
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
    return specs


@dg.multi_asset(
    name="ingest_landing",
    specs=_specs(),
    check_specs=_check_specs(),
    can_subset=True,
)
def ingest_landing(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """Ingest every landing file not yet ingested, source by source."""
    date_range = accepted_date_range()
    for source in SOURCES:
        key = dg.AssetKey(source.asset_name)
        if key not in context.selected_asset_keys:
            continue
        summary = ingest_source(lakehouse, source, date_range)
        context.log.info(
            f"{source.name}: {summary.files} new files, {summary.rows_in} rows = "
            f"{summary.rows_accepted} accepted + {summary.rows_quarantined} quarantined"
        )
        if summary.files == 0:
            continue
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(summary))
        yield from _rows_conserved(lakehouse, source, summary)
