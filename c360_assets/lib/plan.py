"""Which partitions are out of date: one answer for the sensors and for ``c360 run``.

Every ingestion (and every identity change) records in its materialization metadata the UTC days
and months its new rows fall in. Reading *all* materializations after a cursor (never just the
latest) gives the days to rebuild; the months to rebuild are the months of every daily partition
rebuilt since the monthly cursor, plus the months billing documents touched.
"""

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from c360_assets.lib.partitions import END_DAY, FIRST_DAY, advance, month_of

PAGE = 1000


@dataclass
class Touched:
    days: set[dt.date] = field(default_factory=set)
    months: set[dt.date] = field(default_factory=set)
    cursor: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.days and not self.months


def _dates(value: object) -> list[dt.date]:
    """The ISO dates a ``touched_dates``/``touched_months`` entry lists (absent: none)."""
    data = getattr(value, "data", value)  # JSON metadata, or its text
    if isinstance(data, str):
        data = json.loads(data)
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError(f"expected a list of ISO dates, got {data!r}")
    return [dt.date.fromisoformat(d) for d in data]


def latest_storage_ids(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]
) -> dict[dg.AssetKey, int]:
    """Storage id of each asset's latest materialization (0 when it has none), in one query."""
    found = dict.fromkeys(keys, 0)
    if found:  # no keys would ask for every asset
        for record in instance.get_asset_records(list(found)):
            entry = record.asset_entry
            found[entry.asset_key] = entry.last_materialization_storage_id or 0
    return found


def latest_storage_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    """Storage id of the asset's latest materialization (0 when it has none)."""
    return latest_storage_ids(instance, [key])[key]


def touched_since(
    instance: dg.DagsterInstance,
    keys: list[dg.AssetKey],
    cursor: dict[str, int],
    partition_months: bool = False,
    until: dict[dg.AssetKey, int] | None = None,
) -> Touched:
    """Days and months named by every materialization of ``keys`` after ``cursor``.

    ``cursor`` maps an asset key (``to_user_string``) to the last storage id already handled.
    With ``partition_months`` a daily partition's materialization touches its month.
    ``until`` holds a key's records after a storage id back (they stay after the cursor), e.g.
    raw ingestions that the unpartitioned models have not caught up with yet.
    """
    touched = Touched(cursor=dict(cursor))
    for key in keys:
        name = key.to_user_string()
        after = touched.cursor.get(name)
        while True:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after),
                limit=PAGE,
                ascending=True,
            )
            limit = (until or {}).get(key)
            held = [r for r in page.records if limit is not None and r.storage_id > limit]
            for record in page.records:
                if held and record.storage_id >= held[0].storage_id:
                    break
                materialization = record.asset_materialization
                metadata = materialization.metadata if materialization else {}
                touched.days.update(_dates(metadata.get("touched_dates")))
                touched.months.update(_dates(metadata.get("touched_months")))
                if partition_months and materialization and materialization.partition:
                    touched.months.add(month_of(dt.date.fromisoformat(materialization.partition)))
                after = record.storage_id
            if held or not page.has_more:
                break
        if after is not None:
            touched.cursor[name] = after
    return touched


def month_span(months: set[dt.date], last_built: dt.date | None) -> set[dt.date]:
    """Every month from the earliest touched month through the latest of the touched months and
    the last month built (from the month after it when that is earlier than every touched one).

    A customer-month fact runs without gaps from each customer's first activity through one
    global end month, so a change in month M can add or change rows in any later month (a new
    first activity, an effective-dated attribute), and a new end month adds rows to every month
    up to it. Months before the partition range count as its first month (a change that old
    reaches into the range); months after it are dropped.
    """
    first, end = month_of(FIRST_DAY), month_of(END_DAY)
    inside = {max(m, first) for m in months if m < end}
    if not inside:
        return set()
    low, high = min(inside), max(inside)
    if last_built is not None:
        low, high = min(low, advance(last_built, "monthly")), max(high, last_built)
    span = set()
    while low <= high:
        span.add(low)
        low = advance(low, "monthly")
    return span
