"""marts.fct_usage_billing_reconciliation on a real embedded lakehouse: is metered usage billed as
the plan says? One hand-built world and eight runs; every expected value is worked out in the
comments next to it.

The world: billing-only customers cus_a .. cus_h (tenants ta .. th, USD; cus_g in EUR), all on a
subscription started 2026-09-01: plan basic = 100 units included, 7 (minor units) per unit
beyond; cus_g basic_eur = 100 included, 8 EUR cents beyond. cus_e's subscription is canceled and
ended 09-20; cus_f upgrades on 10-15 to pro = 500 included, 3 per unit beyond.
Usage is billed in arrears: September's on invoices issued 2026-10-01 02:00 (the first billing
run), October's on invoices issued 2026-11-01 02:00 (the second, landing in run 2).
"""

import datetime as dt
import hashlib
from collections import Counter
from decimal import Decimal

import dagster as dg

from c360_assets.tools.generate import generate_landing
from c360_assets.tools.summary import print_summary
from tests.records import billing_customer, event, fx_rate, invoice, line_item, subscription

SEP, OCT, NOV, DEC = "2026-09-01", "2026-10-01", "2026-11-01", "2026-12-01"
TEN_SEP = "2026-09-10T00:00:00Z"
TABLE = "marts.fct_usage_billing_reconciliation"


def key(natural: str) -> str:
    return hashlib.md5(natural.encode()).hexdigest()[:16]


A, B, C, D, E, F, G, H = (key(f"billing:cus_{x}") for x in "abcdefgh")
NAMES = dict(zip((A, B, C, D, E, F, G, H), "abcdefgh", strict=True))


def plan(customer: str, **overrides) -> dict:
    base = {
        "subscription_id": f"sub_{customer}",
        "billing_customer_id": f"cus_{customer}",
        "plan_code": "basic",
        "monthly_fee_minor": 1000,
        "included_units": 100,
        "overage_unit_price_minor": 7,
        "started_at": "2026-09-01T00:00:00Z",
    }
    return subscription(**{**base, **overrides})


def usage(customer: str, day: str, units: int, n: int = 1) -> dict:
    return event(
        event_id=f"e_{customer}_{day}_{n}",
        tenant_id=f"t{customer}",
        occurred_at=f"{day}T10:00:00Z",
        quantity=units,
    )


def billed(invoice_id: str, line_id: str, quantity: int, price: int, month: str) -> dict:
    """A usage line for ``month``'s usage (service period: that month)."""
    end = {SEP: OCT, OCT: NOV}[month]
    return line_item(
        line_item_id=line_id,
        invoice_id=invoice_id,
        kind="usage",
        product="fraud_score",
        quantity=quantity,
        unit_amount_minor=price,
        amount_minor=quantity * price,
        service_period_start=f"{month}T00:00:00Z",
        service_period_end=f"{end}T00:00:00Z",
    )


def billing_run(customer: str, invoice_id: str, issued: str, subtotal: int, **kw) -> dict:
    return invoice(
        invoice_id=invoice_id,
        billing_customer_id=f"cus_{customer}",
        period_start=f"{issued}T00:00:00Z",
        period_end=f"{ {OCT: NOV, NOV: DEC}[issued] }T00:00:00Z",
        issued_at=f"{issued}T02:00:00Z",
        subtotal_minor=subtotal,
        tax_minor=0,
        **kw,
    )


def drop_world(lake) -> None:
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id=f"cus_{x}",
                tenant_id=f"t{x}",
                currency="EUR" if x == "g" else "USD",
                created_at="2026-09-01T00:00:00Z",
            )
            for x in "abcdefgh"
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            *(plan(x) for x in "abcdh"),
            plan("e"),
            plan("e", status="canceled", ended_at="2026-09-20T00:00:00Z", updated_at=TEN_SEP),
            plan("f"),
            plan(
                "f",
                plan_code="pro",
                monthly_fee_minor=5000,
                included_units=500,
                overage_unit_price_minor=3,
                updated_at="2026-10-15T12:00:00Z",
            ),
            plan("g", plan_code="basic_eur", monthly_fee_minor=900, overage_unit_price_minor=8),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            usage("a", "2026-09-05", 130),
            usage("a", "2026-10-05", 100),
            usage("b", "2026-09-05", 150),
            usage("c", "2026-09-05", 120),
            usage("d", "2026-09-05", 110),
            usage("e", "2026-09-25", 40),  # after the subscription ended
            usage("f", "2026-09-05", 90),
            usage("f", "2026-10-20", 600),
            usage("g", "2026-09-05", 125),
            usage("h", "2026-10-05", 80),
        ],
    )
    # the first billing run: September's usage
    lake.drop(
        "billing/invoices",
        "invoices_2026-10-01.jsonl",
        [
            billing_run("a", "inv_a1", OCT, 210),
            billing_run("b", "inv_b1", OCT, 280),
            billing_run("c", "inv_c1", OCT, 1000),
            billing_run("d", "inv_d1", OCT, 105),
            billing_run("g", "inv_g1", OCT, 160, currency="EUR"),
        ],
    )
    lake.drop(
        "billing/invoice_line_items",
        "lines_2026-10-01.jsonl",
        [
            billed("inv_a1", "li_a1", 30, 7, SEP),
            billed("inv_b1", "li_b1", 40, 7, SEP),  # 10 units short
            # cus_c: the subscription fee only, no usage line
            line_item(
                line_item_id="li_c1",
                invoice_id="inv_c1",
                amount_minor=1000,
                service_period_start=f"{OCT}T00:00:00Z",
                service_period_end=f"{NOV}T00:00:00Z",
            ),
            billed("inv_d1", "li_d1", 15, 7, SEP),
            billed("inv_g1", "li_g1", 20, 8, SEP),
        ],
    )
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [
            fx_rate(rate_date="2026-09-30", currency="EUR", usd_per_unit="1.0850"),  # Sep's end
            fx_rate(rate_date="2026-10-01", currency="EUR", usd_per_unit="1.0900"),  # inv_g1
            fx_rate(rate_date="2026-10-31", currency="EUR", usd_per_unit="1.0800"),  # Oct's end
        ],
    )


COLUMNS = (
    "status",
    "metered_units",
    "expected_overage_units",
    "expected_overage_minor",
    "billed_units",
    "billed_overage_minor",
    "unit_gap",
    "amount_gap_minor",
)


def reconciliation(lake) -> dict[tuple[str, str], dict]:
    return {(r["month"].isoformat(), NAMES[r["customer_key"]]): r for r in lake.rows(TABLE)}


def judged(rows: dict, month: str) -> dict[str, tuple]:
    return {c: tuple(r[k] for k in COLUMNS) for (m, c), r in rows.items() if m == month}


def check_evaluation(lake, check: str):
    record = lake.instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("fct_usage_billing_reconciliation"), check)
    )
    return record.event.dagster_event.event_specific_data


# (status, metered, expected units, expected minor, billed units, billed minor, unit gap, gap)
PENDING_NOTHING = ("pending", 0, 0, 0, 0, 0, 0, 0)


def test_usage_is_judged_against_the_plan_at_month_end_and_late_data_rebuilds_it(lake):
    drop_world(lake)
    report = lake.run()
    assert report.rebuilt["monthly"] == [SEP, OCT]
    rows = reconciliation(lake)
    # one row per row of fct_customer_month: 8 customers x (September, October)
    facts = {
        (r["month"].isoformat(), r["customer_key"]) for r in lake.rows("marts.fct_customer_month")
    }
    assert {(r["month"].isoformat(), r["customer_key"]) for r in lake.rows(TABLE)} == facts
    assert len(facts) == 16

    # September is judged (a billing run, the 10-01 invoices, happened on or after 10-01 00:00)
    assert judged(rows, SEP) == {
        # 130 used, 100 included: 30 x 7 = 210 expected, 30 units / 210 billed
        "a": ("ok", 130, 30, 210, 30, 210, 0, 0),
        # 150 used: 50 x 7 = 350 expected; 40 x 7 = 280 billed: 10 units, 70 short
        "b": ("underbilled", 150, 50, 350, 40, 280, -10, -70),
        # 120 used: 20 x 7 = 140 expected, no usage line
        "c": ("unbilled", 120, 20, 140, 0, 0, -20, -140),
        # 110 used: 10 x 7 = 70 expected; 15 x 7 = 105 billed
        "d": ("overbilled", 110, 10, 70, 15, 105, 5, 35),
        # the subscription ended on 09-20: no plan at the month's end, 40 units used after it
        "e": ("no_subscription", 40, None, None, 0, 0, None, None),
        # 90 used, all included (the upgrade comes in October)
        "f": ("ok", 90, 0, 0, 0, 0, 0, 0),
        # EUR: 125 used: 25 x 8 = 200 cents expected; 20 x 8 = 160 billed
        "g": ("underbilled", 125, 25, 200, 20, 160, -5, -40),
        # no usage in September
        "h": ("ok", 0, 0, 0, 0, 0, 0, 0),
    }
    e_sep = rows[SEP, "e"]
    assert (e_sep["plan_code"], e_sep["included_units"], e_sep["currency"]) == (None, None, "USD")
    # USD at September's last-day rate: EUR 1.0850; 2.00 x 1.085 = 2.17; 1.60 x 1.085 = 1.736
    # -> 1.74; -0.40 x 1.085 = -0.434 -> -0.43. USD customers convert at 1.
    g_sep = rows[SEP, "g"]
    assert (g_sep["currency"], g_sep["month_end_usd_per_unit"]) == ("EUR", Decimal("1.085"))
    assert (
        g_sep["expected_overage_usd"],
        g_sep["billed_overage_usd"],
        g_sep["amount_gap_usd"],
    ) == (
        Decimal("2.17"),
        Decimal("1.74"),
        Decimal("-0.43"),
    )
    assert rows[SEP, "c"]["amount_gap_usd"] == Decimal("-1.40")
    assert e_sep["amount_gap_usd"] is None and e_sep["billed_overage_usd"] == Decimal("0.00")
    # October is pending: no invoice was issued on or after 11-01 00:00 (whatever today is);
    # cus_f's October is already on the plan at the month's end (pro since 10-15)
    assert {c: r[0] for c, r in judged(rows, OCT).items()} == dict.fromkeys("abcdefgh", "pending")
    f_oct = rows[OCT, "f"]
    assert (f_oct["plan_code"], f_oct["included_units"], f_oct["overage_unit_price_minor"]) == (
        "pro",
        500,
        3,
    )
    assert (f_oct["metered_units"], f_oct["expected_overage_units"]) == (600, 100)

    # the checks: rows equal fct_customer_month's; the WARN report lists September's leaks,
    # largest USD gap first (c -1.40, b -0.70, g -0.43, d 0.35; e has no gap), and counts
    # customers and money per month, currency and status
    assert check_evaluation(lake, "reconciliation_rows_match_customer_month").passed
    assert check_evaluation(lake, "reconciliation_currencies_agree").passed
    leakage = check_evaluation(lake, "revenue_leakage")
    assert (leakage.passed, leakage.severity, leakage.metadata["violations"].value) == (
        False,
        dg.AssetCheckSeverity.WARN,
        5,
    )
    sample = leakage.metadata["sample"].data
    assert [(NAMES[s["customer_key"]], s["amount_gap_usd"]) for s in sample] == [
        ("c", "-1.40"),
        ("b", "-0.70"),
        ("g", "-0.43"),
        ("d", "0.35"),
        ("e", None),
    ]
    summary = {
        (s["month"], s["currency"], s["status"]): (
            s["customers"],
            s["metered_units"],
            s["expected_overage_minor"],
            s["billed_overage_minor"],
            s["amount_gap_minor"],
            s["amount_gap_usd"],
        )
        for s in leakage.metadata["summary"].data
    }
    assert summary == {
        # a, f, h: 130 + 90 + 0 used; 210 expected and billed
        (SEP, "USD", "ok"): (3, 220, 210, 210, 0, "0.00"),
        (SEP, "USD", "underbilled"): (1, 150, 350, 280, -70, "-0.70"),
        (SEP, "USD", "unbilled"): (1, 120, 140, 0, -140, "-1.40"),
        (SEP, "USD", "overbilled"): (1, 110, 70, 105, 35, "0.35"),
        (SEP, "USD", "no_subscription"): (1, 40, None, 0, None, None),
        (SEP, "EUR", "underbilled"): (1, 125, 200, 160, -40, "-0.43"),
        # October, pending: a 100, f 600, h 80 used; f's 100 x 3 expected on the pro plan
        (OCT, "USD", "pending"): (7, 780, 300, 0, -300, "-3.00"),
        (OCT, "EUR", "pending"): (1, 0, 0, 0, 0, "0.00"),
    }

    # Run 2, the second billing run: the invoices issued 11-01 02:00 land, their lines not yet.
    # No October document changed, yet October is judged now: the run that judges it happened.
    # The end month moves to November (an invoice's issued_at): November's rows are pending.
    lake.drop(
        "billing/invoices",
        "invoices_2026-11-01.jsonl",
        [billing_run("f", "inv_f2", NOV, 300), billing_run("h", "inv_h2", NOV, 35)],
    )
    report = lake.run()
    # October (judged by the new run) through November (the new end month); not September
    assert report.rebuilt["monthly"] == [OCT, NOV]
    rows = reconciliation(lake)
    october = {
        # 100 used, 100 included: nothing expected, nothing billed
        "a": ("ok", 100, 0, 0, 0, 0, 0, 0),
        "b": ("ok", 0, 0, 0, 0, 0, 0, 0),
        "c": ("ok", 0, 0, 0, 0, 0, 0, 0),
        "d": ("ok", 0, 0, 0, 0, 0, 0, 0),
        # no subscription and no usage: nothing to bill
        "e": ("ok", 0, None, None, 0, 0, None, None),
        # upgraded on 10-15, judged on the plan at the month's end (pro: 500 included, 3 each):
        # 600 used, 100 x 3 = 300 expected (on basic it would be 500 x 7 = 3500); no line yet
        "f": ("unbilled", 600, 100, 300, 0, 0, -100, -300),
        "g": ("ok", 0, 0, 0, 0, 0, 0, 0),
        # 80 used, all included
        "h": ("ok", 80, 0, 0, 0, 0, 0, 0),
    }
    assert judged(rows, OCT) == october
    assert {c: r[0] for c, r in judged(rows, NOV).items()} == dict.fromkeys("abcdefgh", "pending")

    # Run 3, the run's usage lines: cus_f's 100 units at 3 (300), and 5 units at 7 (35) for
    # cus_h, whose October was all included: overbilled.
    lake.drop(
        "billing/invoice_line_items",
        "lines_2026-11-01.jsonl",
        [billed("inv_f2", "li_f2", 100, 3, OCT), billed("inv_h2", "li_h2", 5, 7, OCT)],
    )
    report = lake.run()
    assert report.rebuilt["monthly"] == [OCT, NOV]
    rows = reconciliation(lake)
    assert judged(rows, OCT) == {
        **october,
        "f": ("ok", 600, 100, 300, 100, 300, 0, 0),
        "h": ("overbilled", 80, 0, 0, 5, 35, 5, 35),
    }
    assert rows[OCT, "g"]["month_end_usd_per_unit"] == Decimal("1.08")  # October's last day
    assert {c: r[0] for c, r in judged(rows, NOV).items()} == dict.fromkeys("abcdefgh", "pending")
    assert rows[NOV, "g"]["month_end_usd_per_unit"] is None  # no rate for 11-30: no USD, not 0
    assert judged(rows, SEP)["d"] == ("overbilled", 110, 10, 70, 15, 105, 5, 35)

    # Run 4, a late usage file: 10 more units for cus_d on 09-28. September is rebuilt (and
    # the months after it): 120 used, 20 x 7 = 140 expected, 105 billed -> underbilled by 35.
    lake.drop("usage_events", "late.jsonl", [usage("d", "2026-09-28", 10)])
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-09-28"]
    assert report.rebuilt["monthly"] == [SEP, OCT, NOV]
    assert judged(reconciliation(lake), SEP)["d"] == ("underbilled", 120, 20, 140, 15, 105, -5, -35)

    # Run 5, a late line item on inv_c1: cus_c's 20 September units, 140, billed after all.
    lake.drop(
        "billing/invoice_line_items", "late_lines.jsonl", [billed("inv_c1", "li_c2", 20, 7, SEP)]
    )
    report = lake.run()
    assert report.rebuilt["monthly"] == [SEP, OCT, NOV]
    assert judged(reconciliation(lake), SEP)["c"] == ("ok", 120, 20, 140, 20, 140, 0, 0)

    # Run 6, a plan change: cus_a moves to mini (50 included, 9 each) on 10-20. October is
    # judged on mini: 100 used, 50 x 9 = 450 expected, nothing billed -> unbilled. September
    # (plan basic at its end) keeps its row.
    lake.drop(
        "billing/subscriptions",
        "subscriptions_2026-10-20.jsonl",
        [
            plan(
                "a",
                plan_code="mini",
                monthly_fee_minor=500,
                included_units=50,
                overage_unit_price_minor=9,
                updated_at="2026-10-20T00:00:00Z",
            )
        ],
    )
    report = lake.run()
    assert report.rebuilt["monthly"] == [SEP, OCT, NOV]
    rows = reconciliation(lake)
    assert judged(rows, OCT)["a"] == ("unbilled", 100, 50, 450, 0, 0, -50, -450)
    assert (rows[OCT, "a"]["plan_code"], rows[NOV, "a"]["plan_code"]) == ("mini", "mini")
    assert judged(rows, SEP)["a"] == ("ok", 130, 30, 210, 30, 210, 0, 0)
    month_end_plan = {
        r["customer_key"]: r["plan_code"]
        for r in lake.rows("marts.fct_customer_month")
        if r["month"].isoformat() == OCT
    }
    assert month_end_plan[A] == "mini"  # the same plan in both marts

    # Run 7, a re-exported invoice: inv_b1 voided on 10-03. Its usage line no longer counts:
    # cus_b's September is unbilled (50 x 7 = 350 expected).
    lake.drop(
        "billing/invoices",
        "invoices_2026-10-03.jsonl",
        [billing_run("b", "inv_b1", OCT, 280, status="void", updated_at="2026-10-03T00:00:00Z")],
    )
    report = lake.run()
    assert report.rebuilt["monthly"] == [SEP, OCT, NOV]
    assert judged(reconciliation(lake), SEP)["b"] == ("unbilled", 150, 50, 350, 0, 0, -50, -350)

    # Run 8, November's last-day EUR rate lands: cus_g's November (pending, nothing expected)
    # gets its month-end rate and its USD amounts: 0.00 instead of unknown.
    lake.drop(
        "billing/fx_rates",
        "rates_2026-11-30.csv",
        [fx_rate(rate_date="2026-11-30", currency="EUR", usd_per_unit="1.0700")],
    )
    report = lake.run()
    assert report.rebuilt["monthly"] == [NOV]
    g_nov = reconciliation(lake)[NOV, "g"]
    assert (g_nov["month_end_usd_per_unit"], g_nov["amount_gap_usd"]) == (
        Decimal("1.07"),
        Decimal("0.00"),
    )


def customer_key(customer: str) -> str:
    """The lakehouse's key of a generated customer: ``crm:<id>``, ``billing:<id>``, unknown."""
    return customer if customer == "unknown" else key(customer)


def test_the_reconciliation_finds_exactly_the_leaks_the_generator_planted(lake, capsys):
    # Two billing runs in the window (09-01, 10-01): August and September are judged, October
    # (billed on 11-01, after the window) is pending.
    summary = generate_landing(
        lake.landing,
        customers=150,
        start=dt.date(2026, 8, 1),
        days=62,
        events_per_day=3000,
        seed=11,
        progress=False,
    )
    lake.run()
    leaks = summary["billing"]["revenue_leaks"]
    assert leaks["judged_months"] == ["2026-08-01", SEP]
    expected = {
        (leak["month"], customer_key(leak["customer"])): (
            leak["status"],
            leak["metered_units"],
            leak["expected_overage_units"],
            leak["expected_overage_minor"],
            leak["billed_units"],
            leak["billed_overage_minor"],
            leak["amount_gap_minor"],
        )
        for leak in leaks["rows"]
    }
    rows = lake.rows(TABLE)
    found = {
        (r["month"].isoformat(), r["customer_key"]): tuple(r[c] for c in COLUMNS if c != "unit_gap")
        for r in rows
        if r["status"] not in ("ok", "pending")
    }
    assert found == expected
    assert {r["status"] for r in rows if r["month"] == dt.date(2026, 10, 1)} == {"pending"}
    # every kind of leak was planted, and each shows as its kind says
    planted = leaks["planted"]
    assert min(planted[k] for k in ("never_billed", "short_line", "wrong_price")) >= 1, planted
    for leak in leaks["rows"]:
        assert leak["causes"], leak  # nothing is off without a reason the generator knows
        if leak["causes"] == ["never_billed"]:
            assert (leak["status"], leak["billed_units"]) == ("unbilled", 0)
        if leak["causes"] == ["short_line"]:
            assert leak["status"] == "underbilled"
            assert 0 < leak["billed_units"] < leak["expected_overage_units"]
        if leak["causes"] == ["wrong_price"]:  # the right units at a price one off the plan's
            assert leak["billed_units"] == leak["expected_overage_units"]
            assert abs(leak["amount_gap_minor"]) == leak["expected_overage_units"]

    # the demo's summary prints the leakage by status: the customer-months the generator expects
    print_summary(lake.lakehouse)
    printed = capsys.readouterr().out.splitlines()
    counts = Counter(leak["status"] for leak in leaks["rows"])
    for status, customer_months in counts.items():
        (line,) = [x for x in printed if x.split()[:1] == [status]]
        assert int(line.split()[1].replace(",", "")) == customer_months, line
