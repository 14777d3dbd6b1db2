"""Runs at once on one lakehouse (CONTRACT section 4): any number of `c360 run`, a run killed with
SIGKILL at any moment, and a `c360 run` beside the daemon's sensor-launched runs all end in exactly
the rows that one run gives, raw and quarantine included.

Every run here is a real `c360 run` process on one landing zone, catalog and Dagster home: the
embedded SQLite catalog, and the stack's PostgreSQL catalog. They run for minutes together, so
the module is in the `stack` tier.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from c360_assets.definitions import build_definitions
from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG, daily_partitions
from c360_assets.tools.generate import generate_landing
from c360_assets.tools.instance import dagster_home
from resources.lakehouse import LakehouseResource
from tests.daemon import Daemon, idle, launch_backfill
from tests.stack_fixture import StackHandle

pytestmark = pytest.mark.stack  # several c360 processes at once, for minutes

# columns that say when a row was loaded, not what it holds
LOAD_TIME = {"_ingested_at", "ingested_at", "detected_at", "batch_id", "file_mtime_ns"}
TIMEOUT_S = 600


@dataclass
class Run:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()[-3000:]


class Lakehouse:
    """One lakehouse (catalog, warehouse, Dagster home) over the shared landing zone."""

    def __init__(self, root: Path, landing: Path, catalog_uri: str, catalog_name: str):
        self.root = root
        self.env = {
            **os.environ,
            "C360_LANDING_DIR": str(landing),
            "C360_WAREHOUSE": str(root / "warehouse"),
            "C360_CATALOG_URI": catalog_uri,
            "C360_CATALOG_NAME": catalog_name,
            "DAGSTER_HOME": str(root / "dagster_home"),
            # a killed holder's leases end within seconds, not the default minute
            "C360_LEASE_TTL_SECONDS": "4",
        }
        self.resource = LakehouseResource(
            catalog_uri=catalog_uri,
            warehouse=str(root / "warehouse"),
            catalog_name=catalog_name,
            landing_dir=str(landing),
        )
        self.count = 0

    def start(self) -> Run:
        """A `c360 run` process, its output in ``run-<n>.log``."""
        self.count += 1
        log = self.root / f"run-{self.count}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "c360_assets.tools.cli", "run", "--quiet"],
                cwd=self.root,  # not the repo: a developer's .env there is not the test's
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return Run(process, log)

    def run(self) -> None:
        run = self.start()
        assert run.process.wait(TIMEOUT_S) == 0, run.output()

    def rows(self) -> dict[str, list[tuple]]:
        """Every table of the catalog: its rows as sorted tuples, load-time columns left out."""
        catalog = self.resource.catalog
        found = {}
        for namespace in ("raw", "staging", "core", "marts"):
            for identifier in catalog.list_tables(namespace):
                name = ".".join(identifier)
                table = self.resource.scan(name)
                columns = [c for c in table.column_names if c not in LOAD_TIME]
                found[name] = sorted(
                    tuple(repr(row[c]) for c in columns)
                    for row in table.select(columns).to_pylist()
                )
        return found

    def lease_names(self) -> list[str]:
        return [row["name"] for row in self.resource.leases.held()]

    def started_runs(self) -> list[str]:
        with dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"]) as instance:
            runs = instance.get_runs(
                filters=dg.RunsFilter(
                    statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]
                )
            )
        return [run.run_id for run in runs]


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """A small generated landing zone with re-deliveries, late and malformed events."""
    root = tmp_path_factory.mktemp("landing")
    generate_landing(
        root, customers=40, start=dt.date(2026, 10, 1), days=6, events_per_day=400, progress=False
    )
    return root


@pytest.fixture(scope="module")
def expected(landing, tmp_path_factory) -> dict[str, list[tuple]]:
    """What one `c360 run` alone gives (embedded catalog)."""
    root = tmp_path_factory.mktemp("alone")
    alone = Lakehouse(root, landing, f"sqlite:///{root / 'catalog.db'}", "c360")
    alone.run()
    rows = alone.rows()
    # the landing zone's malformed lines are in quarantine once each (rows in = accepted + kept)
    assert len(rows["raw.quarantine"]) == 2
    assert len(rows["raw.landing_files"]) == 26
    return rows


def _postgres(stack: StackHandle, root: Path, landing: Path) -> Lakehouse:
    """A lakehouse with its own catalog name in the stack's PostgreSQL catalog database."""
    return Lakehouse(root, landing, stack.catalog_uri, f"conc_{uuid.uuid4().hex[:8]}")


def _all_at_once(lake: Lakehouse, count: int) -> None:
    runs = [lake.start() for _ in range(count)]
    codes = [run.process.wait(TIMEOUT_S) for run in runs]
    assert codes == [0] * count, [run.output() for run in runs]


def test_three_runs_at_once_on_the_embedded_catalog(landing, expected, tmp_path):
    lake = Lakehouse(tmp_path, landing, f"sqlite:///{tmp_path / 'catalog.db'}", "c360")
    _all_at_once(lake, 3)
    assert lake.rows() == expected
    assert lake.lease_names() == []  # every lease released
    assert lake.started_runs() == []


def test_three_runs_at_once_on_the_postgres_catalog(trino_stack, landing, expected, tmp_path):
    lake = _postgres(trino_stack, tmp_path, landing)
    _all_at_once(lake, 3)
    assert lake.rows() == expected
    assert lake.lease_names() == []


def _kill_when(lake: Lakehouse, moment: Callable[[Lakehouse], bool], what: str) -> None:
    """Start a run, SIGKILL it at ``moment`` (polled), check it was caught there."""
    run = lake.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not moment(lake):
        assert run.process.poll() is None, f"the run ended before {what}:\n{run.output()}"
        assert time.monotonic() < deadline, f"never reached {what}"
        time.sleep(0.02)
    run.process.send_signal(signal.SIGKILL)
    assert run.process.wait(60) == -signal.SIGKILL


def _holding(prefix: str) -> Callable[[Lakehouse], bool]:
    return lambda lake: any(name.startswith(prefix) for name in lake.lease_names())


@pytest.mark.parametrize(
    "moment",
    [
        "ingest/usage_events",  # validating the usage files, or committing them
        "ingest/crm_accounts",  # after usage and billing landed, before CRM
        "marts.fct_usage_daily/",  # building the first days
        "marts.fct_customer_month/",  # building the months
    ],
)
def test_a_run_killed_at_any_moment_is_finished_by_the_next(
    trino_stack, landing, expected, tmp_path, moment
):
    lake = _postgres(trino_stack, tmp_path, landing)
    _kill_when(lake, _holding(moment), f"holding {moment}")
    lake.run()  # waits for the dead run's leases to expire, then finishes its work
    assert lake.rows() == expected
    # the dead process's Dagster runs no longer count as started (the run queue stays free)
    assert lake.started_runs() == []


def _backfill(instance: dg.DagsterInstance, defs: dg.Definitions, days: list[str]) -> str:
    """Launch a backfill of the daily assets for ``days``, as the UI's "Materialize" does."""
    graph = defs.resolve_asset_graph()
    daily = [
        key
        for key in graph.materializable_asset_keys
        if graph.get(key).partitions_def == daily_partitions()
    ]
    return launch_backfill(instance, defs, daily, days)


FACTS = dg.AssetKey("fct_usage_daily")


def _backfill_runs(
    instance: dg.DagsterInstance, backfill_id: str, status: dg.DagsterRunStatus
) -> list[dg.DagsterRun]:
    """The backfill's runs of the daily facts in ``status``."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}, statuses=[status])
    )
    return [run for run in runs if FACTS in (run.asset_selection or ())]


def test_a_run_beside_the_sensors_and_a_backfill_in_concurrent_runs(
    landing, expected, tmp_path, monkeypatch
):
    lake = Lakehouse(tmp_path, landing, f"sqlite:///{tmp_path / 'catalog.db'}", "c360")
    env = {**lake.env, "C360_SENSOR_INTERVAL_SECONDS": "3"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dagster_home()  # c360's instance settings: a run queue of several runs at once
    with dg.DagsterInstance.get() as instance:
        daemon = Daemon(tmp_path, env)
        try:
            # the sensors find the landing zone while a `c360 run` ingests and builds it
            run = lake.start()
            assert run.process.wait(TIMEOUT_S) == 0, run.output()
            daemon.wait_for(lambda: idle(instance) and lake.rows() == expected, "the same rows")
            sensor_runs = instance.get_runs(filters=dg.RunsFilter(job_name="ingest_job"))
            assert any(r.tags.get("dagster/sensor_name") for r in sensor_runs)

            # a backfill of the six days: runs of up to 5 partitions, launched together. The
            # first partition each run builds is held here, so neither can finish before both
            # are started: the run queue must run them at the same time
            held = [f"marts.fct_usage_daily/2026-10-0{d}" for d in (1, 6)]
            days = [f"2026-10-0{d}" for d in range(1, 7)]
            with ExitStack() as holding:
                for name in held:
                    holding.enter_context(lake.resource.leases.hold(name))
                backfill_id = _backfill(instance, build_definitions(), days)
                daemon.wait_for(
                    lambda: (
                        len(_backfill_runs(instance, backfill_id, dg.DagsterRunStatus.STARTED)) == 2
                    ),
                    "both runs of the facts started at once",
                )
            daemon.wait_for(
                lambda: (
                    instance.get_backfill(backfill_id).status != BulkActionStatus.REQUESTED
                    and idle(instance)
                ),
                "the backfill",
            )
        finally:
            daemon.stop()
        assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
        records = instance.get_run_records(
            filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})
        )
        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        # the six days of the facts: two runs (5 + 1 partitions) that ran at the same time;
        # the backfill then reaches usage_anomalies over every day whose baseline they change
        facts = [r for r in records if FACTS in r.dagster_run.asset_selection]
        ranges = sorted(
            (r.dagster_run.tags[RANGE_START_TAG], r.dagster_run.tags[RANGE_END_TAG]) for r in facts
        )
        assert ranges == [("2026-10-01", "2026-10-05"), ("2026-10-06", "2026-10-06")]
        anomalies = [
            r for r in records if dg.AssetKey("usage_anomalies") in r.dagster_run.asset_selection
        ]
        assert anomalies
    assert lake.rows() == expected  # as one run gives: nothing lost or doubled
