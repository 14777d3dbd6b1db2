"""The graph's jobs and the run plan shared by the sensors and ``c360 run``.

Four jobs, run in this order on a change:
1. ``ingest_job``  — landing files -> raw tables (unpartitioned);
2. ``refresh_job`` — unpartitioned staging/core/marts models (billing, CRM, identity, dims);
3. ``daily_job``   — daily-partitioned models, for exactly the days touched (contiguous ranges);
4. ``monthly_job`` — monthly-partitioned models, for exactly the months touched.

Days touched come from the ``touched_dates`` metadata of usage ingestion and identity changes.
Months touched come from ``touched_months`` metadata (billing ingestion, unpartitioned models
such as the customer dimension) and from the month of every daily partition rebuilt.
"""

from collections.abc import Sequence

import dagster as dg

from c360_assets.models import Model
from c360_assets.partitions import daily_partitions, monthly_partitions
from c360_assets.plan import Touched, touched_since
from c360_assets.sources import SOURCES, USAGE

RAW_KEYS = [dg.AssetKey(s.asset_name) for s in SOURCES]
DAY_TRIGGERS = [dg.AssetKey(USAGE.asset_name), dg.AssetKey("int_tenants_resolved")]
STAGES = ("daily", "monthly")


def _names(models: Sequence[Model], partitioning: str | None) -> list[str]:
    return [m.name for m in models if m.partitioning == partitioning]


def build_jobs(models: Sequence[Model]) -> list:
    return [
        dg.define_asset_job("ingest_job", dg.AssetSelection.assets(*RAW_KEYS)),
        dg.define_asset_job("refresh_job", dg.AssetSelection.assets(*_names(models, None))),
        dg.define_asset_job(
            "daily_job",
            dg.AssetSelection.assets(*_names(models, "daily")),
            partitions_def=daily_partitions,
        ),
        dg.define_asset_job(
            "monthly_job",
            dg.AssetSelection.assets(*_names(models, "monthly")),
            partitions_def=monthly_partitions,
        ),
    ]


def trigger_keys(models: Sequence[Model], stage: str) -> list[dg.AssetKey]:
    if stage == "daily":
        return DAY_TRIGGERS
    non_usage_raw = [k for k in RAW_KEYS if k != dg.AssetKey(USAGE.asset_name)]
    derived = [dg.AssetKey(n) for n in _names(models, None) + _names(models, "daily")]
    return non_usage_raw + derived


def touched(
    instance: dg.DagsterInstance, models: Sequence[Model], stage: str, cursor: dict[str, int]
) -> Touched:
    """What ``stage`` must rebuild: every trigger materialization after ``cursor``."""
    return touched_since(
        instance, trigger_keys(models, stage), cursor, partition_months=stage == "monthly"
    )
