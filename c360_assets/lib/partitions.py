"""Partitions: UTC days and UTC months, from a configured first day through a short horizon.

The first partition is configuration (``C360_FIRST_DAY``, ``C360_FIRST_MONTH``): the first day
and month that hold data, so the UI's fill rates, lists and plots are true (``c360 demo`` sets
them from its data, in ``.env``). The last partition follows the clock: today plus
``HORIZON_DAYS`` (a document dated up to four weeks ahead has its day and its month), evaluated
whenever Dagster asks, never at import. A valid row dated outside the partitions is not
rejected: ingestion lands it and it waits in raw, counted by a WARN check, until its partition
exists (docs/DECISIONLOG.md §17); the planner builds it then.
"""

import datetime as dt
import functools
import os
from collections.abc import Iterable

import dagster as dg

FIRST_DAY_ENV = "C360_FIRST_DAY"  # YYYY-MM-DD: the first daily partition
FIRST_MONTH_ENV = "C360_FIRST_MONTH"  # YYYY-MM: the first monthly partition (default: its day's)
DEFAULT_FIRST_DAY = dt.date(2024, 1, 1)
# Days after today that have a partition. Four weeks keep every future-dated document a billing
# or event system plausibly sends (a scheduled invoice, a device clock ahead) and add no more
# than 28 empty days to the UI; today + 28 days always falls in this month or the next, so the
# monthly partitions end one month ahead and cover the months of every daily partition.
HORIZON_DAYS = 28
HORIZON_MONTHS = 1

# Partitions per run when a backfill is split into runs (they run at once, up to the run queue's
# limit): large enough that a run's start-up is small beside its work, small enough to spread.
BACKFILL_RUN_SIZE = {"daily": 5, "monthly": 3}
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class PartitionConfigError(ValueError):
    """A first day or month that is not a date (names the variable)."""


def _env_date(name: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text if len(text) > 7 else f"{text}-01")
    except ValueError:
        raise PartitionConfigError(f"{name}={text!r} is not a date (YYYY-MM-DD)") from None


def first_day() -> dt.date:
    """The first daily partition: ``C360_FIRST_DAY``, or 2024-01-01."""
    text = os.environ.get(FIRST_DAY_ENV, "").strip()
    return _env_date(FIRST_DAY_ENV, text) if text else DEFAULT_FIRST_DAY


def first_month() -> dt.date:
    """The first monthly partition: ``C360_FIRST_MONTH``, or the month of the first day."""
    text = os.environ.get(FIRST_MONTH_ENV, "").strip()
    return month_of(_env_date(FIRST_MONTH_ENV, text) if text else first_day())


@functools.cache
def _daily(first: dt.date) -> dg.DailyPartitionsDefinition:
    # no end_date: the last partition is today's plus HORIZON_DAYS, whenever it is asked
    return dg.DailyPartitionsDefinition(
        start_date=first.isoformat(), timezone="UTC", end_offset=HORIZON_DAYS + 1
    )


@functools.cache
def _monthly(first: dt.date) -> dg.MonthlyPartitionsDefinition:
    return dg.MonthlyPartitionsDefinition(
        start_date=first.isoformat(), timezone="UTC", end_offset=HORIZON_MONTHS + 1
    )


def daily_partitions() -> dg.DailyPartitionsDefinition:
    return _daily(first_day())


def monthly_partitions() -> dg.MonthlyPartitionsDefinition:
    return _monthly(first_month())


def partitions_def(step: str) -> dg.TimeWindowPartitionsDefinition:
    return daily_partitions() if step == "daily" else monthly_partitions()


def bounds(step: str, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The first and the last partition start of ``step`` at ``now`` (default: the clock)."""
    keys = partitions_def(step).get_partition_keys(current_time=now)
    first = first_day() if step == "daily" else first_month()
    return first, dt.date.fromisoformat(keys[-1]) if keys else first


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def contiguous_ranges(
    days: Iterable[dt.date], step: str = "daily"
) -> list[tuple[dt.date, dt.date]]:
    """Group partition start dates into runs of consecutive partitions: [(first, last), ...]."""
    ordered = sorted(set(days))
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in ordered:
        if ranges and _next(ranges[-1][1], step) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _next(day: dt.date, step: str) -> dt.date:
    if step == "daily":
        return day + dt.timedelta(days=1)
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def advance(day: dt.date, step: str, count: int = 1) -> dt.date:
    """The partition start ``count`` partitions after ``day`` (a partition start)."""
    for _ in range(count):
        day = _next(day, step)
    return day


def between_starts(low: dt.date, high: dt.date, step: str) -> list[dt.date]:
    """Every partition start from ``low`` through ``high`` (both partition starts)."""
    found = []
    while low <= high:
        found.append(low)
        low = _next(low, step)
    return found


def partition_key(day: dt.date, step: str = "daily") -> str:
    return day.isoformat() if step == "daily" else day.replace(day=1).isoformat()


def range_tags(first: dt.date, last: dt.date, step: str = "daily") -> dict[str, str]:
    return {RANGE_START_TAG: partition_key(first, step), RANGE_END_TAG: partition_key(last, step)}


def window_of(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partition window as UTC dates, end exclusive (a single key or a range)."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
