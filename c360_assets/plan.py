"""Which partitions are out of date: one answer for the sensors and for ``c360 run``.

Every ingestion (and every identity change) records in its materialization metadata the UTC days
and months its new rows fall in. Reading *all* materializations after a cursor (never just the
latest) gives the days to rebuild; the months to rebuild are the months of every daily partition
rebuilt since the monthly cursor, plus the months billing documents touched.
"""

import datetime as dt
import json
from dataclasses import dataclass, field

import dagster as dg

from c360_assets.partitions import month_of

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
    data = getattr(value, "data", value)
    if isinstance(data, str):
        data = json.loads(data)
    return [dt.date.fromisoformat(d) for d in (data or [])]


def touched_since(
    instance: dg.DagsterInstance,
    keys: list[dg.AssetKey],
    cursor: dict[str, int],
    partition_months: bool = False,
) -> Touched:
    """Days and months named by every materialization of ``keys`` after ``cursor``.

    ``cursor`` maps an asset key (``to_user_string``) to the last storage id already handled.
    With ``partition_months`` a daily partition's materialization touches its month.
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
            for record in page.records:
                materialization = record.asset_materialization
                metadata = materialization.metadata if materialization else {}
                touched.days.update(_dates(metadata.get("touched_dates")))
                touched.months.update(_dates(metadata.get("touched_months")))
                if partition_months and materialization and materialization.partition:
                    touched.months.add(month_of(dt.date.fromisoformat(materialization.partition)))
                after = record.storage_id
            if not page.has_more:
                break
        if after is not None:
            touched.cursor[name] = after
    return touched
