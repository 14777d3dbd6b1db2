"""The graph's jobs and the run plan shared by the sensors and ``c360 run``.

Four jobs, run in this order on a change:
1. ``ingest_job``  — landing files -> raw tables (unpartitioned);
2. ``refresh_job`` — unpartitioned staging/core/marts models (billing, CRM, identity, dims);
3. ``daily_job``   — daily-partitioned models, for exactly the days touched (contiguous ranges);
4. ``monthly_job`` — monthly-partitioned models, for the months touched, widened to one span
   through the last month built (see ``plan.month_span``).

The refresh runs only when a raw table that an unpartitioned model reads has new rows: usage
ingestion alone (the daily flow) never rebuilds the billing/CRM models.

Days touched come from the ``touched_dates`` metadata of usage ingestion and of unpartitioned
models whose change re-derives past days (identity, subscription coverage).
Months touched come from ``touched_months`` metadata (billing ingestion, unpartitioned models
such as the customer dimension) and from the month of every daily partition rebuilt.
A run that materialized a model's partition without the models of the same partitioning below
it (a backfill of one asset from the UI) makes those models due for that partition (``partial``:
runs of those assets only); an unpartitioned model materialized that way makes the refresh due.
Partitions past the last one wait in the cursor until they exist (``plan.within_partitions``).
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from c360_assets.defs.ingest.sources import SOURCES, USAGE
from c360_assets.lib.models import Model, ModelDeclarationError, asset_key_for_table
from c360_assets.lib.partitions import bounds
from c360_assets.lib.plan import (
    Touched,
    latest_storage_id,
    latest_storage_ids,
    month_span,
    touched_since,
    within_partitions,
)

RAW_KEYS = [dg.AssetKey(s.asset_name) for s in SOURCES]
DAY_TRIGGERS = [dg.AssetKey(USAGE.asset_name), dg.AssetKey("int_tenants_resolved")]
STAGES = ("daily", "monthly")
STAGE_TAG = "c360/stage"  # the run queue limits ingestion runs by it (tools/instance.py)
# why a trigger's materializations make partitions due (others: "<name> changed")
REASONS = {
    dg.AssetKey(USAGE.asset_name): "new usage events",
    dg.AssetKey("int_tenants_resolved"): "tenant mapping change",
    dg.AssetKey("int_subscription_coverage"): "subscription coverage change",
    dg.AssetKey("dim_customer"): "customer dimension change",
    **{
        dg.AssetKey(s.asset_name): "new billing documents"
        for s in SOURCES
        if s.folder.startswith("billing/")
    },
}


def _names(models: Sequence[Model], partitioning: str | None) -> list[str]:
    return [m.name for m in models if m.partitioning == partitioning]


def job_assets(models: Sequence[Model]) -> dict[str, set[str]]:
    """The asset names each of the four jobs selects."""
    return {
        "ingest_job": {key.to_user_string() for key in RAW_KEYS},
        "refresh_job": set(_names(models, None)),
        "daily_job": set(_names(models, "daily")),
        "monthly_job": set(_names(models, "monthly")),
    }


def build_jobs(models: Sequence[Model]) -> list:
    check_change_reports(models)
    return [
        dg.define_asset_job(name, dg.AssetSelection.assets(*sorted(names)), tags={STAGE_TAG: stage})
        for (name, names), stage in zip(
            job_assets(models).items(), ("ingest", "refresh", "daily", "monthly"), strict=True
        )
    ]


def _unreported(models: Sequence[Model], table: str, stage: str) -> str | None:
    """Why a change of ``table`` would never rebuild a partition of ``stage`` (None: it does)."""
    sources = {source.table: source for source in SOURCES}
    producers = {model.table: model for model in models}
    if table in sources:
        source = sources[table]
        if asset_key_for_table(table) not in trigger_keys(models, stage):
            return f"its ingestion does not trigger the {stage} job"
        if stage == "daily" and not source.event_time:
            return "a raw source without an event_time reports no touched_dates"
        if stage == "monthly" and not source.month_columns:
            return "a raw source declaring no month_columns reports no touched_months"
        return None
    if table not in producers:
        return "no source and no model writes it"
    upstream = producers[table]
    if upstream.partitioning == stage or (upstream.partitioning, stage) == ("daily", "monthly"):
        return None  # built in the same job, or before it (a day's month is rebuilt after it)
    if upstream.partitioning is not None:
        return f"a {upstream.partitioning} model is built after the {stage} job"
    reports = upstream.after_write.reports if upstream.after_write else frozenset()
    # touched dates are rebuilt by the daily job, whose partitions' months the monthly job then
    # rebuilds; touched months reach the monthly job only
    wanted = {"touched_dates"} if stage == "daily" else {"touched_dates", "touched_months"}
    if reports & wanted:
        return None
    return (
        f"an unpartitioned model needs an after_write ChangeReport reporting "
        f"{' or '.join(sorted(wanted))}"
    )


def check_change_reports(models: Sequence[Model]) -> None:
    """Every input of a partitioned model can say which partitions changed: a raw source whose
    ingestion records them, a partitioned model built in the same job or before it, or an
    unpartitioned model whose ``after_write`` reports them. Otherwise a change there would never
    trigger a rebuild: refused when the definitions are assembled."""
    for model in models:
        if model.partitioning is None:
            continue
        what = "days" if model.partitioning == "daily" else "months"
        for name, read in model.reads.items():
            if read.table == model.table:  # its own previous output
                continue
            why = _unreported(models, read.table, model.partitioning)
            if why is not None:
                raise ModelDeclarationError(
                    f"model {model.name}: input {name} ({read.table}) cannot report the {what} "
                    f"it changed ({why}): a change there would never rebuild a partition"
                )


def descendants(models: Sequence[Model], partitioning: str | None) -> dict[str, set[str]]:
    """For each model of ``partitioning``, the models of the same partitioning downstream of it
    (at any depth)."""
    same = {m.name: m for m in models if m.partitioning == partitioning}
    parents = {
        name: {asset_key_for_table(r.table).to_user_string() for r in m.reads.values()}
        | set(m.extra_deps)
        for name, m in same.items()
    }
    children: dict[str, set[str]] = {name: set() for name in same}
    for name, ups in parents.items():
        for up in ups & same.keys():
            if up != name:
                children[up].add(name)
    found: dict[str, set[str]] = {}
    for name in same:
        seen, todo = set(), list(children[name])
        while todo:
            child = todo.pop()
            if child not in seen:
                seen.add(child)
                todo.extend(children[child])
        found[name] = seen
    return found


def _left_out(instance: dg.DagsterInstance, models: Sequence[Model], partitioning: str | None):
    """``record -> names``: the models downstream of the record's asset (same partitioning) that
    its run did not select, e.g. ``usage_anomalies`` after a backfill of ``fct_usage_daily``
    alone. A run of one of the four jobs selected its whole job; a run of another job with no
    selection is taken to have built that asset only."""
    below = descendants(models, partitioning)
    jobs = job_assets(models)
    selected: dict[str, set[str]] = {}

    def left_out(record: dg.EventLogRecord) -> set[str]:
        if record.asset_key is None:
            return set()
        name = record.asset_key.to_user_string()
        if not below.get(name):
            return set()
        if record.run_id not in selected:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and run.asset_selection:  # empty: the whole job
                names = {key.to_user_string() for key in run.asset_selection}
            else:
                names = jobs.get(run.job_name, {name}) if run is not None else {name}
            selected[record.run_id] = names
        return below[name] - selected[record.run_id]

    return left_out


def trigger_keys(models: Sequence[Model], stage: str) -> list[dg.AssetKey]:
    """Whose materializations make ``stage``'s partitions due: ingestion and the unpartitioned
    models (the days and months they report), the daily models (their months; their own
    descendants a backfill left out) and, for the months, the monthly models (the same)."""
    unpartitioned = [dg.AssetKey(n) for n in _names(models, None)]
    daily = [dg.AssetKey(n) for n in _names(models, "daily")]
    if stage == "daily":  # unpartitioned models report days only when their change needs it
        return DAY_TRIGGERS + [k for k in unpartitioned if k not in DAY_TRIGGERS] + daily
    non_usage_raw = [k for k in RAW_KEYS if k != dg.AssetKey(USAGE.asset_name)]
    monthly = [dg.AssetKey(n) for n in _names(models, "monthly")]
    return non_usage_raw + unpartitioned + daily + monthly


def touched(
    instance: dg.DagsterInstance,
    models: Sequence[Model],
    stage: str,
    cursor: dict[str, int],
    now: dt.datetime | None = None,
) -> Touched:
    """What ``stage`` must rebuild: every trigger materialization after ``cursor``, within the
    partitions that exist at ``now`` (the others are held in the cursor, plan.within_partitions).

    Months are widened to one span through the last month built (``plan.month_span``).
    Raw ingestions count only once every unpartitioned model (identity, dimensions) has been
    refreshed after them, so a partition is never built against a stale or missing mapping.
    """
    bound = refreshed_through(instance, models)
    held = RAW_KEYS if refresh_pending(instance, models, bound) else []
    daily_keys = [dg.AssetKey(n) for n in _names(models, "daily")]
    labels = {**REASONS, **{key: "days rebuilt" for key in daily_keys}}
    keys = trigger_keys(models, stage)
    found = touched_since(
        instance,
        keys,
        cursor,
        months_of_partitions=daily_keys if stage == "monthly" else (),
        until={key: bound for key in held},
        labels={k: labels.get(k, f"{k.to_user_string()} changed") for k in keys},
        left_out=_left_out(instance, models, stage),
    )
    if stage == "daily":
        found.days = within_partitions(found, "daily", now)
        return found
    inside = within_partitions(found, "monthly", now, early_as_first=True)
    first, last = bounds("monthly", now)
    found.months = month_span(inside, last_month_built(instance, models), first, last)
    found.note(found.months - inside, "months after a changed month")
    found.partial = {m: names for m, names in found.partial.items() if m not in found.months}
    return found


def refresh_inputs(models: Sequence[Model]) -> list[dg.AssetKey]:
    """The raw assets that unpartitioned models read (usage events are read by daily ones only)."""
    read = {
        asset_key_for_table(r.table)
        for m in models
        if m.partitioning is None
        for r in m.reads.values()
        if r.table.startswith("raw.")
    }
    return [key for key in RAW_KEYS if key in read]


def refresh_trigger(
    instance: dg.DagsterInstance, models: Sequence[Model], through: int | None = None
) -> int | None:
    """The storage id of the newest change the unpartitioned models have not caught up with, or
    None when they are up to date: a refresh input ingested after they last caught up (or they
    were never built), or an unpartitioned model materialized by a run that left out some of
    its unpartitioned descendants (a materialization from the UI) newer than those.
    ``through``: ``refreshed_through`` when already known."""
    if through is None:
        through = refreshed_through(instance, models)
    latest = max(latest_storage_ids(instance, refresh_inputs(models)).values(), default=0)
    due = [latest] if through == 0 or latest > through else []
    left_out = _left_out(instance, models, None)
    for name, below in descendants(models, None).items():
        if not below:
            continue
        page = instance.fetch_materializations(dg.AssetKey(name), limit=1)
        if not page.records:
            continue
        record = page.records[0]
        behind = [
            n
            for n in left_out(record)
            if latest_storage_id(instance, dg.AssetKey(n)) < record.storage_id
        ]
        if behind:
            due.append(record.storage_id)
    return max(due) if due else None


def refresh_pending(
    instance: dg.DagsterInstance, models: Sequence[Model], through: int | None = None
) -> bool:
    """True when the unpartitioned models must be refreshed (``refresh_trigger``)."""
    return refresh_trigger(instance, models, through) is not None


def refreshed_through(instance: dg.DagsterInstance, models: Sequence[Model]) -> int:
    """The storage id up to which every unpartitioned model has caught up with ingestion."""
    keys = [dg.AssetKey(name) for name in _names(models, None)]
    return min(latest_storage_ids(instance, keys).values(), default=0)


def last_month_built(instance: dg.DagsterInstance, models: Sequence[Model]) -> dt.date | None:
    """The latest month partition any monthly model has materialized."""
    built = [
        dt.date.fromisoformat(key)
        for name in _names(models, "monthly")
        for key in instance.get_materialized_partitions(dg.AssetKey(name))
    ]
    return max(built, default=None)
