"""Partitions that cover the data (lib/partitions.py, DECISIONLOG §17): from the configured first
day through today + 28 days. A row dated outside them lands in raw, waits (a WARN check counts
it; the cursor holds its day) and is built once its partition exists; the demo starts the
partitions where its data starts. Expected values are worked out in the comments."""

import csv
import datetime as dt
import gzip
import json

import dagster as dg
import pytest

from c360_assets.definitions import all_models
from c360_assets.defs.automation.jobs import touched
from c360_assets.lib.partitions import (
    FIRST_DAY_ENV,
    FIRST_MONTH_ENV,
    bounds,
    daily_partitions,
    monthly_partitions,
)
from c360_assets.lib.plan import load_cursor
from c360_assets.tools.cli import main
from c360_assets.tools.generate import generate_landing
from tests.records import event
from tests.test_usage_pipeline import facts

NOW = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC)


def _check(lake, name: str) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(dg.AssetKey("raw_usage_events"), name)
    record = lake.instance.get_latest_asset_check_evaluation_record(key)
    return record.event.dagster_event.event_specific_data


def test_partitions_run_from_the_first_day_to_four_weeks_after_now(monkeypatch):
    monkeypatch.setenv(FIRST_DAY_ENV, "2026-08-01")
    monkeypatch.delenv(FIRST_MONTH_ENV, raising=False)
    # 2026-12-07 + 28 days = 2027-01-04; the month of that day is 2027-01 (this month + 1)
    assert bounds("daily", NOW) == (dt.date(2026, 8, 1), dt.date(2027, 1, 4))
    assert bounds("monthly", NOW) == (dt.date(2026, 8, 1), dt.date(2027, 1, 1))
    # the last day of a month: + 28 days is still the next month (2027-01-28)
    late = dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC)
    assert bounds("daily", late)[1] == dt.date(2027, 1, 28)
    assert bounds("monthly", late)[1] == dt.date(2027, 1, 1)
    # 2026-08-01 .. 2027-01-04: 31 + 30 + 31 + 30 + 31 + 4 = 157 days
    assert len(daily_partitions().get_partition_keys(current_time=NOW)) == 157
    monkeypatch.setenv(FIRST_MONTH_ENV, "2025-02")
    assert monthly_partitions().get_partition_keys(current_time=NOW)[0] == "2025-02-01"


def test_a_row_dated_past_the_last_partition_waits_for_it(lake):
    today = dt.datetime.now(dt.UTC).date()
    future = today + dt.timedelta(days=40)  # 12 days past the last partition (today + 28)
    lake.drop(
        "usage_events",
        "u.jsonl",
        [
            event(event_id="e1", occurred_at="2026-10-01T08:00:00Z", quantity=2),
            event(event_id="e2", occurred_at=f"{future}T08:00:00Z", quantity=5),
        ],
    )
    report = lake.run()
    # the row is accepted (raw holds both, nothing quarantined), its day is not built
    assert len(lake.rows("raw.usage_events")) == 2 and lake.rows("raw.quarantine") == []
    assert report.rebuilt["daily"] == ["2026-10-01"]
    assert report.held["daily"] == [future.isoformat()]
    assert facts(lake) == {("2026-10-01", "t1", "fraud_score"): (1, 2)}
    check = _check(lake, "rows_wait_for_partitions")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["rows_after_last_partition"].value == 1
    assert check.metadata["rows_before_first_partition"].value == 0
    # a second run builds nothing and still holds it
    again = lake.run()
    assert (again.rebuilt["daily"], again.held["daily"]) == ([], [future.isoformat()])

    # twelve days later its partition exists: the plan releases exactly that day
    later = dt.datetime.combine(today + dt.timedelta(days=12), dt.time(1), dt.UTC)
    due = touched(lake.instance, all_models(), "daily", load_cursor(lake.instance, "daily"), later)
    assert due.days == {future} and due.held == set()
    assert due.why[future] == {"its partition now exists"}


def test_a_row_dated_before_the_first_day_waits_in_raw(lake, monkeypatch):
    monkeypatch.setenv(FIRST_DAY_ENV, "2026-10-02")
    lake.drop(
        "usage_events",
        "u.jsonl",
        [
            event(event_id="e1", occurred_at="2026-10-01T08:00:00Z"),
            event(event_id="e2", occurred_at="2026-10-02T08:00:00Z"),
        ],
    )
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-10-02"]
    assert len(lake.rows("raw.usage_events")) == 2
    check = _check(lake, "rows_wait_for_partitions")
    assert check.metadata["rows_before_first_partition"].value == 1
    assert check.metadata["days_waiting"].value == ["2026-10-01"]


def _landing_extent(landing) -> tuple[set[str], str]:
    """From the landing files themselves: the UTC days holding usage events and the earliest
    month of a subscription start, an invoice, a line's service period, a credit note or a
    refund (the demo's data; the few malformed lines skipped)."""
    days, months = set(), set()

    def when(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)

    for path in (landing / "usage_events").glob("*.jsonl.gz"):
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            try:
                days.add(when(json.loads(line)["occurred_at"]).date().isoformat())
            except (ValueError, KeyError, TypeError):
                continue
    columns = {
        "subscriptions": ("started_at", "updated_at"),
        "invoices": ("issued_at",),
        "invoice_line_items": ("service_period_start",),
        "credit_notes": ("issued_at",),
        "refunds": ("refunded_at",),
    }
    for folder, names in columns.items():
        for path in (landing / "billing").glob(f"{folder}/*"):
            text = path.read_text()
            rows = (
                list(csv.DictReader(text.splitlines()))
                if path.suffix == ".csv"
                else [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            )
            for row in rows:
                for name in names:
                    try:
                        months.add(when(row[name]).strftime("%Y-%m-01"))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue
    return days, min(months)


@pytest.mark.dagster_home  # `c360 demo` runs the pipeline there
def test_the_demo_partitions_cover_exactly_its_data(lake, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the demo writes .env in the current directory
    monkeypatch.setenv(FIRST_DAY_ENV, "")  # unset; restored after the test (the demo sets it)
    monkeypatch.setenv(FIRST_MONTH_ENV, "")
    generate_landing(
        lake.landing,
        customers=30,
        start=dt.date(2026, 10, 1),
        days=5,
        events_per_day=300,
        progress=False,
    )
    days, first_month = _landing_extent(lake.landing)
    assert days == {f"2026-10-0{d}" for d in range(1, 6)}
    assert main(["demo"]) == 0
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    assert env == {FIRST_DAY_ENV: "2026-10-01", FIRST_MONTH_ENV: first_month[:7]}
    # the daily partitions start on the data's first day and every day of data is built
    assert daily_partitions().get_partition_keys()[0] == "2026-10-01"
    built = lake.instance.get_materialized_partitions(dg.AssetKey("fct_usage_daily"))
    assert built == days
    # the monthly ones start at its first activity and run without a gap to October
    months = lake.instance.get_materialized_partitions(dg.AssetKey("fct_customer_month"))
    assert monthly_partitions().get_partition_keys()[0] == first_month
    assert min(months) == first_month and max(months) == "2026-10-01"
    assert len(months) == len(
        [k for k in monthly_partitions().get_partition_keys() if k <= "2026-10-01"]
    )
