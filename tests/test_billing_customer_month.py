"""Billing documents to marts.fct_invoice_reconciliation and marts.fct_customer_month, on a real
embedded lakehouse. One hand-built scenario, two runs; every expected value is worked out in the
comments next to it."""

import hashlib
from decimal import Decimal

import dagster as dg

from c360_assets.definitions import all_models, build_definitions
from c360_assets.runner import run_pipeline

USD = Decimal


def key(natural: str) -> str:
    """The durable customer_key: first 16 hex of md5('crm:<id>') or md5('billing:<id>')."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


ACME = key("crm:acc_A")  # billing customer cus_1, linked by the CRM as " CUS_1"
EURO = key("billing:cus_2")  # billing-only customer, exported as "CUS_2" / "cus_2 "
UNKNOWN = "unknown"  # tenant t9 has no billing customer


def billing_customer(bid, tenant, currency, created_at, crm=None):
    return {
        "billing_customer_id": bid,
        "tenant_id": tenant,
        "crm_account_id": crm,
        "currency": currency,
        "created_at": created_at,
        "updated_at": created_at,
    }


def crm(updated_at, snapshot_at, segment, bid=" CUS_1"):
    return {
        "crm_account_id": "acc_A",
        "account_name": "Acme",
        "owner_name": "Ann",
        "owner_email": "ann@example.com",
        "segment": segment,
        "region": "NA",
        "billing_customer_id": bid,
        "is_deleted": False,
        "updated_at": updated_at,
        "snapshot_at": snapshot_at,
    }


def subscription(plan, fee, updated_at, bid="cus_1"):
    return {
        "subscription_id": "sub_1",
        "billing_customer_id": bid,
        "plan_code": plan,
        "status": "active",
        "monthly_fee_minor": fee,
        "included_units": 1000,
        "overage_unit_price_minor": 5,
        "started_at": "2026-01-01T00:00:00Z",
        "ended_at": None,
        "updated_at": updated_at,
    }


def invoice(iid, bid, status, issued_at, subtotal, tax, updated_at, currency="USD"):
    return {
        "invoice_id": iid,
        "billing_customer_id": bid,
        "status": status,
        "currency": currency,
        "period_start": "2026-01-01T00:00:00Z",
        "period_end": "2026-02-01T00:00:00Z",
        "issued_at": issued_at,
        "subtotal_minor": subtotal,
        "tax_minor": tax,
        "total_minor": subtotal + tax,
        "updated_at": updated_at,
    }


def line(lid, iid, kind, amount, quantity=1, product=None, start="2026-01-01T00:00:00Z"):
    return {
        "line_item_id": lid,
        "invoice_id": iid,
        "kind": kind,
        "product": product,
        "quantity": quantity,
        "unit_amount_minor": amount // quantity,
        "amount_minor": amount,
        "service_period_start": start,
        "service_period_end": "2026-02-01T00:00:00Z",
    }


def event(event_id, tenant, occurred_at, quantity, product="fraud_score"):
    return {
        "event_id": event_id,
        "tenant_id": tenant,
        "product": product,
        "quantity": quantity,
        "occurred_at": occurred_at,
    }


def drop_scenario(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer("cus_1", "T1 ", "usd", "2025-12-15T00:00:00Z"),
            billing_customer("CUS_2", "t2", "EUR", "2026-01-10T00:00:00Z"),
        ],
    )
    # two daily CRM snapshots: acc_A turns Mid-Market one second before February ends
    lake.drop(
        "crm/accounts",
        "2026-01-02.jsonl",
        [crm("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "SMB")],
    )
    lake.drop(
        "crm/accounts",
        "2026-03-01.jsonl",
        [crm("2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z", "Mid-Market")],
    )
    # upgraded mid-February: starter (100.00) -> growth (500.00)
    lake.drop(
        "billing/subscriptions",
        "subs.jsonl",
        [
            subscription("starter", 10000, "2026-01-01T00:00:00Z"),
            subscription("growth", 50000, "2026-02-15T10:00:00Z", bid=" CUS_1"),
        ],
    )
    lake.drop(
        "billing/invoices",
        "2026-02-21.jsonl",
        [
            invoice(
                "inv_1",
                "cus_1",
                "open",
                "2026-01-31T12:00:00Z",
                10000,
                1000,
                "2026-01-31T12:00:00Z",
            ),
            # issued at 00:00 UTC on Feb 1: February
            invoice(
                "inv_2", "CUS_1", "open", "2026-02-01T00:00:00Z", 56000, 0, "2026-02-01T00:00:00Z"
            ),
            invoice("inv_3", "cus_1", "draft", None, 999, 0, "2026-02-02T00:00:00Z"),
            invoice(
                "inv_4", "cus_1", "void", "2026-02-10T09:00:00Z", 5000, 0, "2026-02-11T00:00:00Z"
            ),
            # 01:30 at +02:00 is 23:30 UTC on Feb 20: the Feb 20 rate applies, not Feb 21's
            invoice(
                "inv_5",
                "cus_2 ",
                "open",
                "2026-02-21T01:30:00+02:00",
                10000,
                0,
                "2026-02-21T01:30:00+02:00",
                currency="eur",
            ),
        ],
    )
    lake.drop(
        "billing/invoice_line_items",
        "lines.jsonl",
        [
            line("li_1", "inv_1", "subscription", 10000),
            # January's usage, billed on February's invoice
            line("li_2", "inv_2", "usage", 6000, quantity=120, product="fraud_score"),
            line("li_3", "inv_2", "subscription", 50000, start="2026-02-01T00:00:00Z"),
            line("li_6", "inv_3", "one_off", 999),
            line("li_4", "inv_4", "one_off", 5000),
            line("li_5", "inv_5", "one_off", 9000),  # the header says 10000: does not tie out
            line("li_9", "inv_404", "usage", 700, quantity=7),  # no such invoice
        ],
    )
    lake.drop(
        "billing/credit_notes",
        "credits.jsonl",
        [
            {
                "credit_note_id": "cn_1",
                "invoice_id": "inv_1",
                "amount_minor": 2500,
                "currency": "USD",
                "reason": "goodwill",
                "issued_at": "2026-02-03T08:00:00Z",  # the month after inv_1
            }
        ],
    )
    lake.drop(
        "billing/refunds",
        "refunds.jsonl",
        [
            {
                "refund_id": "rf_1",
                "invoice_id": "inv_2",
                "amount_minor": 1000,
                "currency": "USD",
                "refunded_at": "2026-03-05T10:00:00Z",
            }
        ],
    )
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [
            {"rate_date": "2026-02-20", "currency": "EUR", "usd_per_unit": "1.0837"},
            {"rate_date": "2026-02-21", "currency": "EUR", "usd_per_unit": "1.2000"},
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            # consecutive days: one daily run rebuilds them all
            event("e1", "t1", "2026-01-30T10:00:00Z", 3),
            event("e2", " T1", "2026-01-30T11:00:00Z", 4),
            event("e3", "t1", "2026-01-31T09:00:00Z", 5, "kyc_check"),
            event("e5", "t9", "2026-02-01T12:00:00Z", 7, "device_intel"),  # nobody's tenant
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
                "inv_1",
                "cus_1",
                "paid",
                "2026-01-31T12:00:00Z",
                10000,
                1000,
                "2026-02-05T00:00:00Z",
            )
        ],
    )
    lake.drop("usage_events", "may.jsonl", [event("e6", "t9", "2026-05-04T12:00:00Z", 2)])
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
        [billing_customer("cus_2", "t2", "EUR", "2026-01-10T00:00:00Z")],
    )
    lake.drop(
        "billing/invoices",
        "inv.jsonl",
        [
            invoice(
                "inv_5",
                "cus_2",
                "open",
                "2026-02-20T10:00:00Z",
                10000,
                0,
                "2026-02-20T10:00:00Z",
                currency="EUR",
            )
        ],
    )
    # a rate for the day before only: not the invoice's date
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [{"rate_date": "2026-02-19", "currency": "EUR", "usd_per_unit": "1.08"}],
    )
    lake.drop("usage_events", "u.jsonl", [event("e1", "t2", "2026-02-01T10:00:00Z", 1)])
    report = run_pipeline(build_definitions(lake.lakehouse), lake.instance, all_models())
    assert not report.ok
    assert report.failed_checks == ["fct_customer_month:fx_rates_available"]
    row = months(lake)["2026-02-01", EURO]
    assert (row["usage_units"], row["invoiced_usd"], row["net_revenue_usd"]) == (1, None, None)
