"""Which partitions are out of date: one answer, and one cursor, for the sensors and ``c360 run``.

Every ingestion (and every identity change) records in its materialization metadata the UTC days
and months its new rows fall in. Reading *all* materializations after a cursor (never just the
latest) gives the days to rebuild; the months to rebuild are the months of every daily partition
rebuilt since the monthly cursor, plus the months billing documents touched. A partition model
materialized by a run that left out some of its partitioned descendants (a backfill of one asset
from the UI) makes those descendants due for that partition.

The cursor of a stage (asset key -> last storage id handled, plus the partition horizon and the
partitions held past it, all integers) lives in the Dagster instance's key-value store, shared
by ``c360 run`` and the sensors, so either takes over from the other. It only moves forward: a
save merges key by key (the larger value wins) while holding a lease, so two savers never move
it back.
"""

import datetime as dt
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

from c360_assets.lib.partitions import advance, between_starts, bounds, month_of
from resources.lakehouse import LakehouseResource

PAGE = 1000
CURSOR_KEY = "c360/run-cursor/{stage}"
HORIZON = "~horizon"  # the stage's last partition (date ordinal) when the cursor was planned
HELD = "~held:"  # + ISO date: a partition that had data but no partition yet (value: ordinal)


@dataclass
class Touched:
    days: set[dt.date] = field(default_factory=set)
    months: set[dt.date] = field(default_factory=set)
    cursor: dict[str, int] = field(default_factory=dict)
    # partitions where only some assets are due (names): the descendants a run left out
    partial: dict[dt.date, set[str]] = field(default_factory=dict)
    # why each partition is due (labels of what touched it)
    why: dict[dt.date, set[str]] = field(default_factory=dict)
    held: set[dt.date] = field(default_factory=set)  # after the last partition: wait
    before_first: set[dt.date] = field(default_factory=set)  # before the first: never built

    @property
    def empty(self) -> bool:
        return not self.days and not self.months and not self.partial

    def note(self, parts, label: str | None) -> None:
        if label:
            for part in parts:
                self.why.setdefault(part, set()).add(label)


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
    months_of_partitions: Collection[dg.AssetKey] = (),
    until: dict[dg.AssetKey, int] | None = None,
    labels: Mapping[dg.AssetKey, str] | None = None,
    left_out: Callable[[dg.EventLogRecord], set[str]] | None = None,
) -> Touched:
    """Days and months named by every materialization of ``keys`` after ``cursor``.

    ``cursor`` maps an asset key (``to_user_string``) to the last storage id already handled.
    A partitioned materialization of a key in ``months_of_partitions`` touches its month.
    ``until`` holds a key's records after a storage id back (they stay after the cursor), e.g.
    raw ingestions that the unpartitioned models have not caught up with yet.
    ``labels`` name why a key's records make a partition due; ``left_out(record)`` names the
    assets due for the record's partition because its run left them out.
    """
    touched = Touched(cursor=dict(cursor))
    for key in keys:
        name = key.to_user_string()
        label = (labels or {}).get(key)
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
                days = _dates(metadata.get("touched_dates"))
                months = _dates(metadata.get("touched_months"))
                partition = materialization.partition if materialization else None
                if partition and key in months_of_partitions:
                    months.append(month_of(dt.date.fromisoformat(partition)))
                touched.days.update(days)
                touched.months.update(months)
                touched.note(days + months, label)
                if partition and left_out is not None:
                    due = left_out(record)
                    if due:
                        part = dt.date.fromisoformat(partition)
                        touched.partial.setdefault(part, set()).update(due)
                        touched.note([part], "a backfill left them out")
                after = record.storage_id
            if held or not page.has_more:
                break
        if after is not None:
            touched.cursor[name] = after
    return touched


def month_span(
    months: set[dt.date], last_built: dt.date | None, first: dt.date, last: dt.date
) -> set[dt.date]:
    """Every month from the earliest touched month through the latest of the touched months and
    the last month built (from the month after it when that is earlier than every touched one).

    A customer-month fact runs without gaps from each customer's first activity through one
    global end month, so a change in month M can add or change rows in any later month (a new
    first activity, an effective-dated attribute), and a new end month adds rows to every month
    up to it. Months before the partitions (``first``..``last``) count as the first month (a
    change that old reaches into them); months after them wait (``within_partitions``).
    """
    inside = {max(m, first) for m in months if m <= last}
    if not inside:
        return set()
    low, high = min(inside), max(inside)
    if last_built is not None:
        low, high = min(low, advance(last_built, "monthly")), max(high, min(last_built, last))
    return set(between_starts(low, high, "monthly"))


def within_partitions(
    found: Touched, step: str, now: dt.datetime | None = None, early_as_first: bool = False
) -> set[dt.date]:
    """The due partitions of ``step`` that exist at ``now``; records the rest in ``found``.

    A partition after the last one (data dated past the horizon) is *held*: the cursor keeps it
    (``~held:<date>``) and the horizon it was planned at (``~horizon``), and a later plan whose
    last partition reaches it releases it. A partition before the first one is never built
    (``C360_FIRST_DAY`` / ``C360_FIRST_MONTH`` say where the reports start; its rows stay in
    raw), unless ``early_as_first``: then it makes the first partition due (a change to an
    early month reaches every month after it).
    """
    first, last = bounds(step, now)
    parts = found.days if step == "daily" else found.months
    cursor = found.cursor
    horizon = dt.date.fromordinal(cursor[HORIZON]) if HORIZON in cursor else None
    still_held = set()
    for name in [n for n in cursor if n.startswith(HELD)]:
        held = dt.date.fromisoformat(name.removeprefix(HELD))
        if horizon is None or held <= horizon:  # released by an earlier plan
            del cursor[name]
        elif held <= last:  # its partition exists now
            del cursor[name]
            parts.add(held)
            found.note([held], "its partition now exists")
        else:
            still_held.add(held)
    found.held = {p for p in parts if p > last} | still_held
    found.before_first = {p for p in parts if p < first}
    for held in found.held:
        cursor[HELD + held.isoformat()] = held.toordinal()
    cursor[HORIZON] = max(last.toordinal(), cursor.get(HORIZON, 0))
    inside = {p for p in parts if first <= p <= last}
    if early_as_first and found.before_first:
        inside.add(first)
        found.note([first], "an earlier month changed")
        found.before_first = set()
    partial = {p: names for p, names in found.partial.items() if first <= p <= last}
    found.partial = {p: names for p, names in partial.items() if p not in inside}
    return inside


# -- the shared cursor -----------------------------------------------------------------------
def _kv_key(stage: str) -> str:
    return CURSOR_KEY.format(stage=stage)


def load_cursor(instance: dg.DagsterInstance, stage: str) -> dict[str, int]:
    value = instance.run_storage.get_cursor_values({_kv_key(stage)}).get(_kv_key(stage))
    return json.loads(value) if value else {}


def ahead_of(cursor: Mapping[str, int], stored: Mapping[str, int]) -> bool:
    """Whether ``cursor`` holds anything ``stored`` does not (a larger value or a new key)."""
    return any(value > stored.get(key, -1) for key, value in cursor.items())


def save_cursor(
    instance: dg.DagsterInstance, lakehouse: LakehouseResource, stage: str, cursor: dict[str, int]
) -> dict[str, int]:
    """Move the stage's shared cursor forward to ``cursor``, key by key (the larger value wins,
    so runs that finish out of order never move it back); returns the merged cursor.

    The read-merge-write holds the lease ``dagster-cursor/<stage>``: a sensor tick and a
    ``c360 run`` saving at once are merged one after the other, never one over the other.
    """
    if not ahead_of(cursor, load_cursor(instance, stage)):
        return load_cursor(instance, stage)
    with lakehouse.lease(f"dagster-cursor/{stage}"):
        current = load_cursor(instance, stage)
        merged = {**current, **{k: max(v, current.get(k, v)) for k, v in cursor.items()}}
        instance.run_storage.set_cursor_values({_kv_key(stage): json.dumps(merged)})
    return merged
