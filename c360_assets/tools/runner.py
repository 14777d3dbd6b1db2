"""``c360 run``: bring every asset up to date, in-process, with the plan the sensors use.

``c360 run`` and the sensors share one cursor per stage (``plan.load_cursor``, in the Dagster
instance): whatever one has built, the other does not build again, and either takes over from the
other. The landing zone's listing as last ingested is shared the same way, so the landing sensor
starts no ingestion for files ``c360 run`` already ingested.

Any number of ``c360 run`` (and sensor-launched runs, and backfills) may run at once: what must
not overlap is serialized by leases in the catalog's database (an ingestion per source, a build
per partition, see ``resources/leases.py``). A ``c360 run`` holds a liveness lease for as long as
it lives and tags its Dagster runs with it; a run of a process that died (SIGKILL) stays
``STARTED`` in Dagster's run storage forever, so every ``c360 run`` first marks the runs whose
liveness lease is gone as failed: a dead run never holds a slot of the run queue.
"""

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.utils import make_new_run_id

from c360_assets.defs.automation.jobs import STAGES, refresh_pending, touched
from c360_assets.defs.automation.sensors import (
    landing_listing_digest,
    partial_requests,
    publish_listing,
)
from c360_assets.defs.serving.assets import SERVING_JOB
from c360_assets.lib.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    between_starts,
    contiguous_ranges,
    partition_key,
    range_tags,
)
from c360_assets.lib.plan import load_cursor, save_cursor
from resources.lakehouse import LakehouseResource
from resources.leases import Leases, holder_id, process_gone

NEW_USAGE = "new usage events"  # jobs.REASONS of raw usage ingestion
DAILY_MARKER = "fct_usage_daily"  # a day it has built is a day reported before
HOLDER_TAG = "c360/holder"  # the liveness lease ("runner/<holder>") of the process running it
# the runs' own event logs stay complete in the instance; the terminal shows warnings and up
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class Progress:
    """Prints which job runs, the partitions done of the stage's total and the time elapsed.

    While a job runs, a thread reads the run's materializations from the instance every
    ``interval`` seconds and prints each asset as it completes (a range run materializes every
    partition of an asset at once, when that asset's step ends)."""

    def __init__(self, out: Callable[[str], None] | None = None, interval: float = 1.0):
        self.out = out
        self.interval = interval
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        if self.out is not None:
            elapsed = int(time.monotonic() - self.started)
            self.out(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {text}")

    @contextmanager
    def watch(self, instance: dg.DagsterInstance, run_id: str, label: str):
        if self.out is None:
            yield
            return
        self.say(f"{label} …")
        stop = threading.Event()
        thread = threading.Thread(target=self._poll, args=(instance, run_id, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _poll(self, instance: dg.DagsterInstance, run_id: str, stop: threading.Event) -> None:
        cursor, counts = None, dict[str, int]()
        while True:
            done = stop.wait(self.interval)
            page = instance.get_records_for_run(
                run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            )
            cursor = page.cursor
            for record in page.records:
                event = record.event_log_entry.dagster_event
                if event is None or event.asset_key is None:
                    continue
                key = event.asset_key.to_user_string()
                counts[key] = counts.get(key, 0) + 1
            for key, count in counts.items():
                self.say(f"  {key}: {count} partition(s)" if count > 1 else f"  {key}: built")
            counts = {}
            if done:
                return


@dataclass
class RunReport:
    runs: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # run label -> wall-clock seconds
    rebuilt: dict[str, list[str]] = field(default_factory=dict)
    # partitions where only some assets were rebuilt (a backfill left them out): key -> names
    partial: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    why: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # stage -> key -> reasons
    held: dict[str, list[str]] = field(default_factory=dict)  # dated past the last partition
    failed_checks: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # put on every run

    @property
    def ok(self) -> bool:
        return not self.failed_checks and not self.failed_runs


def execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    report: RunReport,
    tags: dict[str, str] | None = None,
    selection: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> None:
    job = defs.resolve_job_def(job_name)
    label = job_name + (f" {_describe(tags)}" if tags else "")
    if selection:
        label += f" ({', '.join(selection)})"
    run_id = make_new_run_id()
    started = time.perf_counter()
    with (progress or Progress()).watch(instance, run_id, label):
        result = job.execute_in_process(
            instance=instance,
            tags={**(tags or {}), **report.tags},
            raise_on_error=False,
            run_config=QUIET,
            run_id=run_id,
            asset_selection=[dg.AssetKey(n) for n in selection] if selection else None,
        )
    report.runs.append(label)
    elapsed = time.perf_counter() - started
    report.seconds[label] = round(report.seconds.get(label, 0.0) + elapsed, 3)
    blocking = {spec.key for spec in _check_specs(defs) if spec.blocking}
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.asset_check_key in blocking:
            key = evaluation.asset_check_key
            report.failed_checks.append(f"{key.asset_key.to_user_string()}:{key.name}")
    if not result.success:
        reason = _failure_reason(result)
        report.failed_runs.append(f"{label}: {reason}" if reason else label)


def _failure_reason(result: dg.ExecuteInProcessResult) -> str | None:
    """The first failed step's error: the one Dagster's step error wraps (what went wrong)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while (error.cls_name or "").startswith("Dagster") and error.cause is not None:
                error = error.cause
            return f"{event.step_key}: {error.message.strip()}"
    return None


def _describe(tags: dict[str, str]) -> str:
    if RANGE_START_TAG in tags:
        first, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
        return first if first == last else f"{first}..{last}"
    return str(tags)


def fail_orphaned_runs(instance: dg.DagsterInstance, leases: Leases) -> list[str]:
    """Mark failed the started runs of ``c360 run`` processes that are gone (their liveness
    lease expired or was released, or, on this host, the process no longer exists); returns
    their run ids."""
    alive = {
        row["name"].removeprefix("runner/")
        for row in leases.held()
        if row["name"].startswith("runner/")
        and not leases.expired(row)
        and not process_gone(row["holder"])
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
    specs: list[dg.AssetCheckSpec] = []
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition):
            specs.extend(assets_def.check_specs)
    return specs


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    models,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> RunReport:
    """Ingest, refresh, then rebuild exactly the due days and months (``now``: the clock that
    says which partitions exist; tests pass one)."""
    lakehouse = (defs.resources or {}).get("lakehouse")
    if not isinstance(lakehouse, LakehouseResource):
        raise TypeError("the definitions have no lakehouse resource")
    leases = lakehouse.leases
    holder = holder_id()
    with leases.hold(f"runner/{holder}", holder=holder):
        fail_orphaned_runs(instance, leases)
        report = RunReport(tags={HOLDER_TAG: holder})
        report = _run_stages(defs, instance, models, report, progress or Progress(), now)
        fail_orphaned_runs(instance, leases)  # a process that died while this one ran
        return report


def _run_stages(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    models,
    report: RunReport,
    progress: Progress,
    now: dt.datetime | None,
) -> RunReport:
    lakehouse: LakehouseResource = (defs.resources or {})["lakehouse"]
    listing = landing_listing_digest(lakehouse)
    execute(defs, instance, "ingest_job", report, progress=progress)
    if report.ok:
        publish_listing(instance, listing)  # the landing sensor starts nothing for these files
    if report.ok and refresh_pending(instance, models):
        execute(defs, instance, "refresh_job", report, progress=progress)
    if not report.ok:
        return report
    built_days = set(instance.get_materialized_partitions(dg.AssetKey(DAILY_MARKER)))
    for stage in STAGES:
        found = touched(instance, models, stage, load_cursor(instance, stage), now)
        if stage == "daily":  # usage of a day built before is late usage
            for day, reasons in found.why.items():
                if NEW_USAGE in reasons and day.isoformat() in built_days:
                    reasons.discard(NEW_USAGE)
                    reasons.add("late usage events")
        parts = found.days if stage == "daily" else found.months
        ranges = contiguous_ranges(parts, stage)
        partial = partial_requests(found.partial)
        total, done = len(parts) + sum(len(p) for _, p in partial), 0
        for first, last in ranges:
            tags = range_tags(first, last, stage)
            execute(defs, instance, f"{stage}_job", report, tags, progress=progress)
            done += len(between_starts(first, last, stage))
            progress.say(f"{stage}: {done}/{total} partitions")
        for names, keys in partial:
            for first, last in contiguous_ranges(keys, stage):
                tags = range_tags(first, last, stage)
                execute(defs, instance, f"{stage}_job", report, tags, sorted(names), progress)
            done += len(keys)
            progress.say(f"{stage}: {done}/{total} partitions")
        report.rebuilt[stage] = sorted(partition_key(p, stage) for p in parts)
        report.partial[stage] = {
            partition_key(p, stage): sorted(names) for p, names in sorted(found.partial.items())
        }
        report.why[stage] = {
            partition_key(p, stage): sorted(found.why.get(p, ()))
            for p in sorted(parts | found.partial.keys())
        }
        report.held[stage] = sorted(partition_key(p, stage) for p in found.held)
        if not report.ok:
            return report  # the cursor stays: the next run retries these partitions
        save_cursor(instance, lakehouse, stage, found.cursor)
    return report


def summary_lines(report: RunReport) -> list[str]:
    """What was rebuilt and why, stage by stage (partition keys grouped by reason)."""
    lines = []
    for stage, parts in report.rebuilt.items():
        lines.append(f"rebuilt {len(parts)} {stage} partition(s): {_shown(parts)}")
        by_reason: dict[str, list[str]] = {}
        for part in parts:
            for reason in report.why.get(stage, {}).get(part, []):
                by_reason.setdefault(reason, []).append(part)
        lines += [f"  {reason}: {_shown(keys)}" for reason, keys in sorted(by_reason.items())]
        by_assets: dict[str, list[str]] = {}
        for part, names in report.partial.get(stage, {}).items():
            by_assets.setdefault(", ".join(names), []).append(part)
        lines += [
            f"  only {names} (a backfill left them out): {_shown(keys)}"
            for names, keys in sorted(by_assets.items())
        ]
        if report.held.get(stage):
            lines.append(f"  waiting for their partition to exist: {_shown(report.held[stage])}")
    return lines


def _shown(parts: list[str], most: int = 8) -> str:
    return (
        ", ".join(parts[:most]) + (f" … ({len(parts)} in all)" if len(parts) > most else "") or "-"
    )


def refresh_bi_views(defs: dg.Definitions, instance: dg.DagsterInstance) -> bool | None:
    """Run the serving job after ``c360 run``: True/False = success, None = no Trino configured."""
    if not any(job.name == SERVING_JOB for job in defs.jobs or []):
        return None
    job = defs.resolve_job_def(SERVING_JOB)
    result = job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    return result.success


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
