"""End to end under the real Dagster daemon: a late file is picked up by the sensors alone."""

import dagster as dg
import pytest

from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG
from c360_assets.tools.instance import dagster_home
from tests.daemon import Daemon, idle
from tests.records import event
from tests.test_usage_pipeline import facts


def daily_runs(instance: dg.DagsterInstance) -> dict[str, tuple[str, str]]:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="daily_job", statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    return {r.run_id: (r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in runs}


@pytest.mark.stack  # starts the Dagster daemon
def test_daemon_sensors_rebuild_a_late_day(lake, monkeypatch):
    monkeypatch.setenv("C360_SENSOR_INTERVAL_SECONDS", "3")
    dagster_home()  # writes c360's instance settings into DAGSTER_HOME
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

    daemon = Daemon(lake.root)
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
