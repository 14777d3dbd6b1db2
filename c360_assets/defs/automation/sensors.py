"""Sensors: new landing files -> ingestion; every ingestion -> exactly the partitions it touched.

Each sensor reads *all* materializations after its cursor (``plan.touched_since``), so two
ingestions between ticks lose nothing, and names its run requests by partition range and the
last storage id seen, so a tick can never fire the same request twice.

The partition sensors plan from the cursor ``c360 run`` uses (``plan.load_cursor``): after a
``c360 run`` they launch nothing, and what they requested ``c360 run`` does not build again.
A tick publishes its plan to that shared cursor at the *next* tick: by then Dagster has stored
the tick's run requests (they are launched even if the daemon stopped in between), so the
shared cursor never claims a partition that no run was requested for. A backfill of one asset
from the UI makes its descendants of the same partitioning due for its partitions (runs of
those assets only); its months follow through the monthly sensor.
"""

import hashlib
import json
import os
from collections.abc import Mapping, Sequence

import dagster as dg

from c360_assets.defs.automation.jobs import refresh_trigger, touched
from c360_assets.lib.ingest import FORMATS
from c360_assets.lib.models import Model
from c360_assets.lib.partitions import contiguous_ranges, partition_key, range_tags
from c360_assets.lib.plan import ahead_of, load_cursor, save_cursor
from resources.lakehouse import LakehouseResource

INTERVAL_SECONDS = int(os.environ.get("C360_SENSOR_INTERVAL_SECONDS", "30"))
LISTING_KEY = "c360/landing-listing"  # the landing zone's listing as last ingested by c360 run


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


def publish_listing(instance: dg.DagsterInstance, listing: str) -> None:
    """Record the landing zone's listing as ingested (by ``c360 run``)."""
    instance.run_storage.set_cursor_values({LISTING_KEY: listing})


def _published_listing(instance: dg.DagsterInstance) -> str | None:
    return instance.run_storage.get_cursor_values({LISTING_KEY}).get(LISTING_KEY)


def partial_requests(partial: Mapping) -> list[tuple[frozenset[str], list]]:
    """Partitions where only some assets are due, grouped by those assets (sorted)."""
    groups: dict[frozenset[str], list] = {}
    for part, names in sorted(partial.items()):
        groups.setdefault(frozenset(names), []).append(part)
    return sorted(groups.items(), key=lambda item: sorted(item[0]))


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
        if listing in (context.cursor, _published_listing(context.instance)):
            return dg.SkipReason("landing zone unchanged")
        context.update_cursor(listing)
        return dg.RunRequest(run_key=f"landing:{listing}")

    @dg.sensor(
        job_name="refresh_job",
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds the unpartitioned models after an ingestion of their raw inputs "
        "or a materialization from the UI that left out the models below it.",
    )
    def refresh_sensor(context: dg.SensorEvaluationContext):
        # one request per state of what is due: usage arriving while a refresh is pending (or
        # running) never requests it again
        trigger = refresh_trigger(context.instance, models)
        if trigger is None:
            return dg.SkipReason("the unpartitioned models are up to date with their inputs")
        return dg.RunRequest(run_key=f"refresh:{trigger}")

    def partition_sensor(stage: str) -> dg.SensorDefinition:
        @dg.sensor(
            name=f"{stage}_partitions_sensor",
            job_name=f"{stage}_job",
            minimum_interval_seconds=INTERVAL_SECONDS,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Rebuilds exactly the {stage} partitions that new data touched, and "
            "the assets a backfill left out below the ones it built.",
        )
        def _sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
            previous = _load(context.cursor)  # the last tick's plan: its runs were requested
            shared = load_cursor(context.instance, stage)
            if ahead_of(previous, shared):
                shared = save_cursor(context.instance, lakehouse, stage, previous)
            found = touched(context.instance, models, stage, shared)
            parts = found.days if stage == "daily" else found.months
            context.update_cursor(json.dumps(found.cursor))
            if not parts and not found.partial:
                return dg.SkipReason("no partition touched")
            last = max((v for k, v in found.cursor.items() if not k.startswith("~")), default=0)

            def key(first, end, names=()) -> str:
                edges = (partition_key(first, stage), partition_key(end, stage))
                return ":".join((stage, *edges, *sorted(names), str(last)))

            requests = [
                dg.RunRequest(run_key=key(first, end), tags=range_tags(first, end, stage))
                for first, end in contiguous_ranges(parts, stage)
            ]
            for names, keys in partial_requests(found.partial):
                requests += [
                    dg.RunRequest(
                        run_key=key(first, end, names),
                        tags=range_tags(first, end, stage),
                        asset_selection=[dg.AssetKey(n) for n in sorted(names)],
                    )
                    for first, end in contiguous_ranges(keys, stage)
                ]
            return requests

        return _sensor

    return [landing_sensor, refresh_sensor, partition_sensor("daily"), partition_sensor("monthly")]
