"""Sensors: new landing files -> ingestion; every ingestion -> exactly the partitions it touched.

Each sensor reads *all* materializations after its cursor (``plan.touched_since``), so two
ingestions between ticks lose nothing, and names its run requests by partition range and the
last storage id seen, so a tick can never fire the same request twice.
"""

import hashlib
import json
import os
from collections.abc import Sequence

import dagster as dg

from c360_assets.defs.automation.jobs import refresh_inputs, refresh_pending, touched
from c360_assets.lib.ingest import FORMATS
from c360_assets.lib.models import Model
from c360_assets.lib.partitions import contiguous_ranges, partition_key, range_tags
from c360_assets.lib.plan import latest_storage_ids
from resources.lakehouse import LakehouseResource

INTERVAL_SECONDS = int(os.environ.get("C360_SENSOR_INTERVAL_SECONDS", "30"))


def landing_listing_digest(lakehouse: LakehouseResource) -> str:
    """A cheap fingerprint of the landing zone: names, sizes and modification times."""
    digest = hashlib.sha256()
    root = lakehouse.landing_path
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name.lower().endswith(FORMATS):
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
                )
    return digest.hexdigest()


def _load(cursor: str | None) -> dict:
    return json.loads(cursor) if cursor else {}


def build_sensors(models: Sequence[Model]) -> list[dg.SensorDefinition]:
    @dg.sensor(
        job_name="ingest_job",
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts an ingestion run when files appear in the landing zone.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
        listing = landing_listing_digest(lakehouse)
        if listing == context.cursor:
            return dg.SkipReason("landing zone unchanged")
        context.update_cursor(listing)
        return dg.RunRequest(run_key=f"landing:{listing}")

    @dg.sensor(
        job_name="refresh_job",
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds the unpartitioned models after an ingestion of their raw inputs.",
    )
    def refresh_sensor(context: dg.SensorEvaluationContext):
        if not refresh_pending(context.instance, models):
            return dg.SkipReason("the unpartitioned models are up to date with their inputs")
        # one request per state of the refresh inputs: usage arriving while a refresh is pending
        # (or running) never requests it again
        inputs = refresh_inputs(models)
        last = max(latest_storage_ids(context.instance, inputs).values(), default=0)
        return dg.RunRequest(run_key=f"refresh:{last}")

    def partition_sensor(stage: str) -> dg.SensorDefinition:
        @dg.sensor(
            name=f"{stage}_partitions_sensor",
            job_name=f"{stage}_job",
            minimum_interval_seconds=INTERVAL_SECONDS,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Rebuilds exactly the {stage} partitions that new data touched.",
        )
        def _sensor(context: dg.SensorEvaluationContext):
            found = touched(context.instance, models, stage, _load(context.cursor))
            parts = found.days if stage == "daily" else found.months
            context.update_cursor(json.dumps(found.cursor))
            if not parts:
                return dg.SkipReason("no partition touched")
            last = max(found.cursor.values(), default=0)
            return [
                dg.RunRequest(
                    run_key=":".join(
                        (stage, partition_key(first, stage), partition_key(end, stage), str(last))
                    ),
                    tags=range_tags(first, end, stage),
                )
                for first, end in contiguous_ranges(parts, stage)
            ]

        return _sensor

    return [landing_sensor, refresh_sensor, partition_sensor("daily"), partition_sensor("monthly")]
