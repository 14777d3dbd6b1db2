"""The graph's jobs and the run plan shared by the sensors and ``c360 run``.

Four jobs, run in this order on a change:
1. ``ingest_job``  — landing files -> raw tables (unpartitioned);
2. ``refresh_job`` — unpartitioned staging/core/marts models (billing, CRM, identity, dims);
3. ``daily_job``   — daily-partitioned models, for exactly the days touched (contiguous ranges);
4. ``monthly_job`` — monthly-partitioned models, for the months touched, widened to one span
   through the last month built (see ``plan.month_span``).

The refresh runs only when a raw table that an unpartitioned model reads has new rows: usage
ingestion alone (the daily flow) never rebuilds the billing/CRM models.

Days touched come from the ``touched_dates`` metadata of usage ingestion and of unpartitioned
models whose change re-derives past days (identity, subscription coverage).
Months touched come from ``touched_months`` metadata (billing ingestion, unpartitioned models
such as the customer dimension) and from the month of every daily partition rebuilt.
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from c360_assets.defs.ingest.sources import SOURCES, USAGE
from c360_assets.lib.models import Model, asset_key_for_table
from c360_assets.lib.plan import Touched, latest_storage_id, month_span, touched_since

RAW_KEYS = [dg.AssetKey(s.asset_name) for s in SOURCES]
DAY_TRIGGERS = [dg.AssetKey(USAGE.asset_name), dg.AssetKey("int_tenants_resolved")]
STAGES = ("daily", "monthly")
STAGE_TAG = "c360/stage"  # the run queue limits ingestion runs by it (tools/instance.py)


def _names(models: Sequence[Model], partitioning: str | None) -> list[str]:
    return [m.name for m in models if m.partitioning == partitioning]


def build_jobs(models: Sequence[Model]) -> list:
    def job(stage: str, names: list):
        selection = dg.AssetSelection.assets(*names)
        return dg.define_asset_job(f"{stage}_job", selection, tags={STAGE_TAG: stage})

    return [
        job("ingest", RAW_KEYS),
        job("refresh", _names(models, None)),
        job("daily", _names(models, "daily")),
        job("monthly", _names(models, "monthly")),
    ]


def trigger_keys(models: Sequence[Model], stage: str) -> list[dg.AssetKey]:
    if stage == "daily":  # unpartitioned models report days only when their change needs it
        return DAY_TRIGGERS + [
            dg.AssetKey(n) for n in _names(models, None) if dg.AssetKey(n) not in DAY_TRIGGERS
        ]
    non_usage_raw = [k for k in RAW_KEYS if k != dg.AssetKey(USAGE.asset_name)]
    derived = [dg.AssetKey(n) for n in _names(models, None) + _names(models, "daily")]
    return non_usage_raw + derived


def touched(
    instance: dg.DagsterInstance, models: Sequence[Model], stage: str, cursor: dict[str, int]
) -> Touched:
    """What ``stage`` must rebuild: every trigger materialization after ``cursor``.

    Months are widened to one span through the last month built (``plan.month_span``).
    Raw ingestions count only once every unpartitioned model (identity, dimensions) has been
    refreshed after them, so a partition is never built against a stale or missing mapping.
    """
    bound = refreshed_through(instance, models)
    held = RAW_KEYS if refresh_pending(instance, models, bound) else []
    found = touched_since(
        instance,
        trigger_keys(models, stage),
        cursor,
        partition_months=stage == "monthly",
        until={key: bound for key in held},
    )
    if stage == "monthly":
        found.months = month_span(found.months, last_month_built(instance, models))
    return found


def refresh_inputs(models: Sequence[Model]) -> list[dg.AssetKey]:
    """The raw assets that unpartitioned models read (usage events are read by daily ones only)."""
    read = {
        asset_key_for_table(r.table)
        for m in models
        if m.partitioning is None
        for r in m.reads.values()
        if r.table.startswith("raw.")
    }
    return [key for key in RAW_KEYS if key in read]


def refresh_pending(
    instance: dg.DagsterInstance, models: Sequence[Model], through: int | None = None
) -> bool:
    """True when a refresh input was ingested after the unpartitioned models last caught up
    (or they were never built). ``through``: ``refreshed_through`` when already known."""
    if through is None:
        through = refreshed_through(instance, models)
    latest = max((latest_storage_id(instance, k) for k in refresh_inputs(models)), default=0)
    return through == 0 or latest > through


def refreshed_through(instance: dg.DagsterInstance, models: Sequence[Model]) -> int:
    """The storage id up to which every unpartitioned model has caught up with ingestion."""
    return min(
        (latest_storage_id(instance, dg.AssetKey(n)) for n in _names(models, None)), default=0
    )


def last_month_built(instance: dg.DagsterInstance, models: Sequence[Model]) -> dt.date | None:
    """The latest month partition any monthly model has materialized."""
    built = [
        dt.date.fromisoformat(key)
        for name in _names(models, "monthly")
        for key in instance.get_materialized_partitions(dg.AssetKey(name))
    ]
    return max(built, default=None)
