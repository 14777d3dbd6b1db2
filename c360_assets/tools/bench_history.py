"""``c360 bench --history-days N``: a year of daily runs with late data, with and without
maintenance.

What grows over a year of daily ``c360 run`` is metadata, not rows: every build commits a
snapshot, every late file leaves a small data file in an old partition, and the Dagster event log
that planning reads keeps every materialization. This stage measures whether a ``c360 run`` after
one late file still costs at day N what it cost at day 30, on two lakehouses fed the same files:

1. **Landing files**, generated once (``generate_landing``): ``days`` days of a small world
   (``customers`` customers, ``events_per_day`` events a day) whose usage files carry late events
   every day (``late_rate`` of each day's events arrive 1-3 days later, in the later days' files),
   with the billing and CRM files of the same days. A file is *delivered* on the day its name
   carries (monthly files on the month's first day). ``late_repeats`` extra late files per
   checkpoint (``generate_late_batch``: ``late_events`` new events dated ``late_lag`` days
   before it, each file its own events).
2. **Two lakehouses** (embedded: SQLite catalog, local warehouse, a Dagster instance with its
   SQLite storage; on a tmpfs when there is one, see ``work_dir``), each in its own process, in
   lockstep, one simulated day at a time (both lakehouses' days at once, on two cores): the
   day's files are linked into both landing zones and ``run_pipeline`` (``c360 run``) runs on
   each with the simulated clock (``now`` = the next day, 01:00 UTC). The *maintained* one also
   runs table maintenance every ``maintain_every`` days (``lib/maintenance.maintain`` with the
   roles and leases of the maintenance job, keeping the snapshots of the last ``keep_days``
   *simulated* days: the cutoff is the wall-clock time at which that simulated day began, since
   snapshots carry wall-clock timestamps).
3. **Checkpoints** (after the day's run and maintenance, one lakehouse at a time, the other
   idle): the catalog's figures (snapshots, metadata files, data files referenced and current,
   files on disk, the Dagster home's bytes), then each late file in turn dropped and
   ``c360 run`` timed; its planning (``touched`` of both stages from the cursors the run
   started with) is replanned after it and timed apart. The point is the median of those runs
   (each run's seconds and the 1-minute load average before it are kept in ``repeats``).
4. At the end, every ``marts`` table of the two lakehouses is compared, all columns, as
   multisets of rows: maintenance must change no row.

The result is a JSON file and a table on stdout. Each day's ``c360 run`` is timed too (the
``daily`` series), so the trend between checkpoints is visible.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import re
import shutil
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VARIANTS = ("plain", "maintained")
MARTS = "marts"
USAGE_MART = "marts.fct_usage_daily"
# a delivered file's day: the first date in its name (a month: its first day)
DELIVERY = re.compile(r"_(\d{4}-\d{2})(-\d{2})?(?=[_.])")
RUN_HOUR = 1  # the simulated clock of a day's run: the next day, 01:00 UTC
MEMORY_FS = Path("/dev/shm")
MEMORY_FS_MIN_FREE = 8 << 30  # a year without maintenance keeps every metadata file


@dataclass(frozen=True)
class HistoryPlan:
    days: int = 365
    customers: int = 30
    events_per_day: int = 300
    maintain_every: int = 7
    keep_days: int = 7  # simulated days of snapshots maintenance keeps
    checkpoints: tuple[int, ...] = (30, 365)  # day numbers (1 = the first day) measured after
    late_events: int = 100  # new events in each checkpoint's late file
    # late files per checkpoint, each run and timed in turn: the median is reported, so one run
    # slowed by something else on the machine does not make a point of the curve
    late_repeats: int = 3
    late_lag: int = 2  # days between the late file's events and its delivery
    late_rate: float = 0.05  # share of each day's events delivered 1-3 days later
    seed: int = 7
    start: dt.date = dt.date(2025, 1, 1)
    # the lakehouses simulated: both (the plain one is the control), or one of them alone (a
    # year of the maintained one takes an hour on one core; beside the plain one, whose days
    # slow down linearly, it takes four)
    variants: tuple[str, ...] = VARIANTS

    def __post_init__(self) -> None:
        if self.days < 1 or self.maintain_every < 1 or self.keep_days < 0:
            raise ValueError("days and maintain_every must be >= 1, keep_days >= 0")
        # in VARIANTS' order: compare_marts takes the plain lakehouse's marts first
        if not self.variants or self.variants != tuple(v for v in VARIANTS if v in self.variants):
            raise ValueError(f"variants: one or both of {VARIANTS}, in that order")
        if self.late_repeats < 1 or not self.checkpoints:
            raise ValueError("at least one checkpoint and one late file per checkpoint")
        if len(self.checkpoints) * self.late_repeats > 63:  # one late batch number each
            raise ValueError("at most 63 late files (checkpoints x late_repeats)")
        for day in self.checkpoints:
            if not self.late_lag < day <= self.days:
                raise ValueError(f"checkpoint {day} is not in {self.late_lag + 1}..{self.days}")

    def date(self, day_no: int) -> dt.date:
        return self.start + dt.timedelta(days=day_no - 1)

    def generator_args(self) -> dict:
        return {
            "customers": self.customers,
            "start": self.start,
            "days": self.days,
            "events_per_day": self.events_per_day,
            "seed": self.seed,
            "progress": False,
            "options": self.options(),
        }

    def options(self):
        from c360_assets.tools.generate import GenerateOptions

        return GenerateOptions(late_rate=self.late_rate, max_late_days=3, events_per_file=1000)


# -- landing files ---------------------------------------------------------------------------------
def delivery_day(path: Path) -> dt.date:
    found = DELIVERY.search(path.name)
    if found is None:
        raise ValueError(f"{path.name}: no delivery date in the name")
    return dt.date.fromisoformat(found.group(1) + (found.group(2) or "-01"))


def generate_files(plan: HistoryPlan, root: Path) -> dict:
    """The daily files under ``root/daily`` and each checkpoint's late files under
    ``root/late-<day>-<repeat>``; returns the generators' usage figures."""
    from c360_assets.tools.generate import generate_landing, generate_late_batch

    summary = generate_landing(root / "daily", **plan.generator_args())
    late = {}
    batch = 0
    for day_no in plan.checkpoints:
        arrival = plan.date(day_no)
        for repeat in range(1, plan.late_repeats + 1):
            batch += 1
            found = generate_late_batch(
                root / late_folder(day_no, repeat),
                events_per_origin_day=plan.late_events,
                origin_days=[arrival - dt.timedelta(days=plan.late_lag)],
                arrival_day=arrival,
                batch=batch,
                **plan.generator_args(),
            )
            late[f"{day_no}-{repeat}"] = {
                "lines": found["lines"],
                "origin_days": found["origin_days"],
            }
    usage = summary["usage"]
    return {
        "files": sum(summary["files"].values()),
        "usage_lines": usage["lines"],
        "late_events": usage["late_events"],
        "late_files": late,
        "seconds": summary["seconds"]["total"],
    }


def late_folder(day_no: int, repeat: int) -> str:
    return f"late-{day_no}-{repeat}"


def files_by_day(plan: HistoryPlan, folder: Path) -> dict[int, list[Path]]:
    """Day number -> the files delivered that day (a file dated before the first day comes on
    the first day; none is dated after the last, the generator keeps to its window)."""
    found: dict[int, list[Path]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        day_no = max(1, (delivery_day(path) - plan.start).days + 1)
        if day_no > plan.days:
            raise ValueError(f"{path.name} is dated after the simulated window")
        found.setdefault(day_no, []).append(path)
    return found


def link(files: Iterable[Path], source: Path, landing: Path) -> None:
    for path in files:
        target = landing / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)


# -- one lakehouse ---------------------------------------------------------------------------------
@dataclass
class SimLake:
    """An embedded c360 deployment driven in this process (its resources passed explicitly,
    never read from the environment, so two live side by side)."""

    name: str
    root: Path
    maintained: bool
    in_memory: bool = False
    day_started: dict[int, float] = field(default_factory=dict)  # day number -> wall clock

    def __post_init__(self) -> None:
        import dagster as dg

        from c360_assets.definitions import build_definitions
        from resources.lakehouse import LakehouseResource

        for sub in ("landing", "warehouse", "dagster_home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.lakehouse = LakehouseResource(
            catalog_uri=f"sqlite:///{self.root / 'catalog.db'}",
            warehouse=str(self.root / "warehouse"),
            catalog_name="c360",
            landing_dir=str(self.root / "landing"),
        )
        self.defs = build_definitions(self.lakehouse)
        home = str(self.root / "dagster_home")
        self.instance = (
            dg.DagsterInstance.ephemeral()
            if self.in_memory
            else dg.DagsterInstance.local_temp(home)
        )

    @property
    def landing(self) -> Path:
        return self.lakehouse.landing_path

    def run(self, now: dt.datetime) -> dict:
        from c360_assets.definitions import all_models
        from c360_assets.tools.runner import run_pipeline

        t0, cpu0 = time.perf_counter(), time.process_time()
        report = run_pipeline(self.defs, self.instance, all_models(), now=now)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if not report.ok:
            raise RuntimeError(f"{self.name}: c360 run failed: {report}")
        return {
            "seconds": round(seconds, 3),
            # this process's CPU time (all its threads): what the run cost, whatever else ran
            "cpu_seconds": round(cpu, 3),
            "rebuilt": report.rebuilt,
            "runs": len(report.runs),
            "run_seconds": report.seconds,  # each Dagster run: where a slower day's time went
        }

    def cursors(self) -> dict[str, dict[str, int]]:
        from c360_assets.defs.automation.jobs import STAGES
        from c360_assets.lib.plan import load_cursor

        return {stage: load_cursor(self.instance, stage) for stage in STAGES}

    def plan_seconds(self, cursors: dict[str, dict[str, int]], now: dt.datetime) -> float:
        """Time ``touched`` of every stage from ``cursors`` (what the run's planning did)."""
        from c360_assets.definitions import all_models
        from c360_assets.defs.automation.jobs import touched

        models = all_models()
        t0 = time.perf_counter()
        for stage, cursor in cursors.items():
            touched(self.instance, models, stage, cursor, now)
        return round(time.perf_counter() - t0, 3)

    def maintain(self, cutoff: float | None) -> dict:
        """Maintenance as the job runs it, keeping the snapshots committed after ``cutoff``
        (None: only the ones something needs)."""
        from c360_assets.definitions import all_models
        from c360_assets.defs.automation.maintenance import table_roles, watermark_leases
        from c360_assets.lib.maintenance import Policy, maintain

        models = all_models()
        report = maintain(
            self.lakehouse,
            table_roles(models),
            Policy(keep_days=0, min_file_age=dt.timedelta(0)),
            now=None if cutoff is None else dt.datetime.fromtimestamp(cutoff, dt.UTC),
            watermark_leases=watermark_leases(models),
        )
        return {
            "seconds": round(report.seconds, 3),
            "partitions_compacted": sum(len(e.compacted) for e in report.tables),
            "snapshots_expired": sum(e.expired for e in report.tables),
            "orphan_files_removed": sum(e.orphans_removed for e in report.tables),
        }

    def catalog_figures(self) -> dict[str, Any]:
        """Snapshots, metadata and data files of every table, files on disk, instance bytes."""
        from c360_assets.lib.maintenance import catalog_tables
        from c360_assets.lib.tablestats import TableStats, table_files

        totals = {"tables": 0, "snapshots": 0, "metadata_files": 0, "data_files": 0}
        totals["current_data_files"] = 0
        per_table = {}
        for identifier in catalog_tables(self.lakehouse):
            stats = TableStats.of(table_files(self.lakehouse.load(identifier)))
            per_table[identifier] = {
                "snapshots": stats.snapshots,
                "data_files": stats.data_files,
                "current_data_files": stats.current_data_files,
            }
            totals["tables"] += 1
            totals["snapshots"] += stats.snapshots
            totals["metadata_files"] += stats.metadata_files
            totals["data_files"] += stats.data_files
            totals["current_data_files"] += stats.current_data_files
        warehouse = [p for p in (self.root / "warehouse").rglob("*") if p.is_file()]
        home = [p for p in (self.root / "dagster_home").rglob("*") if p.is_file()]
        return {
            **totals,
            "warehouse_files": len(warehouse),
            "warehouse_bytes": sum(p.stat().st_size for p in warehouse),
            "dagster_home_bytes": sum(p.stat().st_size for p in home),
            "per_table": per_table,
        }

    def marts(self) -> dict[str, Any]:
        """Every table of the marts namespace, all rows (Arrow)."""
        from c360_assets.lib.maintenance import catalog_tables

        return {
            identifier: self.lakehouse.scan(identifier)
            for identifier in catalog_tables(self.lakehouse)
            if identifier.startswith(f"{MARTS}.")
        }

    def close(self) -> None:
        self.instance.dispose()


def equal_tables(left, right) -> dict[str, int]:
    """Rows only on one side of two Arrow tables (all columns, as multisets)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("left_rows", left)
        con.register("right_rows", right)
        cols = ", ".join(f'"{c}"' for c in left.column_names)
        only = {}
        for name, a, b in (("only_plain", "left", "right"), ("only_maintained", "right", "left")):
            query = (
                f"select count(*) from (select {cols} from {a}_rows "
                f"except all select {cols} from {b}_rows)"
            )
            only[name] = con.sql(query).fetchall()[0][0]
        return {"rows": left.num_rows, **only}
    finally:
        con.close()


def compare_marts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Each marts table of the plain lakehouse (``left``) against the maintained one's."""
    if left.keys() != right.keys():
        raise RuntimeError(f"the lakehouses hold other marts: {sorted(left ^ right.keys())}")
    return {name: equal_tables(left[name], right[name]) for name in sorted(left)}


# -- the simulation --------------------------------------------------------------------------------
def run_clock(plan: HistoryPlan, day_no: int) -> dt.datetime:
    """The simulated clock of day ``day_no``'s runs: the next day, 01:00 UTC."""
    day = plan.date(day_no) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(RUN_HOUR), dt.UTC)


def maintenance_cutoff(started: dict[int, float], plan: HistoryPlan, day_no: int) -> float | None:
    """The wall-clock time at which the simulated day ``day_no + 1 - keep_days`` began: the
    snapshots committed before it are older than ``keep_days`` simulated days. None with
    ``keep_days`` 0: the clock when the expiry runs (after the compaction's own commits)."""
    if plan.keep_days == 0:
        return None
    return started[max(1, day_no + 1 - plan.keep_days)]


class Simulation:
    """One lakehouse's side of the simulation: a simulated day, a checkpoint, its marts."""

    def __init__(self, plan: HistoryPlan, lake: SimLake, files: Path):
        self.plan, self.lake, self.files = plan, lake, files

    def day(self, day_no: int, delivered: list[Path]) -> dict:
        lake = self.lake
        lake.day_started[day_no] = time.time()
        link(delivered, self.files / "daily", lake.landing)
        found: dict[str, Any] = {"seconds": lake.run(run_clock(self.plan, day_no))["seconds"]}
        if lake.maintained and day_no % self.plan.maintain_every == 0:
            cutoff = maintenance_cutoff(lake.day_started, self.plan, day_no)
            found["maintenance"] = lake.maintain(cutoff)
        return found

    def checkpoint(self, day_no: int) -> dict:
        """The catalog's figures, then each late file in turn with a timed ``c360 run``; the
        median of their seconds (and of their planning) is the point's ``late_run``."""
        lake, now = self.lake, run_clock(self.plan, day_no)
        figures = lake.catalog_figures()
        runs = []
        for repeat in range(1, self.plan.late_repeats + 1):
            late_root = self.files / late_folder(day_no, repeat)
            cursors = lake.cursors()
            link(sorted(p for p in late_root.rglob("*") if p.is_file()), late_root, lake.landing)
            load = os.getloadavg()[0]
            run = lake.run(now)
            run["plan_seconds"] = lake.plan_seconds(cursors, now)
            run["load_average_1m"] = round(load, 2)
            runs.append(run)
        late_run = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "plan_seconds": statistics.median(r["plan_seconds"] for r in runs),
            "rebuilt": runs[0]["rebuilt"],
            "repeats": runs,
        }
        return {"catalog": figures, "late_run": late_run}

    def marts(self) -> dict[str, Any]:
        return self.lake.marts()

    def close(self) -> None:
        self.lake.close()


class InProcess:
    """A simulation side run in this process (tests): each call runs when it is sent."""

    def __init__(self, plan: HistoryPlan, name: str, root: Path, files: Path, in_memory: bool):
        lake = SimLake(name, root, maintained=name == "maintained", in_memory=in_memory)
        self.sim = Simulation(plan, lake, files)
        self.result: Any = None

    def send(self, method: str, *args: Any) -> None:
        self.result = getattr(self.sim, method)(*args)

    def receive(self) -> Any:
        return self.result


def _serve(conn, plan: HistoryPlan, name: str, root: Path, files: Path, in_memory: bool) -> None:
    """A worker process: one simulation side, driven by (method, args) messages."""
    from c360_assets.lib.partitions import FIRST_DAY_ENV

    os.environ[FIRST_DAY_ENV] = plan.start.isoformat()
    side = InProcess(plan, name, root, files, in_memory)
    while True:
        method, args = conn.recv()
        if method == "stop":
            side.sim.close()
            return
        try:
            side.send(method, *args)
            conn.send(("ok", side.receive()))
        except Exception:  # the driver raises it with the worker's traceback
            conn.send(("error", traceback.format_exc()))


class Worker:
    """A simulation side in its own process: the two lakehouses' days run at once on two
    cores; the checkpoints are measured one lakehouse at a time."""

    def __init__(self, plan: HistoryPlan, name: str, root: Path, files: Path, in_memory: bool):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.name = name
        self.process = context.Process(
            target=_serve, args=(child, plan, name, root, files, in_memory), name=name
        )
        self.process.start()

    def send(self, method: str, *args: Any) -> None:
        self.conn.send((method, args))

    def receive(self) -> Any:
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"history ({self.name}): its process ended") from None
        if status != "ok":
            raise RuntimeError(f"history ({self.name}) failed:\n{value}")
        return value

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):  # it died meanwhile: nothing to stop
                self.conn.send(("stop", ()))
        self.process.join()


def simulate(
    plan: HistoryPlan,
    work: Path,
    echo: Callable[[str], None] = print,
    in_memory: bool = False,
    parallel: bool = True,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """Generate the files, run both lakehouses through ``plan.days`` days, measure the
    checkpoints, compare the marts. ``parallel``: each lakehouse in its own process (its days
    run at the same time as the other's); otherwise both in this process, one after the other,
    which needs ``C360_FIRST_DAY`` set to ``plan.start`` by the caller. ``in_memory``: the Dagster
    instances keep their storage in memory (tests). ``progress`` gets the result so far after
    each checkpoint (``complete`` false, no marts yet), so a run stopped early keeps them."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    files = work / "files"
    generated = generate_files(plan, files)
    echo(
        f"history: {generated['files']} files, {generated['usage_lines']:,} usage lines "
        f"({generated['late_events']:,} late events) in {generated['seconds']:.1f} s"
    )
    delivered = files_by_day(plan, files / "daily")
    side = Worker if parallel else InProcess
    sides = [side(plan, name, work / name, files, in_memory) for name in plan.variants]
    daily: list[dict] = []
    checkpoints: list[dict] = []
    try:
        for day_no in range(1, plan.days + 1):
            for each in sides:
                each.send("day", day_no, delivered.get(day_no, []))
            entry: dict[str, Any] = {"day": day_no, "date": plan.date(day_no).isoformat()}
            entry.update(zip(plan.variants, (each.receive() for each in sides), strict=True))
            daily.append(entry)
            if day_no in plan.checkpoints:
                point: dict[str, Any] = {"day": day_no, "date": plan.date(day_no).isoformat()}
                for name, each in zip(plan.variants, sides, strict=True):
                    each.send("checkpoint", day_no)  # one at a time: the other side is idle
                    point[name] = each.receive()
                    echo(_checkpoint_line(day_no, name, point[name]))
                checkpoints.append(point)
                if progress is not None:
                    progress(
                        {
                            **_so_far(plan, parallel, generated, checkpoints, daily),
                            "complete": False,
                            "total_seconds": round(time.perf_counter() - t_start, 1),
                        }
                    )
            elif day_no % 10 == 0:
                seconds = " / ".join(f"{entry[n]['seconds']:.1f}" for n in plan.variants)
                echo(
                    f"history: day {day_no}/{plan.days}: c360 run {seconds} s "
                    f"({' / '.join(plan.variants)}), {time.perf_counter() - t_start:.0f} s so far"
                )
        for each in sides:
            each.send("marts")
        found = [each.receive() for each in sides]
    finally:
        for each in sides:
            if isinstance(each, Worker):
                each.close()
            else:
                each.sim.close()
    equal: bool | None = None  # one lakehouse alone: its marts' row counts, nothing to compare
    if len(found) == 2:
        marts = compare_marts(*found)
        same = all(m["only_plain"] == 0 == m["only_maintained"] for m in marts.values())
        equal = same and marts[USAGE_MART]["rows"] > 0
    else:
        marts = {name: {"rows": table.num_rows} for name, table in sorted(found[0].items())}
    return {
        **_so_far(plan, parallel, generated, checkpoints, daily),
        "complete": True,
        "marts": marts,
        "marts_equal": equal,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }


def _so_far(
    plan: HistoryPlan, parallel: bool, generated: dict, checkpoints: list[dict], daily: list[dict]
) -> dict:
    return {
        "stage": "history",
        "plan": {**asdict(plan), "start": plan.start.isoformat()},
        "parallel": parallel,
        "generated": generated,
        "checkpoints": checkpoints,
        "daily": daily,
        "ratios": _ratios(checkpoints),
    }


def _checkpoint_line(day_no: int, name: str, found: dict) -> str:
    run, figures = found["late_run"], found["catalog"]
    return (
        f"history: day {day_no} ({name}): c360 run after a late file {run['seconds']:.2f} s "
        f"(planning {run['plan_seconds']:.2f} s); {figures['snapshots']:,} snapshots, "
        f"{figures['metadata_files']:,} metadata files, {figures['data_files']:,} data files "
        f"({figures['current_data_files']:,} current)"
    )


def _ratios(checkpoints: list[dict]) -> dict[str, float]:
    """Late run and planning at the last checkpoint over the first, per lakehouse."""
    if len(checkpoints) < 2:
        return {}
    first, last = checkpoints[0], checkpoints[-1]
    ratios = {}
    for name in (n for n in VARIANTS if n in first):  # the lakehouses simulated
        labels = {"seconds": "late_run", "cpu_seconds": "late_run_cpu", "plan_seconds": "planning"}
        for key, label in labels.items():
            a, b = first[name]["late_run"][key], last[name]["late_run"][key]
            ratios[f"{name}_{label}_day{last['day']}_over_day{first['day']}"] = (
                round(b / a, 2) if a else float("nan")
            )
    return ratios


# -- reporting and the command line ----------------------------------------------------------------
def format_table(result: dict) -> str:
    plan = result["plan"]
    lines = [
        f"c360 bench --history-days {plan['days']} (maintenance every {plan['maintain_every']} "
        f"days, keeping {plan['keep_days']}): {result['total_seconds']:.0f} s",
        "",
        f"{'day':>5} {'lakehouse':<11}{'late run s':>11}{'cpu s':>8}{'planning s':>11}"
        f"{'snapshots':>11}"
        f"{'metadata':>10}{'data files':>11}{'current':>9}{'disk files':>11}",
    ]
    for point in result["checkpoints"]:
        for name in result["plan"]["variants"]:
            run, cat = point[name]["late_run"], point[name]["catalog"]
            lines.append(
                f"{point['day']:>5} {name:<11}{run['seconds']:>11.2f}{run['cpu_seconds']:>8.2f}"
                f"{run['plan_seconds']:>11.2f}{cat['snapshots']:>11,}{cat['metadata_files']:>10,}{cat['data_files']:>11,}"
                f"{cat['current_data_files']:>9,}{cat['warehouse_files']:>11,}"
            )
    lines += ["", "ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items())]
    if result["marts_equal"] is not None:
        lines.append(f"marts equal with and without maintenance: {result['marts_equal']}")
    return "\n".join(lines)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """The history stage's flags of ``c360 bench``."""
    parser.add_argument(
        "--history-days",
        type=int,
        help="run only the history stage: this many simulated days of daily runs with late data",
    )
    parser.add_argument(
        "--maintain-every", type=int, default=7, help="history: maintenance every N days"
    )
    parser.add_argument(
        "--history-keep-days",
        type=int,
        default=7,
        help="history: simulated days of snapshots maintenance keeps (c360 maintain --keep-days)",
    )
    parser.add_argument(
        "--history-variants",
        default=",".join(VARIANTS),
        help="history: the lakehouses simulated, comma-separated (plain, maintained)",
    )
    parser.add_argument(
        "--history-checkpoints",
        default="30",
        help="history: comma-separated days measured (the last day is always measured)",
    )


def plan_from_args(args: argparse.Namespace) -> HistoryPlan:
    days = args.history_days
    wanted = {int(d) for d in args.history_checkpoints.split(",") if d.strip()}
    checkpoints = tuple(sorted({d for d in wanted if d < days} | {days}))
    named = {v.strip() for v in args.history_variants.split(",") if v.strip()}
    if named - set(VARIANTS):
        raise ValueError(f"--history-variants: one or both of {', '.join(VARIANTS)}")
    return HistoryPlan(
        days=days,
        maintain_every=args.maintain_every,
        keep_days=args.history_keep_days,
        checkpoints=checkpoints,
        seed=args.seed,
        variants=tuple(v for v in VARIANTS if v in named),
    )


def work_dir(plan: HistoryPlan) -> Path:
    """Where the two lakehouses live: ``C360_BENCH_HISTORY_DIR``, else a tmpfs when the machine
    has one (every Iceberg commit and Dagster event is a SQLite commit; on a disk each waits for a
    flush, which is not what this stage measures), else the temporary directory."""
    name = f"c360-bench-history-{plan.days}-{plan.seed}"
    if os.environ.get("C360_BENCH_HISTORY_DIR"):
        return Path(os.environ["C360_BENCH_HISTORY_DIR"]) / name
    if MEMORY_FS.is_dir() and shutil.disk_usage(MEMORY_FS).free > MEMORY_FS_MIN_FREE:
        return MEMORY_FS / name
    return Path(tempfile.gettempdir()) / name


def run_from_args(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    work = work_dir(plan)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write(result: dict) -> None:  # after each checkpoint, then complete
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")

    try:
        result = simulate(plan, work, progress=write)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a year of metadata, maybe in memory
    write(result)
    print(format_table(result))
    print(f"results: {args.out}")
    return 1 if result["marts_equal"] is False else 0
