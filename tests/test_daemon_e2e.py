"""End to end under the real Dagster daemon: after `c360 run` the sensors launch nothing; a late
file is picked up by the sensors alone and exactly its day is rebuilt; a backfill of one asset,
launched as the UI launches it, reaches the assets below it through the sensors."""

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.scheduler.instigation import InstigatorType

from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG
from c360_assets.tools.instance import dagster_home
from tests.daemon import Daemon, idle, launch_backfill
from tests.records import event
from tests.test_usage_pipeline import facts

pytestmark = pytest.mark.stack  # starts the Dagster daemon
SENSORS = {
    "landing_sensor",
    "refresh_sensor",
    "daily_partitions_sensor",
    "monthly_partitions_sensor",
}


def runs_of(instance: dg.DagsterInstance, job: str, since: set[str]) -> dict[str, tuple]:
    """Successful runs of ``job`` not in ``since``: run id -> (range start, end, assets)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    return {
        r.run_id: (
            r.tags.get(RANGE_START_TAG),
            r.tags.get(RANGE_END_TAG),
            tuple(sorted(k.to_user_string() for k in r.asset_selection or ())),
        )
        for r in runs
        if r.run_id not in since
    }


def ticks(instance: dg.DagsterInstance) -> dict[str, int]:
    """Ticks each sensor has finished."""
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return {
        s.instigator_name: len(instance.get_ticks(s.instigator_origin_id, s.selector_id))
        for s in states
    }


def ticked(instance: dg.DagsterInstance, since: dict[str, int], more: int = 2) -> bool:
    """Whether every sensor has finished ``more`` ticks after the counts ``since``."""
    now = ticks(instance)
    return all(now.get(name, 0) >= since.get(name, 0) + more for name in SENSORS)


def done(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    """The backfill has ended and no run is queued or in progress."""
    status = instance.get_backfill(backfill_id).status
    return status != BulkActionStatus.REQUESTED and idle(instance)


def _backfill(instance, defs, assets: list[str], partitions: list[str]) -> str:
    """Launch a backfill of ``assets`` alone, as the UI's "Materialize" does."""
    return launch_backfill(instance, defs, [dg.AssetKey(a) for a in assets], partitions)


def test_daemon_takes_over_from_a_run_and_backfills_reach_downstream(lake, monkeypatch):
    monkeypatch.setenv("C360_SENSOR_INTERVAL_SECONDS", "3")
    dagster_home()  # writes c360's instance settings into DAGSTER_HOME
    lake.drop(
        "usage_events",
        "days.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T08:00:00Z", quantity=2),
            event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T08:00:00Z", quantity=3),
        ],
    )
    lake.run()  # `c360 run` built everything
    runs_before = {r.run_id for r in lake.instance.get_runs()}

    daemon = Daemon(lake.root)
    try:
        # the sensors' first ticks find everything built: no run at all
        daemon.wait_for(lambda: ticked(lake.instance, {}), "two ticks of every sensor")
        assert {r.run_id for r in lake.instance.get_runs()} == runs_before

        lake.drop(
            "usage_events",
            "late.jsonl",
            [event(event_id="x1", tenant_id="t1", occurred_at="2026-10-01T23:00:00Z", quantity=10)],
        )
        daemon.wait_for(
            lambda: runs_of(lake.instance, "monthly_job", runs_before), "the late day's month"
        )
        daemon.wait_for(lambda: idle(lake.instance), "the run queue to drain")
        assert list(runs_of(lake.instance, "daily_job", runs_before).values()) == [
            ("2026-10-01", "2026-10-01", ())  # the late day only
        ]
        assert facts(lake) == {
            ("2026-10-01", "t1", "fraud_score"): (2, 12),
            ("2026-10-02", "t1", "fraud_score"): (1, 3),
        }

        # a backfill of fct_usage_daily alone: usage_anomalies follows for its days
        defs = lake.definitions()
        before = {r.run_id for r in lake.instance.get_runs()}
        backfill = _backfill(lake.instance, defs, ["fct_usage_daily"], ["2026-10-01", "2026-10-02"])
        downstream = ("2026-10-01", "2026-10-02", ("usage_anomalies",))
        daemon.wait_for(
            lambda: downstream in runs_of(lake.instance, "daily_job", before).values(),
            "usage_anomalies for the backfilled days",
        )
        daemon.wait_for(lambda: done(lake.instance, backfill), "the backfill to end")
        assert lake.instance.get_backfill(backfill).status == BulkActionStatus.COMPLETED_SUCCESS
        # besides the backfill's own run (of Dagster's asset job), the one the sensor added
        assert list(runs_of(lake.instance, "daily_job", before).values()) == [downstream]

        # a backfill of fct_customer_month alone: the monthly models below it follow
        backfill = _backfill(lake.instance, defs, ["fct_customer_month"], ["2026-10-01"])
        below = (
            "2026-10-01",
            "2026-10-01",
            ("fct_customer_adoption_monthly", "fct_usage_billing_reconciliation", "restatements"),
        )
        daemon.wait_for(
            lambda: below in runs_of(lake.instance, "monthly_job", runs_before).values(),
            "the monthly models below fct_customer_month",
        )
        daemon.wait_for(lambda: done(lake.instance, backfill), "the backfill to end")
        assert lake.instance.get_backfill(backfill).status == BulkActionStatus.COMPLETED_SUCCESS
        # two more ticks: each publishes what the one before it requested
        counted = ticks(lake.instance)
        daemon.wait_for(lambda: ticked(lake.instance, counted), "two more ticks")
    finally:
        daemon.stop()
    # and `c360 run` after the daemon builds nothing
    report = lake.run()
    assert report.rebuilt == {"daily": [], "monthly": []}
    assert report.partial == {"daily": {}, "monthly": {}}
