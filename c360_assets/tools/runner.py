"""``c360 run``: bring every asset up to date, in-process, with the plan the sensors use.

Any number of ``c360 run`` (and sensor-launched runs, and backfills) may run at once: what must
not overlap is serialized by leases in the catalog's database (an ingestion per source, a build
per partition, see ``resources/leases.py``). A ``c360 run`` holds a liveness lease for as long as
it lives and tags its Dagster runs with it; a run of a process that died (SIGKILL) stays
``STARTED`` in Dagster's run storage forever, so every ``c360 run`` first marks the runs whose
liveness lease is gone as failed: a dead run never holds a slot of the run queue.
"""

import json
from dataclasses import dataclass, field

import dagster as dg

from c360_assets.defs.automation.jobs import STAGES, refresh_pending, touched
from c360_assets.defs.serving.assets import SERVING_JOB
from c360_assets.lib.partitions import contiguous_ranges, partition_key, range_tags
from resources.lakehouse import LakehouseResource
from resources.leases import Leases, holder_id

CURSOR_KEY = "c360/run-cursor/{stage}"
HOLDER_TAG = "c360/holder"  # the liveness lease ("runner/<holder>") of the process running it
# the runs' own event logs stay complete in the instance; the terminal shows warnings and up
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunReport:
    runs: list[str] = field(default_factory=list)
    rebuilt: dict[str, list[str]] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # put on every run

    @property
    def ok(self) -> bool:
        return not self.failed_checks and not self.failed_runs


def _load_cursor(instance: dg.DagsterInstance, stage: str) -> dict[str, int]:
    key = CURSOR_KEY.format(stage=stage)
    value = instance.run_storage.get_cursor_values({key}).get(key)
    return json.loads(value) if value else {}


def _save_cursor(instance: dg.DagsterInstance, stage: str, cursor: dict[str, int]) -> None:
    """Move the stage's cursor forward to ``cursor`` (key by key: runs that finish out of order
    never move it back)."""
    current = _load_cursor(instance, stage)
    merged = {k: max(v, current.get(k, 0)) for k, v in cursor.items()}
    merged.update({k: v for k, v in current.items() if k not in merged})
    instance.run_storage.set_cursor_values({CURSOR_KEY.format(stage=stage): json.dumps(merged)})


def execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    report: RunReport,
    tags: dict[str, str] | None = None,
) -> None:
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance,
        tags={**(tags or {}), **report.tags},
        raise_on_error=False,
        run_config=QUIET,
    )
    label = job_name + (f" {tags}" if tags else "")
    report.runs.append(label)
    blocking = {spec.key for spec in _check_specs(defs) if spec.blocking}
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.asset_check_key in blocking:
            key = evaluation.asset_check_key
            report.failed_checks.append(f"{key.asset_key.to_user_string()}:{key.name}")
    if not result.success:
        report.failed_runs.append(label)


def fail_orphaned_runs(instance: dg.DagsterInstance, leases: Leases) -> list[str]:
    """Mark failed the started runs of ``c360 run`` processes that are gone (their liveness
    lease expired or was released); returns their run ids."""
    alive = {
        row["name"].removeprefix("runner/")
        for row in leases.held()
        if row["name"].startswith("runner/") and not leases.expired(row)
    }
    orphans = []
    started = instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for run in started:
        holder = run.tags.get(HOLDER_TAG)
        if holder is not None and holder not in alive:
            instance.report_run_failed(
                run, f"its c360 run process ({holder}) is gone: its liveness lease ended"
            )
            orphans.append(run.run_id)
    return orphans


def _check_specs(defs: dg.Definitions) -> list[dg.AssetCheckSpec]:
    specs = []
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition):
            specs.extend(assets_def.check_specs)
    return specs


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, models) -> RunReport:
    """Ingest, refresh, then rebuild exactly the touched days and months."""
    lakehouse: LakehouseResource = defs.resources["lakehouse"]
    leases = lakehouse.leases
    holder = holder_id()
    with leases.hold(f"runner/{holder}", holder=holder):
        fail_orphaned_runs(instance, leases)
        return _run_stages(defs, instance, models, RunReport(tags={HOLDER_TAG: holder}))


def _run_stages(
    defs: dg.Definitions, instance: dg.DagsterInstance, models, report: RunReport
) -> RunReport:
    execute(defs, instance, "ingest_job", report)
    if report.ok and refresh_pending(instance, models):
        execute(defs, instance, "refresh_job", report)
    if not report.ok:
        return report
    for stage in STAGES:
        found = touched(instance, models, stage, _load_cursor(instance, stage))
        parts = found.days if stage == "daily" else found.months
        for first, last in contiguous_ranges(parts, stage):
            execute(defs, instance, f"{stage}_job", report, range_tags(first, last, stage))
        report.rebuilt[stage] = sorted(partition_key(p, stage) for p in parts)
        if not report.ok:
            return report  # the cursor stays: the next run retries these partitions
        _save_cursor(instance, stage, found.cursor)
    return report


def refresh_bi_views(defs: dg.Definitions, instance: dg.DagsterInstance) -> bool | None:
    """Run the serving job after ``c360 run``: True/False = success, None = no Trino configured."""
    if not any(job.name == SERVING_JOB for job in defs.jobs or []):
        return None
    job = defs.resolve_job_def(SERVING_JOB)
    result = job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    return result.success
