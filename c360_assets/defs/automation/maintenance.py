"""Table maintenance as a Dagster job (``maintenance_job``, scheduled nightly) and the roles of
c360's tables: which leases a rewrite of each holds (``lib/maintenance.py``).

``c360 maintain [--keep-days D]`` runs the same job in-process. Each table's files, bytes and
snapshots before and after are observations of its asset (plots over time in the UI) and the
metadata of the run's output.
"""

import datetime as dt
from collections.abc import Callable, Sequence

import dagster as dg

from c360_assets.defs.ingest.sources import SOURCES
from c360_assets.lib.ingest import LANDING_FILES_TABLE, QUARANTINE_TABLE
from c360_assets.lib.maintenance import Policy, TableRole, maintain
from c360_assets.lib.models import Model, asset_key_for_table, partition_lease, partition_local
from resources.lakehouse import LakehouseResource

MAINTENANCE_JOB = "maintenance_job"
SCHEDULE = "30 3 * * *"  # nightly, 03:30 UTC, after the day's usage has usually landed


class MaintenanceConfig(dg.Config):
    keep_days: float = 7.0  # snapshots younger than this stay (time travel); 0: only the needed
    min_file_age_hours: float = 1.0  # orphans younger than this stay (a running writer's files)


def table_roles(models: Sequence[Model]) -> list[TableRole]:
    """The leases a writer of each of c360's tables holds, per partition."""
    ingest_all = tuple(f"ingest/{s.name}" for s in SOURCES)
    roles = [TableRole(s.table, _always((f"ingest/{s.name}",))) for s in SOURCES] + [
        TableRole(QUARANTINE_TABLE, _always(ingest_all)),
        TableRole(LANDING_FILES_TABLE, _always(ingest_all)),
    ]
    for model in models:
        if partition_local(model):
            roles.append(TableRole(model.table, _per_partition(model.table)))
        else:
            roles.append(TableRole(model.table, _always((model.table,))))
    return roles


def _always(names: tuple[str, ...]) -> Callable[[dt.date | None], tuple[str, ...]]:
    """The same leases whichever partition is rewritten."""
    return lambda _value: names


def _per_partition(table: str) -> Callable[[dt.date | None], tuple[str, ...]]:
    """The lease of the partition rewritten (the whole table's when it is unpartitioned)."""

    def leases(value: dt.date | None) -> tuple[str, ...]:
        return (table,) if value is None else (partition_lease(table, value),)

    return leases


def watermark_leases(models: Sequence[Model]) -> list[str]:
    """The tables whose builds record an incremental watermark (they hold their table lease)."""
    return [m.table for m in models if m.series]


def build_maintenance(models: Sequence[Model], with_trino: bool) -> tuple:
    """The job (with Trino's procedures when the stack is configured) and its schedule."""
    assets = {asset_key_for_table(m.table) for m in models} | {
        dg.AssetKey(s.asset_name) for s in SOURCES
    }
    resources = {"lakehouse", "trino"} if with_trino else {"lakehouse"}

    @dg.op(
        required_resource_keys=resources,
        description="Compact small files, expire snapshots, remove orphan files; no row changes.",
    )
    def maintain_tables(context: dg.OpExecutionContext, config: MaintenanceConfig) -> dict:
        lakehouse: LakehouseResource = context.resources.lakehouse
        trino = context.resources.trino if with_trino else None
        policy = Policy(config.keep_days, dt.timedelta(hours=config.min_file_age_hours))
        report = maintain(
            lakehouse,
            table_roles(models),
            policy,
            trino,
            watermark_leases=watermark_leases(models),
            log=context.log.info,
        )
        for entry in report.tables:
            key = asset_key_for_table(entry.table)
            if key in assets:
                context.log_event(dg.AssetObservation(asset_key=key, metadata=entry.metadata()))
        totals = {"engine": report.engine, "seconds": round(report.seconds, 2)}
        return {**totals, "tables": {e.table: e.metadata() for e in report.tables}}

    @dg.job(name=MAINTENANCE_JOB, description="c360 maintain: table maintenance, nightly.")
    def maintenance_job():
        maintain_tables()

    schedule = dg.ScheduleDefinition(
        name="nightly_maintenance",
        job=maintenance_job,
        cron_schedule=SCHEDULE,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs c360 maintain with its defaults (keep 7 days of snapshots).",
    )
    return maintenance_job, schedule
