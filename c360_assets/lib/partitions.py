"""Partitions: UTC days and UTC months over a fixed range (nothing depends on the wall clock)."""

import datetime as dt
from collections.abc import Iterable

import dagster as dg

FIRST_DAY = dt.date(2024, 1, 1)
END_DAY = dt.date(2031, 1, 1)  # exclusive; documents dated in the future are still accepted

# A large end_offset with a fixed end_date makes every partition up to END_DAY exist today:
# the partition set is the same whatever the wall clock says.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY.isoformat(),
    end_date=END_DAY.isoformat(),
    timezone="UTC",
    end_offset=(END_DAY - FIRST_DAY).days,
)
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_DAY.isoformat(),
    end_date=END_DAY.isoformat(),
    timezone="UTC",
    end_offset=12 * (END_DAY.year - FIRST_DAY.year),
)

PARTITIONS = {"daily": daily_partitions, "monthly": monthly_partitions}
# Partitions per run when a backfill is split into runs (they run at once, up to the run queue's
# limit): large enough that a run's start-up is small beside its work, small enough to spread.
BACKFILL_RUN_SIZE = {"daily": 5, "monthly": 3}
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def accepted_date_range() -> tuple[dt.date, dt.date]:
    """Event dates that have a daily partition (inclusive bounds)."""
    return FIRST_DAY, END_DAY - dt.timedelta(days=1)


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


def partition_key(day: dt.date, step: str = "daily") -> str:
    return day.isoformat() if step == "daily" else day.replace(day=1).isoformat()


def range_tags(first: dt.date, last: dt.date, step: str = "daily") -> dict[str, str]:
    return {RANGE_START_TAG: partition_key(first, step), RANGE_END_TAG: partition_key(last, step)}


def window_of(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partition window as UTC dates, end exclusive (a single key or a range)."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
