"""End to end under the real Dagster daemon: a late file is picked up by the sensors alone."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG
from c360_assets.tools.instance import dagster_home
from tests.records import event
from tests.test_usage_pipeline import facts

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 480
BUSY = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


class Daemon:
    def __init__(self, lake):
        self.lake = lake
        self.log = lake.root / "daemon.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dagster._daemon",
                    "run",
                    "-w",
                    str(REPO / "workspace.yaml"),
                ],
                cwd=REPO,
                env=dict(os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for(self, predicate, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dagster-daemon exited ({self.process.returncode}):\n{self.tail()}"
                )
            if predicate():
                return
            time.sleep(2)
        raise AssertionError(f"timed out waiting for {what}; daemon log:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-6000:]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def daily_runs(instance: dg.DagsterInstance) -> dict[str, tuple[str, str]]:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="daily_job", statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    return {r.run_id: (r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in runs}


def idle(instance: dg.DagsterInstance) -> bool:
    return not instance.get_runs(filters=dg.RunsFilter(statuses=BUSY))


@pytest.mark.stack  # starts the Dagster daemon
def test_daemon_sensors_rebuild_a_late_day(lake, monkeypatch):
    monkeypatch.setenv("C360_SENSOR_INTERVAL_SECONDS", "3")
    dagster_home()  # writes the instance settings (one run at a time) into DAGSTER_HOME
    lake.drop(
        "usage_events",
        "day1.jsonl",
        [event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T08:00:00Z", quantity=2)],
    )
    lake.drop(
        "usage_events",
        "day2.jsonl",
        [event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T08:00:00Z", quantity=3)],
    )

    daemon = Daemon(lake)
    try:
        # catch-up: the sensors alone ingest the landing zone and build both days
        daemon.wait_for(
            lambda: lake.lakehouse.table_exists("marts.fct_usage_daily") and len(facts(lake)) == 2,
            "the initial build",
        )
        daemon.wait_for(lambda: idle(lake.instance), "the run queue to drain")
        before = daily_runs(lake.instance)

        lake.drop(
            "usage_events",
            "late.jsonl",
            [event(event_id="x1", tenant_id="t1", occurred_at="2026-10-01T23:00:00Z", quantity=10)],
        )
        daemon.wait_for(
            lambda: set(daily_runs(lake.instance)) - set(before), "a sensor-launched daily run"
        )
        daemon.wait_for(lambda: idle(lake.instance), "the run queue to drain")
    finally:
        daemon.stop()
    after = daily_runs(lake.instance)
    new_ranges = {after[run_id] for run_id in set(after) - set(before)}
    assert new_ranges == {("2026-10-01", "2026-10-01")}  # the late day only
    assert facts(lake) == {
        ("2026-10-01", "t1", "fraud_score"): (2, 12),
        ("2026-10-02", "t1", "fraud_score"): (1, 3),
    }
