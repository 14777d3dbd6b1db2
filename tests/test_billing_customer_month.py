"""Billing documents to marts.fct_invoice_reconciliation and marts.fct_customer_month, on a real
embedded lakehouse. One hand-built scenario, two runs; every expected value is worked out in the
comments next to it."""

import hashlib
from decimal import Decimal

import dagster as dg

from c360_assets.definitions import all_models, build_definitions
from c360_assets.tools.runner import run_pipeline
from tests.records import (
    billing_customer,
    credit_note,
    crm_account,
    event,
    fx_rate,
    invoice,
    line_item,
    refund,
    subscription,
)

USD = Decimal


def key(natural: str) -> str:
    """The durable customer_key: first 16 hex of md5('crm:<id>') or md5('billing:<id>')."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


ACME = key("crm:acc_A")  # billing customer cus_1, linked by the CRM as " CUS_1"
EURO = key("billing:cus_2")  # billing-only customer, exported as "CUS_2" / "cus_2 "
UNKNOWN = "unknown"  # tenant t9 has no billing customer


def drop_scenario(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_1",
                tenant_id="T1 ",
                currency="usd",
                created_at="2025-12-15T00:00:00Z",
            ),
            billing_customer(
                billing_customer_id="CUS_2",
                tenant_id="t2",
                currency="EUR",
                created_at="2026-01-10T00:00:00Z",
            ),
        ],
    )
    # two daily CRM snapshots: acc_A turns Mid-Market one second before February ends
    lake.drop(
        "crm/accounts",
        "2026-01-02.jsonl",
        [
            crm_account(
                crm_account_id="acc_A",
                account_name="Acme",
                owner_name="Ann",
                segment="SMB",
                region="NA",
                billing_customer_id=" CUS_1",
                updated_at="2026-01-01T00:00:00Z",
                snapshot_at="2026-01-02T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "crm/accounts",
        "2026-03-01.jsonl",
        [
            crm_account(
                crm_account_id="acc_A",
                account_name="Acme",
                owner_name="Ann",
                segment="Mid-Market",
                region="NA",
                billing_customer_id=" CUS_1",
                updated_at="2026-02-28T23:59:59Z",
                snapshot_at="2026-03-01T00:00:00Z",
            )
        ],
    )
    # upgraded mid-February: starter (100.00) -> growth (500.00)
    lake.drop(
        "billing/subscriptions",
        "subs.jsonl",
        [
            subscription(
                subscription_id="sub_1",
                billing_customer_id="cus_1",
                plan_code="starter",
                monthly_fee_minor=10000,
                started_at="2026-01-01T00:00:00Z",
                updated_at="2026-01-01T00:00:00Z",
            ),
            subscription(
                subscription_id="sub_1",
                billing_customer_id=" CUS_1",
                plan_code="growth",
                monthly_fee_minor=50000,
                started_at="2026-01-01T00:00:00Z",
                updated_at="2026-02-15T10:00:00Z",
            ),
        ],
    )
    lake.drop(
        "billing/invoices",
        "2026-02-21.jsonl",
        [
            invoice(
                invoice_id="inv_1",
                billing_customer_id="cus_1",
                status="open",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at="2026-01-31T12:00:00Z",
                subtotal_minor=10000,
                tax_minor=1000,
                updated_at="2026-01-31T12:00:00Z",
            ),
            # issued at 00:00 UTC on Feb 1: February
            invoice(
                invoice_id="inv_2",
                billing_customer_id="CUS_1",
                status="open",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at="2026-02-01T00:00:00Z",
                subtotal_minor=56000,
                tax_minor=0,
                updated_at="2026-02-01T00:00:00Z",
            ),
            invoice(
                invoice_id="inv_3",
                billing_customer_id="cus_1",
                status="draft",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at=None,
                subtotal_minor=999,
                tax_minor=0,
                updated_at="2026-02-02T00:00:00Z",
            ),
            invoice(
                invoice_id="inv_4",
                billing_customer_id="cus_1",
                status="void",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at="2026-02-10T09:00:00Z",
                subtotal_minor=5000,
                tax_minor=0,
                updated_at="2026-02-11T00:00:00Z",
            ),
            # 01:30 at +02:00 is 23:30 UTC on Feb 20: the Feb 20 rate applies, not Feb 21's
            invoice(
                invoice_id="inv_5",
                billing_customer_id="cus_2 ",
                status="open",
                currency="eur",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at="2026-02-21T01:30:00+02:00",
                subtotal_minor=10000,
                tax_minor=0,
                updated_at="2026-02-21T01:30:00+02:00",
            ),
        ],
    )
    lake.drop(
        "billing/invoice_line_items",
        "lines.jsonl",
        [
            line_item(
                line_item_id="li_1",
                invoice_id="inv_1",
                kind="subscription",
                amount_minor=10000,
                service_period_start="2026-01-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
            # January's usage, billed on February's invoice
            line_item(
                line_item_id="li_2",
                invoice_id="inv_2",
                kind="usage",
                product="fraud_score",
                quantity=120,
                amount_minor=6000,
                service_period_start="2026-01-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
            line_item(
                line_item_id="li_3",
                invoice_id="inv_2",
                kind="subscription",
                amount_minor=50000,
                service_period_start="2026-02-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
            line_item(
                line_item_id="li_6",
                invoice_id="inv_3",
                kind="one_off",
                amount_minor=999,
                service_period_start="2026-01-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
            line_item(
                line_item_id="li_4",
                invoice_id="inv_4",
                kind="one_off",
                amount_minor=5000,
                service_period_start="2026-01-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
            # the header says 10000: does not tie out
            line_item(
                line_item_id="li_5",
                invoice_id="inv_5",
                kind="one_off",
                amount_minor=9000,
                service_period_start="2026-01-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
            # inv_404: no such invoice
            line_item(
                line_item_id="li_9",
                invoice_id="inv_404",
                kind="usage",
                quantity=7,
                amount_minor=700,
                service_period_start="2026-01-01T00:00:00Z",
                service_period_end="2026-02-01T00:00:00Z",
            ),
        ],
    )
    lake.drop(
        "billing/credit_notes",
        "credits.jsonl",
        [
            # issued the month after inv_1
            credit_note(
                credit_note_id="cn_1",
                invoice_id="inv_1",
                amount_minor=2500,
                currency="USD",
                issued_at="2026-02-03T08:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/refunds",
        "refunds.jsonl",
        [
            refund(
                refund_id="rf_1",
                invoice_id="inv_2",
                amount_minor=1000,
                currency="USD",
                refunded_at="2026-03-05T10:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [
            fx_rate(rate_date="2026-02-20", currency="EUR", usd_per_unit="1.0837"),
            fx_rate(rate_date="2026-02-21", currency="EUR", usd_per_unit="1.2000"),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            # consecutive days: one daily run rebuilds them all
            event(event_id="e1", tenant_id="t1", occurred_at="2026-01-30T10:00:00Z", quantity=3),
            event(event_id="e2", tenant_id=" T1", occurred_at="2026-01-30T11:00:00Z", quantity=4),
            event(
                event_id="e3",
                tenant_id="t1",
                occurred_at="2026-01-31T09:00:00Z",
                quantity=5,
                product="kyc_check",
            ),
            # t9: nobody's tenant
            event(
                event_id="e5",
                tenant_id="t9",
                occurred_at="2026-02-01T12:00:00Z",
                quantity=7,
                product="device_intel",
            ),
        ],
    )


def months(lake) -> dict[tuple[str, str], dict]:
    return {
        (r["month"].isoformat(), r["customer_key"]): r
        for r in lake.rows("marts.fct_customer_month")
    }


MEASURES = (
    "usage_events",
    "usage_units",
    "billed_usage_units",
    "invoiced_usd",
    "credits_usd",
    "refunds_usd",
    "net_revenue_usd",
    "active_days",
    "products_used",
)
ATTRIBUTES = ("crm_account_id", "segment", "region", "owner_name", "plan_code")


def measures(row: dict) -> tuple:
    return tuple(row[m] for m in MEASURES)


def attributes(row: dict) -> tuple:
    return tuple(row[a] for a in ATTRIBUTES)


ZERO = (0, 0, 0, USD("0.00"), USD("0.00"), USD("0.00"), USD("0.00"), 0, 0)


def check_evaluation(lake, asset: str, check: str):
    record = lake.instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(asset), check)
    )
    return record.event.dagster_event.event_specific_data


def test_invoices_reconcile_and_customer_months_are_exact(lake):
    drop_scenario(lake)
    lake.run()

    recon = {r["invoice_id"]: r for r in lake.rows("marts.fct_invoice_reconciliation")}
    summary = {
        i: (
            r["customer_key"],
            r["invoice_status"],
            r["currency"],
            r["total_minor"],
            r["lines_minor"],
            r["credits_minor"],
            r["refunds_minor"],
            r["net_minor"],
            r["status"],
        )
        for i, r in recon.items()
    }
    assert summary == {
        # 11000 - 2500 credit = 8500
        "inv_1": (ACME, "open", "USD", 11000, 10000, 2500, 0, 8500, "ok"),
        # 56000 - 1000 refund = 55000
        "inv_2": (ACME, "open", "USD", 56000, 56000, 0, 1000, 55000, "ok"),
        "inv_3": (ACME, "draft", "USD", 999, 999, 0, 0, 999, "ok"),
        "inv_4": (ACME, "void", "USD", 5000, 5000, 0, 0, 5000, "ok"),
        "inv_5": (EURO, "open", "EUR", 10000, 9000, 0, 0, 10000, "lines_mismatch"),
        # the orphan line: its own row, header columns null, never summed into another invoice
        "inv_404": (None, None, None, None, 700, 0, 0, None, "orphan_lines"),
    }
    orphans = check_evaluation(lake, "fct_invoice_reconciliation", "no_orphan_lines")
    assert (orphans.passed, orphans.metadata["violations"].value) == (False, 1)
    unreconciled = check_evaluation(lake, "fct_invoice_reconciliation", "invoices_reconcile")
    assert (unreconciled.passed, unreconciled.metadata["violations"].value) == (False, 1)

    facts = months(lake)
    # every customer from its first activity through March, the latest month holding a usage
    # event (Feb 1) / issued invoice (Feb 20) / credit (Feb 3) / refund (Mar 5)
    assert sorted(facts) == sorted(
        [
            ("2026-01-01", ACME),  # subscription started Jan 1, usage Jan 30
            ("2026-02-01", ACME),
            ("2026-03-01", ACME),
            ("2026-02-01", EURO),  # first activity: inv_5 issued Feb 20 (UTC)
            ("2026-03-01", EURO),
            ("2026-02-01", UNKNOWN),  # t9's usage on Feb 1
            ("2026-03-01", UNKNOWN),
        ]
    )
    # attributes as of each month's last instant: SMB until 2026-02-28T23:59:59Z, then
    # Mid-Market (so February's month-end shows Mid-Market); the plan upgrade on Feb 15 shows
    # in February's month-end plan
    assert attributes(facts["2026-01-01", ACME]) == ("acc_A", "SMB", "NA", "Ann", "starter")
    assert attributes(facts["2026-02-01", ACME]) == ("acc_A", "Mid-Market", "NA", "Ann", "growth")
    assert attributes(facts["2026-03-01", ACME]) == ("acc_A", "Mid-Market", "NA", "Ann", "growth")
    assert attributes(facts["2026-02-01", EURO]) == (None, None, None, None, None)

    # January: e1+e2+e3 = 3 events, 3+4+5 = 12 units on 2 days, 2 products; 120 units billed
    # (li_2, service period January, though inv_2 was issued in February); inv_1 110.00
    assert measures(facts["2026-01-01", ACME]) == (
        3,
        12,
        120,
        USD("110.00"),
        USD("0.00"),
        USD("0.00"),
        USD("110.00"),
        2,
        2,
    )
    # February: inv_2 560.00 (inv_3 draft and inv_4 void excluded); cn_1 25.00 credited in its
    # own month; net 560.00 - 25.00 = 535.00
    assert measures(facts["2026-02-01", ACME]) == (
        0,
        0,
        0,
        USD("560.00"),
        USD("25.00"),
        USD("0.00"),
        USD("535.00"),
        0,
        0,
    )
    # March: no usage; rf_1 10.00 refunded in March: net -10.00
    assert measures(facts["2026-03-01", ACME]) == (
        0,
        0,
        0,
        USD("0.00"),
        USD("0.00"),
        USD("10.00"),
        USD("-10.00"),
        0,
        0,
    )
    # EUR 100.00 at the Feb 20 rate 1.0837 = USD 108.37 exactly
    assert measures(facts["2026-02-01", EURO]) == (
        0,
        0,
        0,
        USD("108.37"),
        USD("0.00"),
        USD("0.00"),
        USD("108.37"),
        0,
        0,
    )
    assert measures(facts["2026-03-01", EURO]) == ZERO
    # the tenant no billing customer names: counted under 'unknown', not dropped
    assert measures(facts["2026-02-01", UNKNOWN]) == (
        1,
        7,
        0,
        USD("0.00"),
        USD("0.00"),
        USD("0.00"),
        USD("0.00"),
        1,
        1,
    )
    assert measures(facts["2026-03-01", UNKNOWN]) == ZERO
    unknown = check_evaluation(lake, "fct_customer_month", "no_unknown_customer_activity")
    assert (unknown.passed, unknown.metadata["violations"].value) == (False, 1)
    # nothing lost: 4 events / 19 units; 110.00 + 560.00 + 108.37 invoiced
    assert sum(r["usage_units"] for r in facts.values()) == 3 + 4 + 5 + 7
    assert sum(r["invoiced_usd"] for r in facts.values()) == USD("778.37")

    # second run: inv_1 re-exported as paid, and usage in May moves the end month to May
    lake.drop(
        "billing/invoices",
        "2026-02-05.jsonl",
        [
            invoice(
                invoice_id="inv_1",
                billing_customer_id="cus_1",
                status="paid",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at="2026-01-31T12:00:00Z",
                subtotal_minor=10000,
                tax_minor=1000,
                updated_at="2026-02-05T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "usage_events",
        "may.jsonl",
        [event(event_id="e6", tenant_id="t9", occurred_at="2026-05-04T12:00:00Z", quantity=2)],
    )
    report = lake.run()
    # January (inv_1's month) through May (the new usage), April included: it gains rows
    assert report.rebuilt["monthly"] == [f"2026-0{m}-01" for m in range(1, 6)]
    recon = {r["invoice_id"]: r for r in lake.rows("marts.fct_invoice_reconciliation")}
    assert len(recon) == 6
    assert (recon["inv_1"]["invoice_status"], recon["inv_1"]["net_minor"]) == ("paid", 8500)
    facts = months(lake)
    assert len(facts) == 7 + 3 * 2  # April and May for all three customers
    assert measures(facts["2026-01-01", ACME])[3] == USD("110.00")  # counted once
    assert measures(facts["2026-04-01", ACME]) == ZERO
    assert attributes(facts["2026-04-01", ACME]) == ("acc_A", "Mid-Market", "NA", "Ann", "growth")
    assert measures(facts["2026-04-01", EURO]) == ZERO
    assert measures(facts["2026-05-01", UNKNOWN]) == (
        1,
        2,
        0,
        USD("0.00"),
        USD("0.00"),
        USD("0.00"),
        USD("0.00"),
        1,
        1,
    )


def test_missing_fx_rate_fails_a_check_instead_of_counting_zero(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_2",
                tenant_id="t2",
                currency="EUR",
                created_at="2026-01-10T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/invoices",
        "inv.jsonl",
        [
            invoice(
                invoice_id="inv_5",
                billing_customer_id="cus_2",
                status="open",
                currency="EUR",
                period_start="2026-01-01T00:00:00Z",
                period_end="2026-02-01T00:00:00Z",
                issued_at="2026-02-20T10:00:00Z",
                subtotal_minor=10000,
                tax_minor=0,
                updated_at="2026-02-20T10:00:00Z",
            )
        ],
    )
    # a rate for the day before only: not the invoice's date
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [fx_rate(rate_date="2026-02-19", currency="EUR", usd_per_unit="1.08")],
    )
    lake.drop(
        "usage_events",
        "u.jsonl",
        [event(event_id="e1", tenant_id="t2", occurred_at="2026-02-01T10:00:00Z", quantity=1)],
    )
    report = run_pipeline(build_definitions(lake.lakehouse), lake.instance, all_models())
    assert not report.ok
    assert report.failed_checks == ["fct_customer_month:fx_rates_available"]
    row = months(lake)["2026-02-01", EURO]
    assert (row["usage_units"], row["invoiced_usd"], row["net_revenue_usd"]) == (1, None, None)
