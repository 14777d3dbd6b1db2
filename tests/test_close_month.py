"""`c360 close-month` and marts.restatements on a real embedded lakehouse: a closed month is
restated by late usage, a late credit note and a late CRM snapshot; closing twice is a no-op;
a month whose blocking checks fail is refused. Expected values are worked out in the comments."""

import datetime as dt
import hashlib

import dagster as dg
import pytest

from c360_assets.definitions import all_models
from c360_assets.defs.close.assets import CloseRefused, as_closed, close_month
from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG
from c360_assets.tools.cli import main
from c360_assets.tools.runner import run_pipeline
from tests.records import (
    billing_customer,
    credit_note,
    crm_account,
    event,
    fx_rate,
    invoice,
    line_item,
    subscription,
)

OCTOBER = dt.date(2026, 10, 1)
RESTATEMENTS = "marts.restatements"
FACTS, RECONCILIATION = "marts.fct_customer_month", "marts.fct_usage_billing_reconciliation"


def key(natural: str) -> str:
    return hashlib.md5(natural.encode()).hexdigest()[:16]


ANN = key("crm:acc_1")  # CRM account acc_1 -> billing customer cus_1 -> tenant t1
BOB = key("crm:acc_2")  # CRM account acc_2 -> billing customer cus_2 -> tenant t2


def drop_october(lake, bob_currency="USD", ann_included_units=1000):
    """Two customers, both on a subscription since 09-01 (5 per unit beyond the included units);
    October usage and one invoice each."""
    lake.drop(
        "crm/accounts",
        "2026-10-01.jsonl",
        [
            crm_account(
                crm_account_id="acc_1",
                account_name="Ann's company",
                owner_name="Ann",
                segment="SMB",
                region="NA",
                billing_customer_id="cus_1",
                updated_at="2026-09-01T00:00:00Z",
                snapshot_at="2026-10-01T00:00:00Z",
            ),
            crm_account(
                crm_account_id="acc_2",
                account_name="Bob's company",
                owner_name="Bob",
                segment="Mid-Market",
                region="EMEA",
                billing_customer_id="cus_2",
                updated_at="2026-09-01T00:00:00Z",
                snapshot_at="2026-10-01T00:00:00Z",
            ),
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(billing_customer_id="cus_1", tenant_id="t1", crm_account_id="acc_1"),
            billing_customer(
                billing_customer_id="cus_2",
                tenant_id="t2",
                crm_account_id="acc_2",
                currency=bob_currency,
            ),
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(
                subscription_id="sub_1",
                billing_customer_id="cus_1",
                plan_code="growth",
                included_units=ann_included_units,
            ),
            subscription(subscription_id="sub_2", billing_customer_id="cus_2", plan_code="starter"),
        ],
    )
    lake.drop(
        "billing/invoices",
        "invoices.jsonl",
        [
            invoice(
                invoice_id="inv_1",
                billing_customer_id="cus_1",
                issued_at="2026-10-05T00:00:00Z",
                subtotal_minor=51400,
                tax_minor=0,
            ),
            invoice(
                invoice_id="inv_2",
                billing_customer_id="cus_2",
                currency=bob_currency,
                issued_at="2026-10-05T00:00:00Z",
                subtotal_minor=20000,
                tax_minor=0,
            ),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z", quantity=5),
            event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T11:00:00Z", quantity=5),
            event(event_id="e3", tenant_id="t1", occurred_at="2026-10-02T12:00:00Z", quantity=5),
            event(event_id="e4", tenant_id="t2", occurred_at="2026-10-03T10:00:00Z", quantity=1),
            event(event_id="e5", tenant_id="t2", occurred_at="2026-10-03T11:00:00Z", quantity=2),
        ],
    )


def close(lake, month=OCTOBER):
    return close_month(lake.lakehouse, lake.instance, lake.definitions(), all_models(), month)


def restated(lake, table: str = FACTS) -> dict[tuple, tuple]:
    return {
        (r["month"], r["customer_key"], r["measure"]): (r["as_closed"], r["restated"])
        for r in lake.rows(RESTATEMENTS)
        if r["table_name"] == table
    }


def detected(lake) -> dict[tuple, dt.datetime]:
    return {(r["customer_key"], r["measure"]): r["detected_at"] for r in lake.rows(RESTATEMENTS)}


def drop_ann_late_usage(lake):
    """12 more units for Ann on 10-20, arriving after October was closed."""
    lake.drop(
        "usage_events",
        "late.jsonl",
        [event(event_id="e6", tenant_id="t1", occurred_at="2026-10-20T10:00:00Z", quantity=12)],
    )


def billed_october(line_item_id: str, units: int) -> dict:
    """A usage line on inv_3 (the November billing run) for Ann's October: 5 per unit."""
    return line_item(
        line_item_id=line_item_id,
        invoice_id="inv_3",
        kind="usage",
        product="fraud_score",
        quantity=units,
        amount_minor=units * 5,
        service_period_start="2026-10-01T00:00:00Z",
        service_period_end="2026-11-01T00:00:00Z",
    )


def test_a_closed_month_is_restated_by_late_data_and_stays_queryable_as_closed(lake, capsys):
    drop_october(lake)
    lake.run()

    result = close(lake)
    # October as reported: Ann 3 events x 5 = 15 units on 1 day, invoice 514.00 USD;
    # Bob 2 events, 1 + 2 = 3 units, invoice 200.00 USD. Totals: 2 rows, 5 events, 18 units,
    # 714.00 invoiced, no credits or refunds.
    assert (result.tag, result.already_closed) == ("close-2026-10", False)
    totals = result.totals
    assert (totals["rows"], totals["usage_events"], totals["usage_units"]) == (2, 5, 18)
    assert (str(totals["invoiced_usd"]), str(totals["net_revenue_usd"])) == ("714.00", "714.00")
    (closes,) = lake.rows("marts.month_closes")
    assert (closes["month"], closes["tag"], closes["snapshot_id"]) == (
        OCTOBER,
        "close-2026-10",
        result.snapshot_id,
    )
    assert lake.lakehouse.load("marts.fct_customer_month").refs()["close-2026-10"].snapshot_id == (
        result.snapshot_id
    )
    # the close is a materialization of the month_closes asset, with its metadata
    (record,) = lake.instance.fetch_materializations(dg.AssetKey("month_closes"), limit=5).records
    materialization = record.asset_materialization
    assert materialization.partition == "2026-10-01"
    assert materialization.metadata["tag"].value == "close-2026-10"

    # Closing again is a no-op: same tag and snapshot, no second record or materialization.
    again = close(lake)
    assert (again.already_closed, again.snapshot_id) == (True, result.snapshot_id)
    assert main(["close-month", "2026-10"]) == 0
    assert "already closed" in capsys.readouterr().out
    assert len(lake.rows("marts.month_closes")) == 1
    assert (
        len(lake.instance.fetch_materializations(dg.AssetKey("month_closes"), limit=5).records) == 1
    )

    # Late data for October: Ann uses 12 more units on 10-20, and a 20.00 USD credit note on
    # inv_1 is issued 10-25. Ann's October: events 3 -> 4, units 15 -> 27, active days 1 -> 2,
    # credits 0.00 -> 20.00, net 514.00 -> 494.00. Bob's October is unchanged: no rows for him.
    drop_ann_late_usage(lake)
    lake.drop(
        "billing/credit_notes",
        "credit_notes.jsonl",
        [
            credit_note(
                credit_note_id="cn_1",
                invoice_id="inv_1",
                amount_minor=2000,
                currency="USD",
                issued_at="2026-10-25T00:00:00Z",
            )
        ],
    )
    lake.run()
    usage_and_credit = {
        (OCTOBER, ANN, "usage_events"): ("3", "4"),
        (OCTOBER, ANN, "usage_units"): ("15", "27"),
        (OCTOBER, ANN, "active_days"): ("1", "2"),
        (OCTOBER, ANN, "credits_usd"): ("0.00", "20.00"),
        (OCTOBER, ANN, "net_revenue_usd"): ("514.00", "494.00"),
    }
    assert restated(lake) == usage_and_credit
    # October is still pending (no billing run since): only the metered units change there
    assert restated(lake, RECONCILIATION) == {(OCTOBER, ANN, "metered_units"): ("15", "27")}
    first_seen = detected(lake)

    # A late CRM snapshot: Ann's account turned Mid-Market on 10-15 (the CRM's updated_at), so
    # October's segment as of its last instant is Mid-Market. The earlier restatements keep
    # their detection time; the new one is added.
    lake.drop(
        "crm/accounts",
        "2026-11-02.jsonl",
        [
            crm_account(
                crm_account_id="acc_1",
                account_name="Ann's company",
                owner_name="Ann",
                segment="Mid-Market",
                region="NA",
                billing_customer_id="cus_1",
                updated_at="2026-10-15T00:00:00Z",
                snapshot_at="2026-11-02T00:00:00Z",
            )
        ],
    )
    lake.run()
    assert restated(lake) == {
        **usage_and_credit,
        (OCTOBER, ANN, "segment"): ("SMB", "Mid-Market"),
    }
    assert restated(lake, RECONCILIATION) == {(OCTOBER, ANN, "metered_units"): ("15", "27")}
    now_seen = detected(lake)
    assert {k: now_seen[k] for k in first_seen} == first_seen

    # Rebuilding October again changes nothing, detection times included.
    job = lake.definitions().resolve_job_def("monthly_job")
    tags = {RANGE_START_TAG: "2026-10-01", RANGE_END_TAG: "2026-10-01"}
    assert job.execute_in_process(instance=lake.instance, tags=tags).success
    assert detected(lake) == now_seen

    # The as-closed figures stay readable from the tag (time travel), unchanged.
    frozen = {r["customer_key"]: r for r in as_closed(lake.lakehouse, OCTOBER).to_pylist()}
    assert (frozen[ANN]["usage_units"], frozen[ANN]["segment"]) == (15, "SMB")
    assert str(frozen[ANN]["net_revenue_usd"]) == "514.00"
    current = {
        r["customer_key"]: r for r in lake.rows("marts.fct_customer_month") if r["month"] == OCTOBER
    }
    assert current[ANN]["usage_units"] == 27


def test_a_month_whose_blocking_checks_fail_is_refused(lake, capsys):
    # Bob is billed in EUR and no FX rate exists: October's USD measures cannot be computed,
    # so fct_customer_month's blocking check fx_rates_available fails for October.
    drop_october(lake, bob_currency="EUR")
    report = run_pipeline(lake.definitions(), lake.instance, all_models())
    assert report.failed_checks == ["fct_customer_month:fx_rates_available"]

    with pytest.raises(CloseRefused, match="fct_customer_month:fx_rates_available"):
        close(lake)
    assert main(["close-month", "2026-10"]) == 1
    assert "REFUSED" in capsys.readouterr().err
    assert lake.lakehouse.tag_snapshot_id("marts.fct_customer_month", "close-2026-10") is None
    assert not lake.lakehouse.table_exists("marts.month_closes")
    # a month with no facts at all is refused too
    with pytest.raises(CloseRefused, match="no rows"):
        close(lake, dt.date(2027, 1, 1))

    # Once the rate lands the month rebuilds, its checks pass and it closes.
    lake.drop(
        "billing/fx_rates",
        "rates.jsonl",
        [fx_rate(rate_date="2026-10-05", currency="EUR", usd_per_unit="1.10")],
    )
    lake.run()
    result = close(lake)
    # Bob: 200.00 EUR x 1.10 = 220.00 USD; with Ann's 514.00 -> 734.00 invoiced
    assert str(result.totals["invoiced_usd"]) == "734.00"


def test_a_closed_months_usage_billing_reconciliation_is_restated(lake, capsys):
    # Ann's plan includes 10 units; the November billing run (issued 11-01) bills her October:
    # 15 used, 5 beyond the plan, 5 x 5 = 25 expected and billed. October is judged: ok.
    drop_october(lake, ann_included_units=10)
    lake.drop(
        "billing/invoices",
        "invoices_2026-11-01.jsonl",
        [
            invoice(
                invoice_id="inv_3",
                billing_customer_id="cus_1",
                period_start="2026-11-01T00:00:00Z",
                period_end="2026-12-01T00:00:00Z",
                issued_at="2026-11-01T01:00:00Z",
                subtotal_minor=25,
                tax_minor=0,
            )
        ],
    )
    lake.drop("billing/invoice_line_items", "lines.jsonl", [billed_october("li_3", 5)])
    lake.run()
    october = {r["customer_key"]: r for r in lake.rows(RECONCILIATION) if r["month"] == OCTOBER}
    assert (october[ANN]["status"], october[ANN]["amount_gap_minor"]) == ("ok", 0)

    # the close tags both tables with the month's tag
    assert main(["close-month", "2026-10"]) == 0
    printed = capsys.readouterr().out
    assert f"tagged close-2026-10 on {FACTS} (snapshot" in printed and RECONCILIATION in printed
    frozen = lake.lakehouse.tag_snapshot_id(RECONCILIATION, "close-2026-10")
    assert frozen == lake.lakehouse.current_snapshot_id(RECONCILIATION)

    # Late usage: 12 more units on 10-20. Ann's October: 27 used, 17 x 5 = 85 expected, 25
    # billed: underbilled by 12 units, 60; in USD 0.25 -> 0.85 expected, gap 0.00 -> -0.60.
    drop_ann_late_usage(lake)
    lake.run()
    expected_more = {
        (OCTOBER, ANN, "metered_units"): ("15", "27"),
        (OCTOBER, ANN, "expected_overage_units"): ("5", "17"),
        (OCTOBER, ANN, "expected_overage_minor"): ("25", "85"),
        (OCTOBER, ANN, "expected_overage_usd"): ("0.25", "0.85"),
    }
    assert restated(lake, RECONCILIATION) == {
        **expected_more,
        (OCTOBER, ANN, "unit_gap"): ("0", "-12"),
        (OCTOBER, ANN, "amount_gap_minor"): ("0", "-60"),
        (OCTOBER, ANN, "amount_gap_usd"): ("0.00", "-0.60"),
        (OCTOBER, ANN, "status"): ("ok", "underbilled"),
    }
    assert restated(lake) == {
        (OCTOBER, ANN, "usage_events"): ("3", "4"),
        (OCTOBER, ANN, "usage_units"): ("15", "27"),
        (OCTOBER, ANN, "active_days"): ("1", "2"),
    }

    # A late usage line bills the 12 units (60): the gap and the status are back to their
    # as-closed values (no restatement left for them); what was billed is restated.
    lake.drop("billing/invoice_line_items", "late_lines.jsonl", [billed_october("li_4", 12)])
    lake.run()
    assert restated(lake, RECONCILIATION) == {
        **expected_more,
        (OCTOBER, ANN, "billed_units"): ("5", "17"),
        (OCTOBER, ANN, "billed_overage_minor"): ("25", "85"),
        (OCTOBER, ANN, "billed_overage_usd"): ("0.25", "0.85"),
    }
    assert restated(lake)[OCTOBER, ANN, "billed_usage_units"] == ("5", "17")
    # the as-closed reconciliation stays readable from its tag
    as_closed_rows = lake.lakehouse.scan(RECONCILIATION, snapshot_id=frozen).to_pylist()
    closed_ann = next(
        r for r in as_closed_rows if r["month"] == OCTOBER and r["customer_key"] == ANN
    )
    assert (closed_ann["billed_units"], closed_ann["status"]) == (5, "ok")
