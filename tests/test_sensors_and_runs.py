"""One notion of what is built: `c360 run` and the sensors share their cursors (plan.py), so
either takes over from the other without rebuilding anything, and a backfill of one asset makes
the assets below it due for its partitions. Sensor ticks are evaluated in-process against the
real instance (the daemon's own test is tests/test_daemon_e2e.py)."""

import datetime as dt
import threading

import dagster as dg
import pytest

from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG, range_tags
from c360_assets.lib.plan import load_cursor, save_cursor
from c360_assets.tools.runner import QUIET
from tests.records import event

SENSORS = (
    "landing_sensor",
    "refresh_sensor",
    "daily_partitions_sensor",
    "monthly_partitions_sensor",
)


def _tick(lake, name: str, cursors: dict | None = None):
    """One tick of sensor ``name``; ``cursors`` keeps each sensor's cursor between ticks, as
    the daemon does (None: a first tick)."""
    cursors = {} if cursors is None else cursors
    context = lake.sensor_context(cursors.get(name))
    result = lake.definitions().resolve_sensor_def(name)(context)
    cursors[name] = context.cursor
    return result, context.cursor


def _ranges(requests) -> list[tuple]:
    return sorted(
        (
            r.tags[RANGE_START_TAG],
            r.tags[RANGE_END_TAG],
            tuple(k.to_user_string() for k in r.asset_selection or ()),
        )
        for r in requests
    )


def _launch(lake, job: str, requests) -> None:
    """What the daemon does with the requests: run them."""
    for request in requests:
        result = (
            lake.definitions()
            .resolve_job_def(job)
            .execute_in_process(
                instance=lake.instance,
                tags=request.tags,
                asset_selection=request.asset_selection,
                run_config=QUIET,
            )
        )
        assert result.success


def _three_days_built(lake) -> None:
    """Usage on 10-01..10-03, built by `c360 run`."""
    lake.drop(
        "usage_events",
        "u.jsonl",
        [event(event_id=f"e{d}", occurred_at=f"2026-10-0{d}T08:00:00Z") for d in (1, 2, 3)],
    )
    lake.run()


def test_sensors_after_a_run_launch_nothing_and_a_run_after_the_sensors_builds_nothing(lake):
    _three_days_built(lake)
    ticks: dict[str, str] = {}  # each sensor's cursor, as the daemon keeps it
    for name in SENSORS:  # the first ticks after `c360 run`: nothing to launch
        result, _ = _tick(lake, name, ticks)
        assert isinstance(result, dg.SkipReason), (name, result)

    # a late file: the landing sensor starts one ingestion, the daily sensor exactly its day
    lake.drop(
        "usage_events", "late.jsonl", [event(event_id="x", occurred_at="2026-10-02T23:00:00Z")]
    )
    request, _ = _tick(lake, "landing_sensor", ticks)
    assert isinstance(request, dg.RunRequest)
    _launch(lake, "ingest_job", [request])
    daily, _ = _tick(lake, "daily_partitions_sensor", ticks)
    assert _ranges(daily) == [("2026-10-02", "2026-10-02", ())]
    _launch(lake, "daily_job", daily)
    monthly, _ = _tick(lake, "monthly_partitions_sensor", ticks)
    assert _ranges(monthly) == [("2026-10-01", "2026-10-01", ())]
    _launch(lake, "monthly_job", monthly)
    # the next ticks publish what the last ones requested; `c360 run` then builds nothing
    for name in SENSORS:
        assert isinstance(_tick(lake, name, ticks)[0], dg.SkipReason), name
    report = lake.run()
    assert (report.rebuilt, report.partial) == (
        {"daily": [], "monthly": []},
        {"daily": {}, "monthly": {}},
    )


def _backfill(lake, job: str, assets: list[str], first: str, last: str, step: str) -> None:
    """A UI backfill of ``assets`` alone over a range (one run of the job with that selection)."""
    tags = range_tags(dt.date.fromisoformat(first), dt.date.fromisoformat(last), step)
    request = dg.RunRequest(tags=tags, asset_selection=[dg.AssetKey(a) for a in assets])
    _launch(lake, job, [request])


def test_a_backfill_of_one_asset_reaches_the_assets_below_it(lake):
    _three_days_built(lake)
    ticks: dict[str, str] = {}  # each sensor's cursor, as the daemon keeps it
    # fct_usage_daily alone for 10-01..10-02: usage_anomalies is due for those days (and only
    # it: raw.usage_events is above), then October for the monthly models
    _backfill(lake, "daily_job", ["fct_usage_daily"], "2026-10-01", "2026-10-02", "daily")
    daily, _ = _tick(lake, "daily_partitions_sensor", ticks)
    assert _ranges(daily) == [("2026-10-01", "2026-10-02", ("usage_anomalies",))]
    _launch(lake, "daily_job", daily)
    monthly, _ = _tick(lake, "monthly_partitions_sensor", ticks)
    assert _ranges(monthly) == [("2026-10-01", "2026-10-01", ())]
    _launch(lake, "monthly_job", monthly)

    # fct_customer_month alone for October: the three monthly models below it are due
    _backfill(lake, "monthly_job", ["fct_customer_month"], "2026-10-01", "2026-10-01", "monthly")
    monthly, _ = _tick(lake, "monthly_partitions_sensor", ticks)
    assert _ranges(monthly) == [
        (
            "2026-10-01",
            "2026-10-01",
            ("fct_customer_adoption_monthly", "fct_usage_billing_reconciliation", "restatements"),
        )
    ]
    _launch(lake, "monthly_job", monthly)
    assert isinstance(_tick(lake, "daily_partitions_sensor", ticks)[0], dg.SkipReason)
    assert isinstance(_tick(lake, "monthly_partitions_sensor", ticks)[0], dg.SkipReason)

    # an unpartitioned model materialized alone (from the UI): the refresh catches up below it
    _launch(
        lake, "refresh_job", [dg.RunRequest(asset_selection=[dg.AssetKey("stg_billing_invoices")])]
    )
    request, _ = _tick(lake, "refresh_sensor", ticks)
    assert isinstance(request, dg.RunRequest)
    _launch(lake, "refresh_job", [request])
    assert isinstance(_tick(lake, "refresh_sensor", ticks)[0], dg.SkipReason)


@pytest.mark.dagster_home  # savers in threads: an in-memory instance is one connection
def test_the_shared_cursor_only_moves_forward(lake):
    """Savers at once (a sensor tick, runs finishing out of order) merge key by key."""
    lakehouse = lake.lakehouse
    plans = [{"a": 5, "b": 1}, {"a": 3, "b": 7}, {"a": 4, "c": 2}, {"b": 6}]
    threads = [
        threading.Thread(target=save_cursor, args=(lake.instance, lakehouse, "daily", plan))
        for plan in plans * 5
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert load_cursor(lake.instance, "daily") == {"a": 5, "b": 7, "c": 2}
    save_cursor(lake.instance, lakehouse, "daily", {"a": 1, "b": 1, "c": 1})  # an old plan
    assert load_cursor(lake.instance, "daily") == {"a": 5, "b": 7, "c": 2}
