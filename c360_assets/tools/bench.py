"""``c360 bench``: c360 at scale, stage by stage, side by side with what a user would pick instead.

One run:

1. **Landing data**, generated once per profile and seed and cached under
   ``~/.cache/c360/bench/<profile>-<seed>/`` (``C360_BENCH_CACHE``), keyed by the generator
   arguments: the history window, one peak day, one late batch touching 3 earlier days, and a
   shorter history with its own late batch (same offsets) to show the late rebuild does not
   depend on history length.
2. **The serving stack**: a bench-only PostgreSQL catalog + Trino (``stack.up`` with its own state
   dir and ports, ``/tmp/c360-bench/stack`` by default), so the bench may drop and recreate every
   table without touching a developer's stack. Started if not running; stopped at the end only
   if this run started it.
3. **Stages**, each in a fresh child process that reports its own peak RSS (``VmHWM``):
   ``ingest_day``, ``build_day``, ``late_rebuild``, ``customer_month``, ``trino_bi_queries``.
   Everything goes through the normal Dagster jobs/assets, on the stack's PostgreSQL catalog.
   Then ``backfill_10_days``: ``daily_job`` over 10 days in the runs the daily models'
   ``BackfillPolicy`` splits a backfill into, one run at a time and two at once (same rows).
4. **Peers** doing the same work another way (``full_refresh``, ``trino_transform``, ``polars``,
   ``spark``: ``bench_spark``),
   each compared with c360's ``fct_usage_daily`` rows (keys + events + units).

With ``--cluster`` the stages that touch the warehouse are then run again on the cluster
profile (``c360 stack up --cluster``: the warehouse on its object store, a Trino coordinator and
workers; the local stack is stopped first if the bench started it), each beside local disk with
the ratio object store / local.

The result is a JSON file, a table on stdout and a PNG chart next to the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from c360_assets.tools.bench_spark import SPARK_CONF, task_spark

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
START = dt.date(2026, 10, 1)
# the customer_month stage: the month's usage per customer, the spine with its plans, the fact
CUSTOMER_MONTH_MODELS = ("int_customer_usage_months", "int_customer_months", "fct_customer_month")
SHORT_CATALOG = "c360_bench_short"  # the short-history lake: same PostgreSQL, own catalog name
STAGE_NAMES = (
    *("ingest_day", "build_day", "late_rebuild", "customer_month", "trino_bi_queries"),
    "backfill_10_days",
)
# the stages repeated on the cluster profile (warehouse on the object store), beside local disk
CLUSTER_STAGE_NAMES = STAGE_NAMES[:5]
BACKFILL = "backfill"  # the landing batch of the backfill stage
BACKFILL_DAYS = 10
INCREMENTAL_SNAPSHOT = "c360_all_days.parquet"  # fct_usage_daily after the late rebuild
PEER_NAMES = ("full_refresh", "trino_transform", "polars", "spark")
COMPARE_COLUMNS = ("usage_date", "customer_key", "tenant_id", "product", "events", "units")
ANOMALY_COLUMNS = (
    *("usage_date", "customer_key", "tenant_id", "product", "units", "baseline_units"),
    *("score", "reason", "reasons", "history_days"),
)


@dataclass(frozen=True)
class Profile:
    name: str
    customers: int
    days: int  # history before the peak day
    events_per_day: int
    peak_events: int
    late_events_per_day: int  # new events per origin day of the late batch
    late_offsets: tuple[int, ...]  # origin days: last history day minus each offset
    short_days: int  # the shorter history the late rebuild is repeated on
    events_per_file: int = 1_000_000
    bi_repeats: int = 5

    def generator_args(self, seed: int) -> dict:
        return {**asdict(self), "seed": seed, "start": START.isoformat(), "bi_repeats": None}


PROFILES = {
    "tiny": Profile("tiny", 300, 3, 3_000, 20_000, 300, (0, 1), 2, 5_000, 3),
    "small": Profile("small", 2_000, 7, 200_000, 2_000_000, 20_000, (0, 1, 2), 4),
    "full": Profile("full", 200_000, 30, 1_000_000, 30_000_000, 100_000, (0, 3, 7), 10),
}


# -- the cached landing data ---------------------------------------------------------------------
def cache_root() -> Path:
    return Path(os.environ.get("C360_BENCH_CACHE", "~/.cache/c360/bench")).expanduser()


def _late_origins(history_days: int, offsets: tuple[int, ...]) -> list[dt.date]:
    last = START + dt.timedelta(days=history_days - 1)
    return sorted(last - dt.timedelta(days=k) for k in offsets)


def ensure_landing(profile: Profile, seed: int, echo=print) -> dict:
    """Generate (once) the profile's batches; returns the manifest (paths, days, summaries)."""
    from c360_assets.tools.generate import (
        generate_landing,
        generate_late_batch,
        generate_peak_day,
    )

    args = profile.generator_args(seed)
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:10]
    root = cache_root() / f"{profile.name}-{seed}"
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        cached = json.loads(manifest_path.read_text())
        if cached.get("key") == key:
            if BACKFILL not in cached["batches"]:  # a cache made before the backfill stage
                _generate_backfill(root, cached, common_generator_args(profile, seed), echo)
                manifest_path.write_text(json.dumps(cached, indent=2) + "\n")
            return cached
    if root.exists():
        shutil.rmtree(root)  # other generator arguments: never mix batches
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    manifest: dict[str, Any] = {"key": key, "args": args, "root": str(root), "batches": {}}

    def common(days: int) -> dict:
        return {**common_generator_args(profile, seed), "days": days}

    for label, days in (("base", profile.days), ("base_short", profile.short_days)):
        echo(f"bench: generating {label} ({days} days x {profile.events_per_day:,} events)")
        summary = generate_landing(root / label, **common(days))
        manifest["batches"][label] = {"lines": summary["usage"]["lines"], "days": days}
    peak_day = START + dt.timedelta(days=profile.days)
    echo(f"bench: generating the peak day {peak_day} ({profile.peak_events:,} events)")
    peak = generate_peak_day(
        root / "peak", events=profile.peak_events, day=peak_day, **common(profile.days)
    )
    manifest["batches"]["peak"] = {
        "lines": peak["lines"],
        "day": peak_day.isoformat(),
        "events": peak["events"],
    }
    for label, days, arrival in (
        ("late", profile.days, peak_day + dt.timedelta(days=1)),
        ("late_short", profile.short_days, START + dt.timedelta(days=profile.short_days)),
    ):
        origins = _late_origins(days, profile.late_offsets)
        echo(f"bench: generating {label} for {', '.join(map(str, origins))}")
        late = generate_late_batch(
            root / label,
            events_per_origin_day=profile.late_events_per_day,
            origin_days=origins,
            arrival_day=arrival,
            **common(days),
        )
        manifest["batches"][label] = {
            "lines": late["lines"],
            "origin_days": late["origin_days"],
            "arrival_day": late["arrival_day"],
        }
    _generate_backfill(root, manifest, common_generator_args(profile, seed), echo)
    manifest["seconds"] = round(time.perf_counter() - t0, 1)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def common_generator_args(profile: Profile, seed: int) -> dict:
    """The generator arguments every batch of a profile shares (``days`` aside)."""
    from c360_assets.tools.generate import GenerateOptions

    return {
        "customers": profile.customers,
        "start": START,
        "events_per_day": profile.events_per_day,
        "seed": seed,
        "progress": False,
        "options": GenerateOptions(events_per_file=profile.events_per_file),
    }


def _generate_backfill(root: Path, manifest: dict, common: dict, echo) -> None:
    """The backfill stage's landing: ``BACKFILL_DAYS`` days of every source from ``START``."""
    from c360_assets.tools.generate import generate_landing

    per_day = common["events_per_day"]
    echo(f"bench: generating {BACKFILL} ({BACKFILL_DAYS} days x {per_day:,} events)")
    summary = generate_landing(root / BACKFILL, **{**common, "days": BACKFILL_DAYS})
    manifest["batches"][BACKFILL] = {"lines": summary["usage"]["lines"], "days": BACKFILL_DAYS}


def link_batch(source: Path, landing: Path) -> int:
    """Drop a cached batch into a landing zone (symlinks: files are never copied)."""
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = landing / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(path)
            count += 1
    return count


# -- the bench's own stack and lakes ---------------------------------------------------------------
def _bench_base() -> Path:
    base = Path(os.environ.get("C360_BENCH_STACK_DIR", Path(tempfile.gettempdir()) / "c360-bench"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # the postgres OS user must reach its data dir
    return base


def stack_config(heap: str):
    from c360_assets.tools import stack

    base = _bench_base()
    overrides = {
        "C360_STACK_DIR": str(base / "stack"),
        "C360_WAREHOUSE": str(base / "trino-warehouse"),
        "C360_CATALOG_NAME": "c360",
        "C360_PG_PORT": os.environ.get("C360_BENCH_PG_PORT", "55442"),
        "C360_TRINO_PORT": os.environ.get("C360_BENCH_TRINO_PORT", "18490"),
        "C360_TRINO_INTERNAL_PORT": os.environ.get("C360_BENCH_TRINO_INTERNAL_PORT", "18491"),
        "C360_TRINO_HEAP": heap,
    }
    return stack.StackConfig.from_env({**os.environ, **overrides})


def cluster_stack_config(workers: int):
    """The bench's own cluster-profile stack (``c360 stack up --cluster``): its own state dir,
    ports and bucket, beside the bench's local stack; heaps as ``c360 stack`` sizes them
    (``C360_TRINO_COORDINATOR_HEAP``, ``C360_TRINO_WORKER_HEAP``)."""
    from c360_assets.tools import stack

    base = _bench_base()
    env = os.environ.get
    overrides = {
        "C360_STACK_DIR": str(base / "cluster-stack"),
        "C360_WAREHOUSE": "s3://c360-bench/warehouse",
        "C360_CATALOG_NAME": "c360",
        "C360_PG_PORT": env("C360_BENCH_CLUSTER_PG_PORT", "55443"),
        "C360_S3_PORT": env("C360_BENCH_S3_PORT", "19490"),
        "C360_TRINO_PORT": env("C360_BENCH_CLUSTER_TRINO_PORT", "18500"),
        "C360_TRINO_INTERNAL_PORT": env("C360_BENCH_CLUSTER_TRINO_INTERNAL_PORT", "18501"),
        "C360_TRINO_WORKER_PORT": env("C360_BENCH_CLUSTER_TRINO_WORKER_PORT", "18502"),
    }
    return stack.StackConfig.from_env({**os.environ, **overrides}, cluster=True, workers=workers)


def clear_warehouse(cfg, warehouse: str) -> None:
    """Delete the objects under ``warehouse`` (the bench's own prefix of the cluster's bucket):
    what a previous bench run wrote there. Its catalog entries are dropped by ``reset_catalog``."""
    from c360_assets.tools.stack import objectstore

    objectstore.filesystem(cfg).delete_dir_contents(
        warehouse.removeprefix("s3://"), missing_dir_ok=True
    )


def stack_env(cfg) -> dict[str, str]:
    """The environment ``c360 stack env`` prints for this stack, as a dict."""
    import shlex

    from c360_assets.tools import stack

    env = {}
    for line in stack.env_lines(cfg):
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    return env


@dataclass
class Lake:
    """One c360 deployment: landing, warehouse, Dagster home, an Iceberg catalog name."""

    root: Path
    env: dict[str, str]

    @classmethod
    def create(
        cls, root: Path, base_env: dict[str, str], catalog_name: str, warehouse: str | None = None
    ) -> Lake:
        """A deployment under ``root``; its warehouse there too, unless ``warehouse`` names one
        (an object store's)."""
        env = {
            **base_env,
            "C360_LANDING_DIR": str(root / "landing"),
            "C360_WAREHOUSE": warehouse or str(root / "warehouse"),
            "C360_CATALOG_NAME": catalog_name,
            "DAGSTER_HOME": str(root / "dagster_home"),
        }
        for sub in ("landing", "warehouse", "dagster_home", "out"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root, env)

    @property
    def landing(self) -> Path:
        return Path(self.env["C360_LANDING_DIR"])


def bench_tables() -> set[str]:
    """Every table a bench run writes: c360's raw and model tables (the peers' are ``bench_*``)."""
    from c360_assets.definitions import all_models
    from c360_assets.defs.ingest.sources import SOURCES
    from c360_assets.lib.ingest import LANDING_FILES_TABLE, QUARANTINE_TABLE

    return (
        {m.table for m in all_models()}
        | {s.table for s in SOURCES}
        | {QUARANTINE_TABLE, LANDING_FILES_TABLE}
    )


def reset_catalog(catalog_uri: str, catalog_name: str) -> None:
    """Drop the tables a previous bench run left in ``catalog_name`` (and nothing else)."""
    from pyiceberg.catalog.sql import SqlCatalog

    known = bench_tables()
    catalog = SqlCatalog(catalog_name, uri=catalog_uri, warehouse="file:///tmp")
    try:
        for namespace in catalog.list_namespaces():
            for identifier in catalog.list_tables(namespace):
                name = ".".join(identifier)
                if name in known or identifier[-1].startswith("bench_"):
                    catalog.drop_table(identifier)
    finally:
        catalog.engine.dispose()


# -- running a step in a fresh child process -----------------------------------------------------
class _Child:
    """One task started in a fresh interpreter; ``wait`` returns its result plus wall seconds
    and peak RSS.

    ``peak_rss_mb`` is the child's own maximum resident set since its exec, as it reports it
    (``own_peak_rss_mb``). Not ``ru_maxrss`` (``os.wait4``, ``RUSAGE_CHILDREN``): Linux carries
    the larger of the parent's peak and the child's across fork + exec, so every child would
    weigh at least what the bench itself peaked at (e.g. after generating the landing data).
    ``watch_pid`` (the Trino JVM) is polled too.
    Each child logs to its own file next to its result, so children running at once do not mix.
    """

    def __init__(self, task: str, lake: Lake, args: dict | None, watch_pid: int | None = None):
        self.task = task
        self.out = lake.root / "out" / f"{task}-{time.monotonic_ns()}.json"
        self.log_path = self.out.with_suffix(".log")
        cmd = [sys.executable, "-m", "c360_assets.tools.bench", "--child", task]
        env = {**os.environ, **lake.env, "C360_BENCH_RESULT": str(self.out)}
        self.watcher = _RssWatcher(watch_pid) if watch_pid else None
        self.t0 = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*cmd, json.dumps(args or {})], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait(self) -> dict:
        _, status, _ = os.wait4(self.proc.pid, 0)
        wall = time.perf_counter() - self.t0
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.watcher:
            self.watcher.stop()
        if self.proc.returncode != 0 or not self.out.exists():
            tail = self.log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"bench step {self.task} failed ({self.proc.returncode}):\n{tail}")
        result = json.loads(self.out.read_text())
        result["process_seconds"] = round(wall, 2)
        result["peak_rss_mb"] = result.pop("own_peak_rss_mb")
        if self.watcher:
            result["watched_peak_rss_mb"] = round(self.watcher.peak / 2**20, 1)
        return result


def run_child(
    task: str, lake: Lake, args: dict | None = None, watch_pid: int | None = None
) -> dict:
    """Run ``task`` in a fresh interpreter and wait for it (see ``_Child``)."""
    return _Child(task, lake, args, watch_pid).wait()


def run_children(task: str, lake: Lake, each_args: list[dict], at_once: int) -> list[dict]:
    """Run ``task`` once per ``each_args``, ``at_once`` children at a time (like a run queue
    with that many concurrent runs); every child of a group is waited for even if one fails."""
    results: list[dict] = []
    for i in range(0, len(each_args), at_once):
        group = [_Child(task, lake, args) for args in each_args[i : i + at_once]]
        errors = []
        for child in group:
            try:
                results.append(child.wait())
            except RuntimeError as error:
                errors.append(error)
        if errors:
            raise errors[0]
    return results


class _RssWatcher:
    """Polls one process's RSS (e.g. the Trino JVM) on a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.1):
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self.thread.start()

    def _run(self, interval: float) -> None:
        while not self.done.is_set():
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, self.proc.memory_info().rss)
            self.done.wait(interval)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


# -- child tasks (run inside the fresh process) ----------------------------------------------------
def _instance():
    """The Dagster instance of DAGSTER_HOME with c360's settings, as every ``c360`` command has
    it (``instance.dagster_home``)."""
    import dagster as dg

    from c360_assets.tools.instance import dagster_home

    dagster_home()
    return dg.DagsterInstance.get()


def _defs_and_instance():
    from c360_assets.definitions import build_definitions

    return build_definitions(), _instance()


def _materialize(model_names: tuple[str, ...], partition: str) -> float:
    """Materialize the model assets for one partition; returns the seconds the run took
    (imports and asset definitions are prepared before the clock starts, as for the peers)."""
    import dagster as dg

    from c360_assets.definitions import all_models
    from c360_assets.lib.models import build_model_asset
    from resources.lakehouse import LakehouseResource

    models = [m for m in all_models() if m.name in model_names]
    assets = [build_model_asset(m) for m in models]
    resources = {"lakehouse": LakehouseResource.from_env()}
    with _instance() as instance:
        t0 = time.perf_counter()
        result = dg.materialize(
            assets,
            partition_key=partition,
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        seconds = time.perf_counter() - t0
    failed = [
        e.asset_check_key
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    if not result.success or failed:
        raise RuntimeError(f"materialize {model_names} {partition} failed: {failed}")
    return seconds


def task_pipeline(args: dict) -> dict:
    """``c360 run``: ingest, refresh, rebuild exactly the touched partitions."""
    from c360_assets.definitions import all_models
    from c360_assets.tools.runner import run_pipeline

    defs, instance = _defs_and_instance()
    with instance:
        t0 = time.perf_counter()
        report = run_pipeline(defs, instance, all_models())
        seconds = time.perf_counter() - t0
    if not report.ok:
        raise RuntimeError(f"c360 run failed: {report}")
    return {
        "seconds": seconds,
        "runs": report.runs,
        "run_seconds": report.seconds,
        "rebuilt": report.rebuilt,
    }


def task_job(args: dict) -> dict:
    """One of c360's jobs (``ingest_job``, ``refresh_job``, ...), optionally over a range."""
    from c360_assets.lib.incremental import FULL_TAG
    from c360_assets.lib.partitions import range_tags
    from c360_assets.tools.runner import RunReport, execute

    defs, instance = _defs_and_instance()
    report = RunReport()
    t0 = time.perf_counter()
    with instance:
        for job in args["jobs"]:
            tags = None
            if job.get("range"):
                first, last = (dt.date.fromisoformat(d) for d in job["range"])
                tags = range_tags(first, last, job["step"])
            # series-local models rebuild every day in full, unpartitioned ones even unchanged
            if job.get("full"):
                tags = {**(tags or {}), FULL_TAG: "full"}
            execute(defs, instance, job["name"], report, tags)
            if not report.ok:
                raise RuntimeError(f"{job} failed: {report}")
    return {"seconds": time.perf_counter() - t0, "runs": report.runs}


def task_floor(args: dict) -> dict:
    """A stage's floor: the same work in plain DuckDB (``bench_floor``)."""
    from c360_assets.tools import bench_floor

    return bench_floor.task_floor(args)


def task_build_day(args: dict) -> dict:
    """The day's raw partition -> fct_usage_daily (deduplicated inside its build), as Dagster
    materializes the asset."""
    return {"seconds": _materialize(("fct_usage_daily",), args["day"])}


def task_customer_month(args: dict) -> dict:
    """fct_customer_month for a month, with its rows and month-end plans (int_customer_months)
    and the month's customers with usage they start from (int_customer_usage_months)."""
    seconds = _materialize(CUSTOMER_MONTH_MODELS, args["month"])
    from pyiceberg.expressions import EqualTo

    from resources.lakehouse import LakehouseResource

    rows = LakehouseResource.from_env().scan(
        "marts.fct_customer_month", EqualTo("month", args["month"]), ("customer_key",)
    )
    return {"seconds": seconds, "rows": rows.num_rows}


def task_snapshot(args: dict) -> dict:
    """Write c360's rows of some days (or all) to a Parquet file: fct_usage_daily's compared
    columns, or every column of ``args["table"]``."""
    import pyarrow.parquet as pq
    from pyiceberg.expressions import AlwaysTrue, In

    from resources.lakehouse import LakehouseResource

    days = args.get("days")
    where = In("usage_date", days) if days else AlwaysTrue()
    identifier = args.get("table", "marts.fct_usage_daily")
    columns = ("*",) if "table" in args else COMPARE_COLUMNS
    table = LakehouseResource.from_env().scan(identifier, where, columns)
    pq.write_table(table, args["path"])
    return {"rows": table.num_rows}


def _data_files(lakehouse, identifier: str, row_filter) -> list[str]:
    table = lakehouse.load(identifier)
    return [
        task.file.file_path.removeprefix("file://")
        for task in table.scan(row_filter=row_filter).plan_files()
    ]


def _rss_guard(cap_mb: float) -> None:
    """Exit this child if its RSS passes ``cap_mb`` (a peer must never push the machine into
    the OOM killer, which could pick another process)."""
    import psutil

    me = psutil.Process()

    def watch() -> None:
        while True:
            if me.memory_info().rss > cap_mb * 2**20:
                sys.stderr.write(f"bench: RSS above {cap_mb:.0f} MB: giving up\n")
                sys.stderr.flush()
                os._exit(3)
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()


def task_polars(args: dict) -> dict:
    """The day build with Polars' lazy API (streaming engine) over the same raw Parquet files,
    written back to Iceberg like c360's."""
    import polars as pl
    import pyarrow.parquet as pq
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    from c360_assets.lib.sqlmodel import between
    from resources.lakehouse import LakehouseResource

    _rss_guard(float(os.environ.get("C360_BENCH_RSS_CAP_MB", 14_000)))
    day = dt.date.fromisoformat(args["day"])
    lakehouse = LakehouseResource.from_env()
    t0 = time.perf_counter()
    raw_files = _data_files(lakehouse, "raw.usage_events", EqualTo("event_date", args["day"]))
    tenant_files = _data_files(lakehouse, "core.int_tenants_resolved", AlwaysTrue())
    # the same plan as c360's stg_usage_events: only ids delivered more than once are sorted
    # and reduced to their first delivery (a sort or group of every row of a 30M-event day
    # does not fit in 14 GB)
    order = ["_ingested_at", "_source_file", "_source_line"]
    keys = ["event_date", "event_id"]
    events = (
        pl.scan_parquet(raw_files)
        .filter(pl.col("event_date") == day)
        .with_columns(pl.col("event_id").str.strip_chars())
    )
    shape: list[str | pl.Expr] = [
        pl.col("tenant_id").str.strip_chars().str.to_lowercase(),
        pl.col("product").str.strip_chars().str.to_lowercase(),
        "quantity",
        "occurred_at",
        pl.col("_source_file").alias("source_file"),
        pl.col("_source_line").alias("source_line"),
    ]
    repeated = (
        events.group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias("deliveries"))
        .filter(pl.col("deliveries") > 1)
    ).collect(engine="streaming")
    once = events.join(repeated.lazy(), on=keys, how="anti").select(
        *keys, *shape, pl.lit(1, pl.Int64).alias("deliveries")
    )
    many = (
        events.join(repeated.lazy(), on=keys, how="inner")
        .sort(order)
        .group_by(keys)
        .agg(pl.all().exclude("deliveries").first(), pl.col("deliveries").first())
        .select(*keys, *shape, "deliveries")
    )
    staged = pl.concat([once, many]).collect(engine="streaming")
    tenants = pl.scan_parquet(tenant_files).select("tenant_id", "customer_key")
    fct = (
        staged.lazy()
        .join(tenants, on="tenant_id", how="left")
        .group_by(
            pl.col("event_date").alias("usage_date"),
            pl.col("customer_key").fill_null("unknown"),
            "tenant_id",
            "product",
        )
        .agg(pl.len().cast(pl.Int64).alias("events"), pl.col("quantity").sum().alias("units"))
    ).collect(engine="streaming")
    fct_arrow = fct.to_arrow()
    where = between("usage_date", day, day + dt.timedelta(days=1))
    lakehouse.replace_where("marts.bench_polars_fct_usage_daily", fct_arrow, where, ("usage_date",))
    seconds = time.perf_counter() - t0
    pq.write_table(fct_arrow.select(list(COMPARE_COLUMNS)), args["path"])
    return {"seconds": seconds, "rows": fct.height, "staged_rows": staged.height}


def _trino_resource(user: str = "c360"):
    from resources.trino import TrinoResource

    trino = TrinoResource.from_env()
    if user != trino.user:
        trino = trino.model_copy(
            update={"user": user, "password": os.environ["C360_BENCH_BI_PASSWORD"]}
        )
    return trino.model_copy(update={"request_timeout_s": 3600.0})


def _statements(name: str, **params: str) -> list[str]:
    text = (BENCH_DIR / "trino" / f"{name}.sql").read_text()
    for key, value in params.items():
        text = text.replace("{" + key + "}", value)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def task_trino_transform(args: dict) -> dict:
    """The day build as a dbt-trino project would run it: delete + insert per partition."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    day = dt.date.fromisoformat(args["day"]).isoformat()
    trino = _trino_resource()
    t0 = time.perf_counter()
    for statement in _statements("day_build", day=day):
        trino.query(statement)
    seconds = time.perf_counter() - t0
    rows = trino.query(
        "select usage_date, customer_key, tenant_id, product, events, units "
        f"from marts.bench_trino_fct_usage_daily where usage_date = date '{day}'"
    )
    table = pa.Table.from_pylist([dict(zip(COMPARE_COLUMNS, r, strict=True)) for r in rows])
    pq.write_table(table, args["path"])
    return {"seconds": seconds, "rows": len(rows)}


def task_bi_queries(args: dict) -> dict:
    """Five typical BI queries on the marts, as the read-only ``bi`` user, repeated."""
    trino = _trino_resource("bi")
    timings: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    for path in sorted((BENCH_DIR / "trino").glob("bi_*.sql")):
        (statement,) = _statements(path.stem, month=args["month"], day=args["day"])
        trino.query(statement)  # warm-up: metadata and file caches
        for _ in range(args["repeats"]):
            t0 = time.perf_counter()
            result = trino.query(statement)
            timings.setdefault(path.stem, []).append(time.perf_counter() - t0)
        rows[path.stem] = len(result)
    return {"timings": timings, "rows": rows}


TASKS = {
    "floor": task_floor,
    "pipeline": task_pipeline,
    "job": task_job,
    "build_day": task_build_day,
    "customer_month": task_customer_month,
    "snapshot": task_snapshot,
    "polars": task_polars,
    "spark": task_spark,
    "trino_transform": task_trino_transform,
    "bi_queries": task_bi_queries,
}


def own_peak_rss_mb() -> float:
    """This process's peak resident set since its exec (``VmHWM`` of /proc/self/status), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_main(task: str, args_json: str) -> int:
    result = TASKS[task](json.loads(args_json))
    result["own_peak_rss_mb"] = own_peak_rss_mb()
    Path(os.environ["C360_BENCH_RESULT"]).write_text(json.dumps(result, default=str))
    return 0


# -- comparing outputs ---------------------------------------------------------------------------
def same_rows(
    left: Path, right: Path, columns: tuple[str, ...] = COMPARE_COLUMNS
) -> tuple[bool, dict]:
    """Equal multisets of rows (by default fct_usage_daily's keys, events and units)?"""
    import duckdb

    con = duckdb.connect()
    cols = ", ".join(columns)
    q = f"""
        select
            (select count(*) from read_parquet('{left}')) as left_rows,
            (select count(*) from read_parquet('{right}')) as right_rows,
            (select count(*) from (
                select {cols} from read_parquet('{left}')
                except all select {cols} from read_parquet('{right}'))) as only_left,
            (select count(*) from (
                select {cols} from read_parquet('{right}')
                except all select {cols} from read_parquet('{left}'))) as only_right
    """
    (left_rows, right_rows, only_left, only_right) = con.sql(q).fetchall()[0]
    con.close()
    detail = {
        "rows": left_rows,
        "peer_rows": right_rows,
        "only_c360": only_left,
        "only_peer": only_right,
    }
    return left_rows > 0 and only_left == 0 and only_right == 0, detail


# -- the run -------------------------------------------------------------------------------------
def _stage(name: str, seconds: float, rows: int, peak_rss_mb: float, **extra) -> dict:
    return {
        "name": name,
        "seconds": round(seconds, 2),
        "rows": rows,
        "rows_per_second": round(rows / seconds) if seconds else None,
        "peak_rss_mb": peak_rss_mb,
        **extra,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def machine_info(trino_version: str | None) -> dict:
    import dagster
    import duckdb
    import polars
    import psutil
    import pyarrow
    import pyiceberg

    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "dagster": dagster.__version__,
            "duckdb": duckdb.__version__,
            "pyiceberg": pyiceberg.__version__,
            "pyarrow": pyarrow.__version__,
            "polars": polars.__version__,
            "trino": trino_version,
        },
    }


def run_bench(
    profile: Profile,
    seed: int,
    out: Path,
    *,
    trino_heap: str = "12G",
    keep_stack: bool = False,
    stack_cfg=None,
    cluster: bool = False,
    cluster_cfg=None,
    cluster_workers: int = 1,
    pair_rounds: int = 0,
    echo=print,
) -> dict:
    """Run every stage and peer; write the JSON (and the chart) to ``out``.

    ``pair_rounds``: after the peers, build_day and the Polars peer again, alternately, that
    many times on the same raw partition (``build_day_paired``).

    Without ``stack_cfg`` the bench uses its own stack (``stack_config``), started if needed
    and stopped at the end if this run started it. With ``stack_cfg`` (e.g. the tests' stack)
    that running stack is used and left as it is. With ``cluster`` (or a running
    ``cluster_cfg``), the stages that write or read the warehouse are then run again on the
    cluster profile, the warehouse on its object store (``cluster_stack_config``, the same
    rules), and reported beside local disk.
    """
    t_start = time.perf_counter()
    manifest = ensure_landing(profile, seed, echo)
    batches = Path(manifest["root"])
    cfg = stack_cfg or stack_config(trino_heap)
    with _running_stack(cfg, stack_cfg is not None, keep_stack, echo) as started:
        result = _run_with_stack(profile, seed, manifest, batches, cfg, echo, pair_rounds)
    result["started_stack"] = started
    if cluster or cluster_cfg is not None:
        store_cfg = cluster_cfg or cluster_stack_config(cluster_workers)
        with _running_stack(store_cfg, cluster_cfg is not None, keep_stack, echo) as started:
            result["cluster"] = _cluster_pass(
                profile, seed, manifest, batches, store_cfg, result, echo
            )
        result["cluster"]["started_stack"] = started
        for row in result["cluster"]["stages"]:
            result["ratios"][f"{row['name']}_object_store_over_local"] = row["ratio"]
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    chart = out.with_suffix(".png")
    write_chart(result, chart)
    result["chart"] = str(chart)
    echo(format_table(result))
    return result


@contextlib.contextmanager
def _running_stack(cfg, given: bool, keep: bool, echo) -> Iterator[list[str]]:
    """``cfg``'s stack, up for the block; yields the processes this run started. A given stack
    must already run and is left as it is; one this run started is stopped after the block
    (unless ``keep``), so the local stack is down before the cluster's starts."""
    from c360_assets.tools import stack

    before = stack.status(cfg)
    started = [name for name, part in stack.processes(before) if part["state"] != "running"]
    if given and started:
        raise RuntimeError(f"the given stack is not running: {', '.join(started)}")
    state = "starting " + ", ".join(started) if started else "already running"
    echo(f"bench: {cfg.profile} stack at {cfg.stack_dir} ({state})")
    stack.up(cfg, echo=lambda m: None)
    try:
        yield started
    finally:
        if started and not keep:
            stack.down(cfg, echo=lambda m: None)
            echo(f"bench: {cfg.profile} stack stopped (this run started it)")


def _stepper(echo, prefix: str = ""):
    """``step(label, task, lake, args)``: ``run_child`` with a line before and after."""

    def step(label: str, task: str, target: Lake, args: dict | None = None, **kw) -> dict:
        echo(f"bench: {prefix}{label} ...")
        r = run_child(task, target, args, **kw)
        echo(
            f"bench: {prefix}{label}: {r.get('seconds', r['process_seconds']):.1f} s, "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
        return r

    return step


def _bench_env(cfg) -> dict[str, str]:
    env = stack_env(cfg)
    env["C360_BENCH_BI_PASSWORD"] = cfg.bi_password
    return env


def _work_dir(profile: Profile, seed: int) -> Path:
    return cache_root() / f"{profile.name}-{seed}" / "work"


def _late_variant(step, target: Lake, label: str, history: int, manifest, batches) -> dict:
    """The late batch ``label`` lands on ``target``; ``c360 run`` ingests it and rebuilds."""
    link_batch(batches / label, target.landing)
    r = step(f"late_rebuild ({history} days of history)", "pipeline", target)
    return {
        "history_days": history,
        "seconds": round(r["seconds"], 2),
        "peak_rss_mb": r["peak_rss_mb"],
        "rebuilt": r["rebuilt"],
        "lines": manifest["batches"][label]["lines"],
        "run_seconds": r["run_seconds"],  # each Dagster run of the c360 run
    }


def _usage_files(batch: Path) -> list[str]:
    return sorted(str(p) for p in (batch / "usage_events").rglob("*") if p.is_file())


def _floor(step, lake: Lake, name: str, args: dict) -> dict:
    """The floor of stage ``name`` on ``lake`` (local disk only): plain DuckDB doing the same
    work (``bench_floor``)."""
    args = {**args, "out_dir": str(lake.root / "out" / f"floor-{name}")}
    r = step(f"floor of {name}", "floor", lake, args)
    return {
        "seconds": round(r["seconds"], 2),
        "peak_rss_mb": r["peak_rss_mb"],
        **{k: r[k] for k in ("ingest", "models") if k in r},
    }


def _late_floor_args(batch: Path, rebuilt: dict) -> dict:
    """A late rebuild's floor: the late batch's usage files parsed, then every partitioned
    model over the days and months the rebuild wrote."""
    from c360_assets.tools import bench_floor

    return {
        "ingest": _usage_files(batch),
        "models": bench_floor.floor_models(rebuilt.get("daily", []), rebuilt.get("monthly", [])),
    }


def _lake_stages(
    profile: Profile,
    manifest,
    batches,
    lake: Lake,
    trino_pid,
    step,
    after_build_day=None,
    floors: bool = False,
) -> tuple[dict[str, dict], dict]:
    """The stages on one deployment, in order: the history (``c360 run``, untimed),
    ``ingest_day``, ``build_day`` (then ``after_build_day(c360's rows of the day)``),
    ``customer_month``, ``late_rebuild`` (on this history) and ``trino_bi_queries``; with
    ``floors``, each of the first four followed by its floor (``bench_floor``). Returns the
    stages by name and the untimed set-up runs."""
    peak = manifest["batches"]["peak"]
    day = peak["day"]
    month = day[:8] + "01"
    setup: dict[str, Any] = {}
    stages: dict[str, dict] = {}

    def with_floor(name: str, args: dict) -> None:
        """The stage's floor (local disk only): plain DuckDB doing the same work."""
        if not floors:
            return
        stage = stages[name]
        floor = stage["floor"] = _floor(step, lake, name, args)
        seconds = floor["seconds"]
        stage["over_floor"] = round(stage["seconds"] / seconds, 2) if seconds else None
        stage["overhead_seconds"] = round(stage["seconds"] - seconds, 2)

    # 1. history: c360 run over the whole window
    link_batch(batches / "base", lake.landing)
    setup["history_run"] = step("history: c360 run", "pipeline", lake)
    # 2. ingest_day: the peak day's files -> raw Iceberg (Dagster's ingest_job)
    link_batch(batches / "peak", lake.landing)
    r = step("ingest_day", "job", lake, {"jobs": [{"name": "ingest_job"}]})
    stages["ingest_day"] = _stage(
        "ingest_day",
        r["seconds"],
        peak["lines"],
        r["peak_rss_mb"],
        process_seconds=r["process_seconds"],
    )
    with_floor("ingest_day", {"ingest": _usage_files(batches / "peak")})
    setup["refresh_after_peak"] = step(
        "refresh_job", "job", lake, {"jobs": [{"name": "refresh_job"}]}
    )

    # 3. build_day: raw -> staging -> fct_usage_daily for the peak day
    r = step("build_day", "build_day", lake, {"day": day})
    stages["build_day"] = _stage(
        "build_day",
        r["seconds"],
        peak["lines"],
        r["peak_rss_mb"],
        events=peak["events"],
        process_seconds=r["process_seconds"],
    )
    with_floor("build_day", {"models": [["fct_usage_daily", day]]})
    # c360's rows of the day, once: the floor and the peers are compared with them
    c360_day = lake.root / "out" / "c360_day.parquet"
    if floors or after_build_day is not None:
        step("snapshot of the day", "snapshot", lake, {"days": [day], "path": str(c360_day)})
    if floors:  # the floor ran c360's own SQL: it must give c360's rows
        floor_day = lake.root / "out" / "floor-build_day" / f"marts.fct_usage_daily-{day}.parquet"
        same, detail = same_rows(c360_day, floor_day)
        stages["build_day"]["floor"].update(same_output=same, compared=detail)
    if after_build_day is not None:
        after_build_day(c360_day)

    # catch up: the rest of c360 run for the peak day (risk models, months), untimed
    setup["catch_up_run"] = step("catch-up: c360 run", "pipeline", lake)

    # 4. customer_month: fct_customer_month for the peak day's month, all customers
    r = step("customer_month", "customer_month", lake, {"month": month})
    stages["customer_month"] = _stage(
        "customer_month",
        r["seconds"],
        r["rows"],
        r["peak_rss_mb"],
        month=month,
        process_seconds=r["process_seconds"],
    )
    customer_month = [[name, month] for name in CUSTOMER_MONTH_MODELS]
    with_floor("customer_month", {"models": customer_month})

    # 5. late_rebuild: the late batch ingested, exactly its days and months rebuilt (c360 run)
    late = _late_variant(step, lake, "late", profile.days, manifest, batches)
    stages["late_rebuild"] = _stage(
        "late_rebuild",
        late["seconds"],
        late["lines"],
        late["peak_rss_mb"],
        origin_days=manifest["batches"]["late"]["origin_days"],
        rebuilt=late["rebuilt"],
        history_variants=[late],
    )
    with_floor("late_rebuild", _late_floor_args(batches / "late", late["rebuilt"]))
    if floors:
        late["floor"] = stages["late_rebuild"]["floor"]

    # 6. Trino BI queries on the marts
    r = step(
        "trino_bi_queries",
        "bi_queries",
        lake,
        {"month": month, "day": day, "repeats": profile.bi_repeats},
        watch_pid=trino_pid,
    )
    every = [t for ts in r["timings"].values() for t in ts]
    per_query = {
        name: {
            "p50": round(statistics.median(ts), 3),
            "p95": round(_percentile(ts, 0.95), 3),
            "rows": r["rows"][name],
        }
        for name, ts in r["timings"].items()
    }
    stages["trino_bi_queries"] = _stage(
        "trino_bi_queries",
        sum(every),
        len(every),
        r["peak_rss_mb"],
        p50=round(statistics.median(every), 3),
        p95=round(_percentile(every, 0.95), 3),
        queries=per_query,
        trino_peak_rss_mb=r.get("watched_peak_rss_mb"),
    )
    return stages, setup


def _run_with_stack(profile, seed, manifest, batches, cfg, echo, pair_rounds: int) -> dict:
    from c360_assets.tools import stack

    base_env = _bench_env(cfg)
    work = _work_dir(profile, seed)
    if work.exists():
        shutil.rmtree(work)
    for name in (cfg.catalog_name, SHORT_CATALOG):
        reset_catalog(cfg.catalog_uri, name)
    lake = Lake.create(work / "long", base_env, cfg.catalog_name)
    short = Lake.create(work / "short", base_env, SHORT_CATALOG)
    trino_pid = stack.trino_pid(cfg)
    day = manifest["batches"]["peak"]["day"]
    step = _stepper(echo)
    peers: list[dict] = []
    paired: dict[str, Any] = {}

    def build_day_peers(c360_day: Path) -> None:
        """The peers of build_day, on the same raw partition, compared with c360's day."""
        polars_out = lake.root / "out" / "polars_day.parquet"
        try:
            r = step("peer polars", "polars", lake, {"day": day, "path": str(polars_out)})
            same, detail = same_rows(c360_day, polars_out)
            peers.append(
                {
                    "name": "polars",
                    "seconds": round(r["seconds"], 2),
                    "peak_rss_mb": r["peak_rss_mb"],
                    "same_output": same,
                    "compared": detail,
                    "process_seconds": r["process_seconds"],
                    "compares_with": "build_day",
                }
            )
        except RuntimeError as error:  # e.g. killed for memory: reported, the bench goes on
            peers.append(_failed_peer("polars", error))
        peers.append(_spark_peer(step, lake, day, c360_day))
        trino_out = lake.root / "out" / "trino_day.parquet"
        try:
            r = step(
                "peer trino_transform",
                "trino_transform",
                lake,
                {"day": day, "path": str(trino_out)},
                watch_pid=trino_pid,
            )
            same, detail = same_rows(c360_day, trino_out)
            peers.append(
                {
                    "name": "trino_transform",
                    "seconds": round(r["seconds"], 2),
                    "peak_rss_mb": r.get("watched_peak_rss_mb"),
                    "client_peak_rss_mb": r["peak_rss_mb"],
                    "same_output": same,
                    "compared": detail,
                    "compares_with": "build_day",
                    "trino_heap": cfg.trino_heap,
                }
            )
        except RuntimeError as error:
            peers.append(_failed_peer("trino_transform", error))
        if pair_rounds:
            paired.update(_paired_build_day(step, lake, day, c360_day, pair_rounds))

    by_name, setup = _lake_stages(
        profile,
        manifest,
        batches,
        lake,
        trino_pid,
        step,
        after_build_day=build_day_peers,
        floors=True,
    )
    setup["generate_seconds"] = manifest.get("seconds")

    # late_rebuild repeated on the short history: it should not grow with history
    link_batch(batches / "base_short", short.landing)
    setup["short_history_run"] = step("short history: c360 run", "pipeline", short)
    variants = by_name["late_rebuild"]["history_variants"]
    short_late = _late_variant(step, short, "late_short", profile.short_days, manifest, batches)
    # its floor too: how much of the long history's extra cost is the extra work itself
    short_late["floor"] = _floor(
        step,
        short,
        "late_rebuild_short",
        _late_floor_args(batches / "late_short", short_late["rebuilt"]),
    )
    variants.insert(0, short_late)

    # peer full_refresh: the naive pipeline rebuilds every day and month of history
    incremental = lake.root / "out" / INCREMENTAL_SNAPSHOT
    step("snapshot of all days", "snapshot", lake, {"path": str(incremental)})
    anomalies = {"table": "marts.usage_anomalies"}
    incremental_anomalies = lake.root / "out" / "c360_anomalies.parquet"
    step(
        "snapshot of anomalies",
        "snapshot",
        lake,
        {**anomalies, "path": str(incremental_anomalies)},
    )
    first_day = START.isoformat()
    months = sorted(
        {(START + dt.timedelta(days=i)).replace(day=1).isoformat() for i in range(profile.days + 1)}
    )
    r = step(
        "peer full_refresh",
        "job",
        lake,
        {
            "jobs": [
                {"name": "refresh_job", "full": True},
                {"name": "daily_job", "range": [first_day, day], "step": "daily", "full": True},
                {"name": "monthly_job", "range": [months[0], months[-1]], "step": "monthly"},
            ]
        },
    )
    full_out = lake.root / "out" / "full_refresh_all_days.parquet"
    step("snapshot after full refresh", "snapshot", lake, {"path": str(full_out)})
    same, detail = same_rows(incremental, full_out)
    full_anomalies = lake.root / "out" / "full_refresh_anomalies.parquet"
    step(
        "anomalies after full refresh",
        "snapshot",
        lake,
        {**anomalies, "path": str(full_anomalies)},
    )
    same_anomalies, anomalies_detail = same_rows(
        incremental_anomalies, full_anomalies, ANOMALY_COLUMNS
    )
    peers.append(
        {
            "name": "full_refresh",
            "seconds": round(r["seconds"], 2),
            "peak_rss_mb": r["peak_rss_mb"],
            "same_output": same and same_anomalies,
            "compared": {"fct_usage_daily": detail, "usage_anomalies": anomalies_detail},
            "compares_with": "late_rebuild",
            "days_rebuilt": profile.days + 1,
            "note": "refresh_job + daily_job over every day + monthly_job over every "
            "month; excludes the late batch's ingestion, which late_rebuild "
            "includes",
        }
    )

    # 7. backfill_10_days, last: it starts from an empty catalog (twice)
    by_name["backfill_10_days"] = _backfill_stage(
        manifest, batches, cfg, base_env, work, step, echo
    )
    version = _trino_resource_for(cfg).query("select node_version from system.runtime.nodes")

    ratios: dict[str, Any] = {}
    for peer in peers:
        if peer["seconds"] and peer.get("compares_with") == "build_day":
            ratios[f"{peer['name']}_over_build_day"] = round(
                peer["seconds"] / by_name["build_day"]["seconds"], 2
            )
    full = next(p for p in peers if p["name"] == "full_refresh")
    ratios["late_rebuild_over_full_refresh"] = round(
        by_name["late_rebuild"]["seconds"] / full["seconds"], 3
    )
    ratios["late_rebuild_long_over_short_history"] = round(
        variants[-1]["seconds"] / variants[0]["seconds"], 2
    )
    ratios["late_rebuild_floor_long_over_short_history"] = round(
        variants[-1]["floor"]["seconds"] / variants[0]["floor"]["seconds"], 2
    )
    ratios["backfill_speedup_two_runs_at_once"] = by_name["backfill_10_days"]["speedup"]
    if paired.get("median_seconds"):
        medians = paired["median_seconds"]
        ratios["polars_over_build_day_paired"] = round(medians["polars"] / medians["build_day"], 2)
    for name, stage in by_name.items():  # what each stage costs over doing its work by hand
        if stage.get("over_floor") is not None:
            ratios[f"{name}_over_floor"] = stage["over_floor"]
    return {
        "profile": profile.name,
        "params": manifest["args"],
        "machine": machine_info(version[0][0] if version else None),
        "stages": [by_name[n] for n in STAGE_NAMES],
        "peers": sorted(peers, key=lambda p: PEER_NAMES.index(p["name"])),
        "ratios": ratios,
        "targets": targets(profile, by_name, peers, ratios),
        "setup": setup,
        **({"build_day_paired": paired} if paired else {}),
    }


def _paired_build_day(step, lake: Lake, day: str, c360_day: Path, rounds: int) -> dict:
    """build_day and the Polars peer again, alternately, ``rounds`` times on the same raw
    partition, each in a fresh process as the stage and the peer ran: one run of a 15-second
    step moves by about a tenth from run to run, and alternating runs share the machine's
    drift. Polars' rows are compared with c360's each round, c360's own after the last one."""
    out = lake.root / "out" / "polars_day_paired.parquet"
    runs = []
    try:
        for i in range(1, rounds + 1):
            built = step(f"paired build_day {i}/{rounds}", "build_day", lake, {"day": day})
            peer = step(
                f"paired polars {i}/{rounds}", "polars", lake, {"day": day, "path": str(out)}
            )
            runs.append(
                {
                    "round": i,
                    "build_day": round(built["seconds"], 2),
                    "polars": round(peer["seconds"], 2),
                    "build_day_rss_mb": built["peak_rss_mb"],
                    "polars_rss_mb": peer["peak_rss_mb"],
                    "polars_same_output": same_rows(c360_day, out)[0],
                }
            )
    except RuntimeError as error:  # e.g. Polars killed for memory: the rounds so far are kept
        return {"rounds": runs, "error": str(error)}
    rebuilt = lake.root / "out" / "c360_day_paired.parquet"
    step("snapshot of the day, paired", "snapshot", lake, {"days": [day], "path": str(rebuilt)})
    return {
        "rounds": runs,
        "median_seconds": {
            name: round(statistics.median(r[name] for r in runs), 2)
            for name in ("build_day", "polars")
        },
        "same_output": all(r["polars_same_output"] for r in runs)
        and same_rows(c360_day, rebuilt)[0],
    }


def backfill_runs(days: int = BACKFILL_DAYS) -> list[tuple[str, str]]:
    """The runs a backfill of ``days`` daily partitions from ``START`` is split into: the daily
    models' ``BackfillPolicy.multi_run`` (``BACKFILL_RUN_SIZE``), first and last day of each."""
    from c360_assets.lib.partitions import BACKFILL_RUN_SIZE

    size = BACKFILL_RUN_SIZE["daily"]
    every = [START + dt.timedelta(days=i) for i in range(days)]
    return [
        (every[i].isoformat(), every[min(i + size, days) - 1].isoformat())
        for i in range(0, days, size)
    ]


def _backfill_stage(manifest, batches, cfg, base_env, work: Path, step, echo) -> dict:
    """``backfill_10_days``: ``daily_job`` over the backfill batch's days, split into runs as a
    backfill from the UI is, the runs one at a time (a run queue of 1) and then two at once
    (a run queue of 2), each from an empty catalog after the same ingestion and refresh; the
    two outputs must be the same rows."""
    runs = backfill_runs()
    each = [{"jobs": [{"name": "daily_job", "range": list(r), "step": "daily"}]} for r in runs]
    variants, snapshots = [], []
    for at_once in (1, 2):
        reset_catalog(cfg.catalog_uri, cfg.catalog_name)
        lake = Lake.create(work / f"backfill-{at_once}", base_env, cfg.catalog_name)
        link_batch(batches / BACKFILL, lake.landing)
        setup = step(
            f"backfill set-up ({at_once} at once): ingest_job, refresh_job",
            "job",
            lake,
            {"jobs": [{"name": "ingest_job"}, {"name": "refresh_job"}]},
        )
        t0 = time.perf_counter()
        results = run_children("job", lake, each, at_once)
        seconds = time.perf_counter() - t0
        echo(f"bench: backfill of {len(runs)} runs, {at_once} at once: {seconds:.1f} s")
        out = lake.root / "out"
        step("snapshot of the backfill", "snapshot", lake, {"path": str(out / "fct.parquet")})
        step(
            "anomalies of the backfill",
            "snapshot",
            lake,
            {"table": "marts.usage_anomalies", "path": str(out / "anomalies.parquet")},
        )
        snapshots.append(out)
        variants.append(
            {
                "runs_at_once": at_once,
                "seconds": round(seconds, 2),
                "run_seconds": [round(r["seconds"], 2) for r in results],
                "run_peak_rss_mb": [r["peak_rss_mb"] for r in results],
                "setup_seconds": round(setup["seconds"], 2),
            }
        )
    one, two = snapshots
    same_fct, fct_detail = same_rows(one / "fct.parquet", two / "fct.parquet")
    same_anomalies, anomalies_detail = same_rows(
        one / "anomalies.parquet", two / "anomalies.parquet", ANOMALY_COLUMNS
    )
    serial, concurrent = variants
    return _stage(
        "backfill_10_days",
        serial["seconds"],
        manifest["batches"][BACKFILL]["lines"],
        max(rss for v in variants for rss in v["run_peak_rss_mb"]),
        days=[runs[0][0], runs[-1][1]],
        runs=[list(r) for r in runs],
        concurrent_runs=variants,
        speedup=round(serial["seconds"] / concurrent["seconds"], 2),
        same_output=same_fct and same_anomalies,
        compared={"fct_usage_daily": fct_detail, "usage_anomalies": anomalies_detail},
    )


def _cluster_pass(profile, seed, manifest, batches, cfg, local: dict, echo) -> dict:
    """The stages on the cluster profile: the same landing batches on a fresh deployment whose
    warehouse is the object store (PostgreSQL catalog, Trino coordinator + workers), each
    stage's time beside local disk's; its final ``fct_usage_daily`` compared with local's."""
    from c360_assets.tools import stack

    env = _bench_env(cfg)
    warehouse = env["C360_WAREHOUSE"] = f"{cfg.s3_warehouse}/bench"
    clear_warehouse(cfg, warehouse)
    reset_catalog(cfg.catalog_uri, cfg.catalog_name)
    work = _work_dir(profile, seed)
    lake = Lake.create(work / "cluster", env, cfg.catalog_name, warehouse=warehouse)
    by_name, setup = _lake_stages(
        profile, manifest, batches, lake, stack.trino_pid(cfg), _stepper(echo, "cluster: ")
    )
    snapshot = lake.root / "out" / INCREMENTAL_SNAPSHOT
    run_child("snapshot", lake, {"path": str(snapshot)})
    same, detail = same_rows(work / "long" / "out" / INCREMENTAL_SNAPSHOT, snapshot)
    local_stages = {s["name"]: s for s in local["stages"]}
    rows = []
    for name in CLUSTER_STAGE_NAMES:
        here, there = local_stages[name], by_name[name]
        rows.append(
            {
                "name": name,
                "local_seconds": here["seconds"],
                "object_store_seconds": there["seconds"],
                "ratio": round(there["seconds"] / here["seconds"], 2),
                "rows": there["rows"],
                "local_peak_rss_mb": here["peak_rss_mb"],
                "object_store_peak_rss_mb": there["peak_rss_mb"],
            }
        )
    return {
        "profile": "cluster",
        "workers": cfg.workers,
        "warehouse": warehouse,
        "stages": rows,
        "stage_details": [by_name[n] for n in CLUSTER_STAGE_NAMES],
        "same_output": same,
        "compared": detail,
        "setup": setup,
    }


def _spark_peer(step, lake, day: str, c360_day: Path) -> dict:
    """Run the peer in a fresh child (``step``) and compare its day with c360's."""
    out = lake.root / "out" / "spark_day.parquet"
    try:
        args = {"day": day, "path": str(out), "columns": list(COMPARE_COLUMNS)}
        r = step("peer spark", "spark", lake, args)
    except RuntimeError as error:
        return _failed_peer("spark", error)
    same, detail = same_rows(c360_day, out)
    return {
        "name": "spark",
        "seconds": round(r["seconds"], 2),
        "session_seconds": round(r["session_seconds"], 2),
        "peak_rss_mb": r["tree_peak_rss_mb"],
        "driver_python_peak_rss_mb": r["peak_rss_mb"],
        "process_peaks_mb": r["process_peaks_mb"],
        "same_output": same,
        "compared": detail,
        "process_seconds": r["process_seconds"],
        "compares_with": "build_day",
        "spark_conf": {k: SPARK_CONF[k] for k in ("spark.master", "spark.driver.memory")},
        "versions": r["versions"],
    }


def _failed_peer(name: str, error: Exception) -> dict:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return {
        "name": name,
        "seconds": None,
        "peak_rss_mb": None,
        "same_output": False,
        "compares_with": "build_day",
        "reason": (lines[-1] if lines else type(error).__name__)[:160],
        "error": str(error)[-2000:],
    }


def _trino_resource_for(cfg):
    from c360_assets.tools import stack

    return stack.trino_resource(cfg)


def targets(profile: Profile, stages: dict, peers: list[dict], ratios: dict) -> dict:
    """The issue's targets (set for the full profile; reported for every profile)."""
    build = stages["build_day"]
    timed_peers = [p for p in peers if p["seconds"] and p.get("compares_with") == "build_day"]
    # None = not measured: no peer of build_day finished (a failed peer is not "slower")
    faster = all(build["seconds"] < p["seconds"] for p in timed_peers) if timed_peers else None
    ingest = stages["ingest_day"]
    return {
        "ingest_and_build_day_within_30s": ingest["seconds"] + build["seconds"] <= 30,
        "ingest_and_build_day_within_6gb": max(ingest["peak_rss_mb"], build["peak_rss_mb"])
        <= 6 * 1024,
        "build_day_faster_than_every_peer": faster,
        "late_rebuild_at_most_a_tenth_of_full_refresh": ratios["late_rebuild_over_full_refresh"]
        <= 0.1,
        "late_rebuild_long_history_at_most_1_15x_short": ratios[
            "late_rebuild_long_over_short_history"
        ]
        <= 1.15,
        "trino_bi_p50_under_1s": stages["trino_bi_queries"]["p50"] < 1,
    }


# -- reporting -----------------------------------------------------------------------------------
def _verdict(value: bool | None) -> str:
    return "not measured" if value is None else "ok" if value else "MISSED"


def format_table(result: dict) -> str:
    lines = [f"c360 bench, profile {result['profile']}", ""]
    lines.append(
        f"{'stage':<18}{'seconds':>10}{'rows':>14}{'rows/s':>14}{'peak RSS MB':>13}"
        f"{'floor s':>10}{'x floor':>9}"
    )
    for s in result["stages"]:
        rps = f"{s['rows_per_second']:,}" if s["rows_per_second"] is not None else "-"
        floor = s.get("floor")
        beside = f"{floor['seconds']:>10.2f}{s['over_floor']:>9.2f}" if floor else ""
        lines.append(
            f"{s['name']:<18}{s['seconds']:>10.2f}{s['rows']:>14,}{rps:>14}"
            f"{s['peak_rss_mb']:>13,.0f}{beside}"
        )
    stages = {s["name"]: s for s in result["stages"]}
    bi = stages["trino_bi_queries"]
    lines.append(f"{'':<18}BI queries p50 {bi['p50']:.3f} s, p95 {bi['p95']:.3f} s")
    backfill = stages["backfill_10_days"]
    serial, concurrent = backfill["concurrent_runs"]
    lines.append(
        f"{'':<18}backfill of {len(backfill['runs'])} runs: one at a time {serial['seconds']:.2f}"
        f" s, two at once {concurrent['seconds']:.2f} s, speed-up {backfill['speedup']},"
        f" same_output {backfill['same_output']}"
    )
    paired = result.get("build_day_paired", {})
    if paired.get("median_seconds"):
        medians = paired["median_seconds"]
        lines.append(
            f"{'':<18}build_day and polars alternately, {len(paired['rounds'])} rounds: medians "
            f"{medians['build_day']:.2f} s and {medians['polars']:.2f} s,"
            f" same_output {paired['same_output']}"
        )
    if "cluster" in result:
        cluster = result["cluster"]
        lines += [
            "",
            f"object store (cluster profile, {cluster['workers']} Trino worker(s),"
            f" {cluster['warehouse']}) beside local disk",
            f"{'stage':<18}{'local s':>10}{'store s':>10}{'store/local':>13}",
        ]
        for row in cluster["stages"]:
            lines.append(
                f"{row['name']:<18}{row['local_seconds']:>10.2f}"
                f"{row['object_store_seconds']:>10.2f}{row['ratio']:>13.2f}"
            )
        lines.append(f"{'':<18}same_output (fct_usage_daily) {cluster['same_output']}")
    lines += ["", f"{'peer':<18}{'seconds':>10}{'peak RSS MB':>13}  same_output"]
    for p in result["peers"]:
        if p["seconds"] is None:
            status = "failed" if p.get("error") else "skipped"
            lines.append(f"{p['name']:<18}{status:>10}  {p.get('reason') or p.get('skipped', '')}")
            continue
        rss = f"{p['peak_rss_mb']:,.0f}" if p["peak_rss_mb"] is not None else "-"
        lines.append(f"{p['name']:<18}{p['seconds']:>10.2f}{rss:>13}  {p['same_output']}")
    lines += ["", "ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items())]
    lines += ["targets: " + ", ".join(f"{k} {_verdict(v)}" for k, v in result["targets"].items())]
    return "\n".join(lines)


def write_chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(s["name"], s["seconds"], s["peak_rss_mb"]) for s in result["stages"]]
    rows += [
        (f"peer: {p['name']}", p["seconds"], p["peak_rss_mb"] or 0)
        for p in result["peers"]
        if p["seconds"] is not None
    ]
    rows += [
        (f"object store: {s['name']}", s["seconds"], s["peak_rss_mb"])
        for s in result.get("cluster", {}).get("stage_details", [])
    ]
    names = [r[0] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 1.5), sharey=True)
    palette = {"peer": "#c77c2e", "object store": "#4f8a3c"}
    colors = [palette.get(n.partition(":")[0], "#3b6ea5") for n in names]
    left.barh(names, [r[1] for r in rows], color=colors)
    left.set_xlabel("seconds")
    left.invert_yaxis()
    right.barh(names, [r[2] for r in rows], color=colors)
    right.set_xlabel("peak RSS (MB)")
    machine = result["machine"]
    fig.suptitle(
        f"c360 bench, profile {result['profile']} "
        f"({machine['cpu_count']} CPUs, {machine['memory_gb']} GB)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- CLI -----------------------------------------------------------------------------------------
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--trino-heap", default="12G", help="heap of the bench stack's Trino (when it starts it)"
    )
    parser.add_argument(
        "--keep-stack", action="store_true", help="leave the bench stacks running at the end"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="then run the stages again on the cluster profile (warehouse on the object store, "
        "a Trino coordinator + workers) and report them beside local disk",
    )
    parser.add_argument(
        "--cluster-workers", type=int, default=1, help="--cluster: Trino workers (default 1)"
    )
    parser.add_argument(
        "--pair-rounds",
        type=int,
        default=0,
        help="after the peers, build_day and the Polars peer again, alternately, this many "
        "rounds on the same raw partition; their medians are reported beside the single runs",
    )
    add_history_arguments(parser)


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    """``--history-days N``: the year-long history stage alone (``bench_history``)."""
    from c360_assets.tools.bench_history import add_cli_arguments as add_history

    add_history(parser)


def run_from_args(args: argparse.Namespace) -> int:
    if args.history_days:
        from c360_assets.tools.bench_history import run_from_args as run_history

        return run_history(args)
    result = run_bench(
        PROFILES[args.profile],
        args.seed,
        args.out,
        trino_heap=args.trino_heap,
        keep_stack=args.keep_stack,
        cluster=args.cluster,
        cluster_workers=args.cluster_workers,
        pair_rounds=args.pair_rounds,
    )
    print(f"results: {args.out}" + (f", chart: {result['chart']}" if "chart" in result else ""))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2], sys.argv[3]))
    parser = argparse.ArgumentParser(prog="python -m c360_assets.tools.bench")
    add_cli_arguments(parser)
    sys.exit(run_from_args(parser.parse_args()))
