"""The planners on hand-worked values: partitions (lib/partitions.py), the touched days and months
(lib/plan.py) and the run plan of the sensors and ``c360 run`` (defs/automation/jobs.py), against
a real (ephemeral, in-memory) Dagster instance: no server, no lakehouse."""

import datetime as dt

import dagster as dg
import pytest

from c360_assets.definitions import all_models
from c360_assets.defs.automation.jobs import (
    refresh_inputs,
    refresh_pending,
    refreshed_through,
    touched,
)
from c360_assets.lib.partitions import (
    advance,
    contiguous_ranges,
    month_of,
    partition_key,
    range_tags,
)
from c360_assets.lib.plan import latest_storage_id, month_span, touched_since


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def days(*texts: str) -> set[dt.date]:
    return {day(t) for t in texts}


# -- partitions ------------------------------------------------------------------------------
def test_contiguous_ranges_group_consecutive_partitions():
    assert contiguous_ranges([day("2026-10-03"), day("2026-10-01"), day("2026-10-02")]) == [
        (day("2026-10-01"), day("2026-10-03"))
    ]
    assert contiguous_ranges(days("2026-10-05", "2026-09-30", "2026-10-01", "2026-10-07")) == [
        (day("2026-09-30"), day("2026-10-01")),
        (day("2026-10-05"), day("2026-10-05")),
        (day("2026-10-07"), day("2026-10-07")),
    ]
    # months: December -> January continues a range, February is missing
    months = days("2026-11-01", "2026-12-01", "2027-01-01", "2027-03-01")
    assert contiguous_ranges(months, "monthly") == [
        (day("2026-11-01"), day("2027-01-01")),
        (day("2027-03-01"), day("2027-03-01")),
    ]
    assert contiguous_ranges([]) == []


def test_advance_counts_partitions_across_month_and_year_ends():
    assert advance(day("2024-02-28"), "daily", 2) == day("2024-03-01")  # 2024-02-29 exists
    assert advance(day("2026-12-31"), "daily") == day("2027-01-01")
    assert advance(day("2024-01-01"), "monthly", 14) == day("2025-03-01")
    assert advance(day("2026-01-01"), "monthly", 0) == day("2026-01-01")
    assert month_of(day("2026-10-31")) == day("2026-10-01")


def test_partition_keys_and_range_tags():
    assert partition_key(day("2026-10-17")) == "2026-10-17"
    assert partition_key(day("2026-10-17"), "monthly") == "2026-10-01"
    assert range_tags(day("2026-09-01"), day("2026-10-01"), "monthly") == {
        "dagster/asset_partition_range_start": "2026-09-01",
        "dagster/asset_partition_range_end": "2026-10-01",
    }


# -- month_span ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("months", "last_built", "span"),
    [
        ((), None, ()),
        (("2026-10-01",), None, ("2026-10-01",)),
        # a gap between touched months is filled: later months depend on earlier ones
        (("2026-08-01", "2026-10-01"), None, ("2026-08-01", "2026-09-01", "2026-10-01")),
        # through the last month built
        (("2026-10-01",), "2026-12-01", ("2026-10-01", "2026-11-01", "2026-12-01")),
        # built only up to July: from August (the month after it) through the touched October
        (("2026-10-01",), "2026-07-01", ("2026-08-01", "2026-09-01", "2026-10-01")),
        # before the partitions: their first month; after them: nothing
        (("2023-05-01",), None, ("2024-01-01",)),
        (("2031-01-01", "2031-02-01"), "2026-10-01", ()),
    ],
)
def test_month_span(months, last_built, span):
    built = day(last_built) if last_built else None
    # the monthly partitions: 2024-01 through 2030-12
    assert month_span(days(*months), built, day("2024-01-01"), day("2030-12-01")) == days(*span)


# -- touched_since ---------------------------------------------------------------------------
@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def materialize(instance, asset: str, partition: str | None = None, **touched_) -> int:
    """Report a materialization of ``asset`` naming ``touched_dates`` / ``touched_months``;
    returns its storage id."""
    metadata = {name: dg.MetadataValue.json(values) for name, values in touched_.items()}
    key = dg.AssetKey(asset)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata)
    )
    return latest_storage_id(instance, key)


USAGE, INVOICES = dg.AssetKey("raw_usage_events"), dg.AssetKey("raw_billing_invoices")


def test_touched_since_reads_every_materialization_after_the_cursor(instance):
    first = materialize(instance, "raw_usage_events", touched_dates=["2026-10-01"])
    second = materialize(instance, "raw_usage_events", touched_dates=["2026-10-02", "2026-10-03"])
    months = materialize(instance, "raw_billing_invoices", touched_months=["2026-09-01"])

    found = touched_since(instance, [USAGE, INVOICES], {})
    assert found.days == days("2026-10-01", "2026-10-02", "2026-10-03")
    assert found.months == days("2026-09-01")
    assert found.cursor == {"raw_usage_events": second, "raw_billing_invoices": months}

    # after the first: only the second; nothing new: nothing, and the cursor stays
    assert touched_since(instance, [USAGE], {"raw_usage_events": first}).days == days(
        "2026-10-02", "2026-10-03"
    )
    again = touched_since(instance, [USAGE, INVOICES], found.cursor)
    assert again.empty and again.cursor == found.cursor


def test_touched_since_turns_daily_partitions_into_months_and_holds_records_back(instance):
    materialize(instance, "fct_usage_daily", partition="2026-09-30")
    materialize(instance, "fct_usage_daily", partition="2026-10-01")
    key = dg.AssetKey("fct_usage_daily")
    assert touched_since(instance, [key], {}).months == set()
    assert touched_since(instance, [key], {}, months_of_partitions=[key]).months == days(
        "2026-09-01", "2026-10-01"
    )

    first = materialize(instance, "raw_usage_events", touched_dates=["2026-10-01"])
    materialize(instance, "raw_usage_events", touched_dates=["2026-10-02"])
    # records after `first` are held back: not read, and the cursor stops before them
    held = touched_since(instance, [USAGE], {}, until={USAGE: first})
    assert (held.days, held.cursor) == (days("2026-10-01"), {"raw_usage_events": first})


def test_touched_since_pages_through_many_materializations(instance, monkeypatch):
    monkeypatch.setattr("c360_assets.lib.plan.PAGE", 2)
    for d in range(1, 6):
        materialize(instance, "raw_usage_events", touched_dates=[f"2026-10-0{d}"])
    found = touched_since(instance, [USAGE], {})
    assert found.days == {day(f"2026-10-0{d}") for d in range(1, 6)}


# -- the run plan of the sensors and `c360 run` ------------------------------------------------
UNPARTITIONED = [m.name for m in all_models() if m.partitioning is None]


def refresh(instance, **touched_) -> None:
    """Every unpartitioned model materialized once (a refresh run), the identity model naming
    ``touched_``."""
    for name in UNPARTITIONED:
        materialize(instance, name, **(touched_ if name == "int_tenants_resolved" else {}))


def test_refresh_inputs_are_the_raw_tables_unpartitioned_models_read():
    assert [k.to_user_string() for k in refresh_inputs(all_models())] == [
        "raw_billing_customers",
        "raw_billing_subscriptions",
        "raw_billing_invoices",
        "raw_billing_invoice_line_items",
        "raw_billing_credit_notes",
        "raw_billing_refunds",
        "raw_billing_fx_rates",
        "raw_crm_accounts",
    ]


def test_a_refresh_is_pending_until_every_unpartitioned_model_caught_up(instance):
    models = all_models()
    assert refresh_pending(instance, models)  # never built
    materialize(instance, "raw_billing_customers")
    refresh(instance)
    assert not refresh_pending(instance, models)
    # the refresh caught up through its first model's materialization
    first = latest_storage_id(instance, dg.AssetKey(UNPARTITIONED[0]))
    assert refreshed_through(instance, models) == first
    materialize(instance, "raw_usage_events", touched_dates=["2026-10-01"])
    assert not refresh_pending(instance, models)  # usage is read by daily models only
    materialize(instance, "raw_crm_accounts")
    assert refresh_pending(instance, models)


def test_touched_days_wait_for_a_pending_refresh(instance):
    models = all_models()
    materialize(instance, "raw_billing_customers")
    refresh(instance, touched_dates=["2026-09-15"])  # a tenant remap re-derives 09-15
    materialize(instance, "raw_usage_events", touched_dates=["2026-10-01", "2026-10-02"])
    found = touched(instance, models, "daily", {})
    assert found.days == days("2026-09-15", "2026-10-01", "2026-10-02")

    # new billing data: usage ingested after it waits until the refresh has run
    materialize(instance, "raw_billing_invoices", touched_months=["2026-09-01"])
    materialize(instance, "raw_usage_events", touched_dates=["2026-10-03"])
    waiting = touched(instance, models, "daily", found.cursor)
    assert waiting.days == set()
    refresh(instance)
    assert touched(instance, models, "daily", found.cursor).days == days("2026-10-03")


def test_touched_months_span_through_the_last_month_built(instance):
    models = all_models()
    materialize(instance, "raw_billing_customers")
    refresh(instance)
    materialize(instance, "fct_customer_month", partition="2026-11-01")  # built through November
    cursor = touched(instance, models, "monthly", {}).cursor
    # an invoice issued in August and a rebuilt 2026-10-02: August through November
    materialize(instance, "raw_billing_invoices", touched_months=["2026-08-01"])
    refresh(instance)
    materialize(instance, "fct_usage_daily", partition="2026-10-02")
    found = touched(instance, models, "monthly", cursor)
    assert found.months == days("2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01")
