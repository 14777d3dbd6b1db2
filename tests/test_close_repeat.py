"""Month closes after late data, on a real embedded lakehouse, the late data brought in by the
sensors as the daemon would (each sensor evaluated against the instance, each request run):

- September's close is interrupted after its tag and before its record; closing it again later
  repairs the record from the tagged snapshot, not from the facts as they are by then;
- one late CRM change (Ann turned Mid-Market on 09-20) restates both closed months, and late
  usage restates each month's own measures;
- closing October again after the late data changes nothing: same tag, snapshot, closed_at and
  totals as closed, and the restatements are untouched.
Every expected value is worked out in the comments."""

import datetime as dt
import hashlib
from decimal import Decimal

import dagster as dg
import pytest

from c360_assets.definitions import all_models
from c360_assets.defs.close import assets as close_assets
from c360_assets.defs.close.assets import close_month
from c360_assets.tools.runner import QUIET
from tests.records import billing_customer, crm_account, event, invoice, subscription

SEP, OCT = dt.date(2026, 9, 1), dt.date(2026, 10, 1)


def key(natural: str) -> str:
    return hashlib.md5(natural.encode()).hexdigest()[:16]


ANN = key("crm:acc_1")  # acc_1 -> cus_1 -> t1
BOB = key("crm:acc_2")  # acc_2 -> cus_2 -> t2


def drop_two_months(lake) -> None:
    lake.drop(
        "crm/accounts",
        "2026-09-01.jsonl",
        [
            crm_account(crm_account_id="acc_1", owner_name="Ann", billing_customer_id="cus_1"),
            crm_account(
                crm_account_id="acc_2",
                owner_name="Bob",
                segment="Mid-Market",
                region="EMEA",
                billing_customer_id="cus_2",
            ),
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(billing_customer_id="cus_1", tenant_id="t1", crm_account_id="acc_1"),
            billing_customer(billing_customer_id="cus_2", tenant_id="t2", crm_account_id="acc_2"),
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(subscription_id="sub_1", billing_customer_id="cus_1"),
            subscription(subscription_id="sub_2", billing_customer_id="cus_2", plan_code="starter"),
        ],
    )
    lake.drop(
        "billing/invoices",
        "invoices.jsonl",
        [
            invoice(invoice_id="inv_s", issued_at="2026-09-05T00:00:00Z", subtotal_minor=10000),
            invoice(invoice_id="inv_1", issued_at="2026-10-05T00:00:00Z", subtotal_minor=51400),
            invoice(
                invoice_id="inv_2",
                billing_customer_id="cus_2",
                issued_at="2026-10-05T00:00:00Z",
                subtotal_minor=20000,
            ),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            event(event_id="s1", tenant_id="t1", occurred_at="2026-09-10T10:00:00Z", quantity=4),
            event(event_id="s2", tenant_id="t1", occurred_at="2026-09-10T11:00:00Z", quantity=6),
            event(event_id="o1", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z", quantity=5),
            event(event_id="o2", tenant_id="t1", occurred_at="2026-10-02T11:00:00Z", quantity=5),
            event(event_id="o3", tenant_id="t1", occurred_at="2026-10-02T12:00:00Z", quantity=5),
            event(event_id="o4", tenant_id="t2", occurred_at="2026-10-03T10:00:00Z", quantity=1),
            event(event_id="o5", tenant_id="t2", occurred_at="2026-10-03T11:00:00Z", quantity=2),
        ],
    )


def drop_late_data(lake) -> None:
    # a snapshot taken 10-16 shows Ann's account turned Mid-Market on 09-20 (the CRM's
    # updated_at): the segment at the last instant of September and of October changes
    lake.drop(
        "crm/accounts",
        "2026-10-16.jsonl",
        [
            crm_account(
                crm_account_id="acc_1",
                owner_name="Ann",
                segment="Mid-Market",
                billing_customer_id="cus_1",
                updated_at="2026-09-20T00:00:00Z",
                snapshot_at="2026-10-16T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "usage_events",
        "late.jsonl",
        [
            event(event_id="late1", tenant_id="t2", occurred_at="2026-09-30T10:00:00Z", quantity=2),
            event(
                event_id="late2", tenant_id="t1", occurred_at="2026-10-01T10:00:00Z", quantity=12
            ),
        ],
    )


def close(lake, month: dt.date):
    return close_month(lake.lakehouse, lake.instance, lake.definitions(), all_models(), month)


def totals(rows: int, events: int, units: int, invoiced: str, net: str) -> dict[str, int | Decimal]:
    zero = Decimal("0.00")
    return {
        "rows": rows,
        "customers": rows,
        "usage_events": events,
        "usage_units": units,
        "billed_usage_units": 0,
        "invoiced_usd": Decimal(invoiced),
        "credits_usd": zero,
        "refunds_usd": zero,
        "net_revenue_usd": Decimal(net),
    }


# as closed: September: Ann 2 events, 4 + 6 = 10 units, inv_s 100.00; Bob a row of zeros (his
# subscription started 09-01). October: Ann 3 x 5 = 15 units, Bob 1 + 2 = 3: 5 events, 18
# units; inv_1 514.00 + inv_2 200.00 = 714.00
SEPTEMBER = totals(2, 2, 10, "100.00", "100.00")
OCTOBER = totals(2, 5, 18, "714.00", "714.00")


def restatements(lake) -> dict[tuple, tuple]:
    return {
        (r["month"], r["customer_key"], r["measure"]): (r["as_closed"], r["restated"])
        for r in lake.rows("marts.restatements")
    }


def closes(lake) -> dict[dt.date, dict]:
    return {r["month"]: r for r in lake.rows("marts.month_closes")}


def run_requests(lake, defs, requests, job: str) -> None:
    for request in requests:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=lake.instance, tags=request.tags, run_config=QUIET
        )
        assert result.success, request.tags


def tick(lake, defs, sensor: str, cursor: str | None):
    context = dg.build_sensor_context(
        instance=lake.instance,
        cursor=cursor,
        definitions=defs,
        resources={"lakehouse": lake.lakehouse},
    )
    return defs.resolve_sensor_def(sensor)(context), context.cursor


def ranges(requests) -> list[tuple[str, str]]:
    return sorted(
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in requests
    )


def test_closes_survive_late_data_an_interruption_and_a_repeat(module_lake, monkeypatch):
    lake = module_lake
    drop_two_months(lake)
    assert lake.run().rebuilt == {
        "daily": ["2026-09-10", "2026-10-02", "2026-10-03"],
        "monthly": ["2026-09-01", "2026-10-01"],
    }
    october = close(lake, OCT)
    assert (october.tag, october.already_closed, october.totals) == (
        "close-2026-10",
        False,
        OCTOBER,
    )

    # September's close stops after tagging, before its record (as a killed process would)
    def killed(*args):
        raise RuntimeError("killed after the tag")

    with monkeypatch.context() as patched:
        patched.setattr(close_assets, "_record", killed)
        with pytest.raises(RuntimeError, match="killed"):
            close(lake, SEP)
    tagged = lake.lakehouse.tag_snapshot_id("marts.fct_customer_month", "close-2026-09")
    assert tagged == october.snapshot_id  # nothing was written between the two closes
    assert set(closes(lake)) == {OCT}

    # the sensors' first ticks: their cursors (what they request now, lake.run already built)
    defs = lake.definitions()
    _, daily_cursor = tick(lake, defs, "daily_partitions_sensor", None)
    _, monthly_cursor = tick(lake, defs, "monthly_partitions_sensor", None)

    # the late data, through the sensors: ingestion, the refresh (a CRM file), the days, the months
    drop_late_data(lake)
    for job in ("ingest_job", "refresh_job"):
        assert (
            defs.resolve_job_def(job)
            .execute_in_process(instance=lake.instance, run_config=QUIET)
            .success
        )
    days, daily_cursor = tick(lake, defs, "daily_partitions_sensor", daily_cursor)
    assert ranges(days) == [("2026-09-30", "2026-10-01")]  # one range: consecutive days
    run_requests(lake, defs, days, "daily_job")
    # the months: September (the CRM change's version starts in it, and day 09-30) through
    # October (day 10-01, the last month built), one request for the span
    months, monthly_cursor = tick(lake, defs, "monthly_partitions_sensor", monthly_cursor)
    assert ranges(months) == [("2026-09-01", "2026-10-01")]
    assert months[0].run_key.startswith("monthly:2026-09-01:2026-10-01:")
    run_requests(lake, defs, months, "monthly_job")
    again, _ = tick(lake, defs, "monthly_partitions_sensor", monthly_cursor)
    assert isinstance(again, dg.SkipReason)

    # September: Ann's segment; Bob's late event on 09-30 (1 event, 2 units, 1 day, 1 product).
    # October: Ann's segment; her late 12 units on 10-01 (3 -> 4 events, 15 -> 27 units, 1 -> 2
    # days). Bob's October is unchanged. The usage-billing reconciliation, tagged by the same
    # closes, restates its metered units the same way (= usage_units); nothing it expects or
    # finds billed changes (the late units stay within the plans' included units, or no plan).
    assert restatements(lake) == {
        (SEP, ANN, "segment"): ("SMB", "Mid-Market"),
        (SEP, BOB, "usage_events"): ("0", "1"),
        (SEP, BOB, "usage_units"): ("0", "2"),
        (SEP, BOB, "active_days"): ("0", "1"),
        (SEP, BOB, "products_used"): ("0", "1"),
        (OCT, ANN, "segment"): ("SMB", "Mid-Market"),
        (OCT, ANN, "usage_events"): ("3", "4"),
        (OCT, ANN, "usage_units"): ("15", "27"),
        (OCT, ANN, "active_days"): ("1", "2"),
        (SEP, BOB, "metered_units"): ("0", "2"),
        (OCT, ANN, "metered_units"): ("15", "27"),
    }
    restated = lake.rows("marts.restatements", order_by=("month", "customer_key", "measure"))

    # October closed again: a no-op that reports the close as it was
    repeat = close(lake, OCT)
    assert repeat.already_closed
    assert (repeat.tag, repeat.snapshot_id, repeat.closed_at) == (
        october.tag,
        october.snapshot_id,
        october.closed_at,
    )
    assert repeat.totals == OCTOBER  # as closed: not the 6 events and 30 units of today
    assert lake.rows("marts.restatements", order_by=("month", "customer_key", "measure")) == (
        restated
    )

    # September closed again: the interrupted close is repaired from its tag, so its record
    # holds September as closed (2 events, 10 units), not as restated (3 events, 12 units)
    repaired = close(lake, SEP)
    assert (repaired.already_closed, repaired.tag, repaired.snapshot_id) == (
        True,
        "close-2026-09",
        tagged,
    )
    assert repaired.totals == SEPTEMBER
    recorded = closes(lake)
    assert set(recorded) == {SEP, OCT}
    assert (recorded[SEP]["tag"], recorded[SEP]["snapshot_id"]) == ("close-2026-09", tagged)
    assert recorded[OCT]["closed_at"] == october.closed_at
    materialized = lake.instance.fetch_materializations(dg.AssetKey("month_closes"), limit=10)
    assert sorted(r.asset_materialization.partition for r in materialized.records) == [
        "2026-09-01",
        "2026-10-01",
    ]
    # and once repaired, a close is a no-op like any other
    assert close(lake, SEP).closed_at == recorded[SEP]["closed_at"]
