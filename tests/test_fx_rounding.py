"""Currency conversion to USD (docs/DECISIONLOG.md §2) on a real embedded lakehouse: each document
at its own UTC date's rate, in exact decimals, rounded half away from zero per document, with
ISO 4217 minor units (EUR 2 decimals, JPY 0, BHD 3); month totals are sums of rounded documents.
Every amount is worked out by hand next to it; the comments say what a float or a banker's
rounding, the wrong minor unit or the invoice's date would have given instead. The landing
zone holds billing only: no usage has landed yet, and the monthly models build all the same."""

import datetime as dt
import hashlib
from decimal import Decimal

from tests.records import billing_customer, credit_note, fx_rate, invoice, refund

OCT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)


def key(natural: str) -> str:
    return hashlib.md5(natural.encode()).hexdigest()[:16]


EUR, JPY, BHD = key("billing:cus_eur"), key("billing:cus_jpy"), key("billing:cus_bhd")


def drop_documents(lake) -> None:
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(billing_customer_id=f"cus_{c.lower()}", tenant_id=None, currency=c)
            for c in ("EUR", "JPY", "BHD")
        ],
    )

    def issued(invoice_id, customer, currency, total_minor, day):
        return invoice(
            invoice_id=invoice_id,
            billing_customer_id=customer,
            currency=currency,
            subtotal_minor=total_minor,
            issued_at=f"2026-10-{day}T12:00:00Z",
        )

    lake.drop(
        "billing/invoices",
        "invoices.jsonl",
        [
            issued("inv_e1", "cus_eur", "EUR", 2003, "05"),
            issued("inv_e2", "cus_eur", "EUR", 2003, "06"),
            issued("inv_j", "cus_jpy", "JPY", 12345, "05"),
            issued("inv_b", "cus_bhd", "BHD", 1234, "05"),
        ],
    )
    lake.drop(
        "billing/credit_notes",
        "credits.jsonl",
        [
            credit_note(
                credit_note_id="cn_e",
                invoice_id="inv_e1",
                amount_minor=1001,
                currency="EUR",
                issued_at="2026-11-03T09:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/refunds",
        "refunds.jsonl",
        [
            refund(
                refund_id="rf_j",
                invoice_id="inv_j",
                amount_minor=345,
                currency="JPY",
                refunded_at="2026-11-10T09:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [
            fx_rate(rate_date="2026-10-05", currency="EUR", usd_per_unit="1.5"),
            fx_rate(rate_date="2026-10-06", currency="EUR", usd_per_unit="1.5"),
            fx_rate(rate_date="2026-11-02", currency="EUR", usd_per_unit="9.99"),
            fx_rate(rate_date="2026-11-03", currency="EUR", usd_per_unit="1.2"),
            fx_rate(rate_date="2026-10-05", currency="JPY", usd_per_unit="0.0067"),
            fx_rate(rate_date="2026-11-10", currency="JPY", usd_per_unit="0.0070"),
            fx_rate(rate_date="2026-10-05", currency="BHD", usd_per_unit="2.6596"),
        ],
    )


def test_each_document_converts_at_its_own_date_and_rounds_half_away_from_zero(module_lake):
    lake = module_lake
    drop_documents(lake)
    report = lake.run()
    assert report.rebuilt["monthly"] == ["2026-10-01", "2026-11-01"]

    documents = {
        r["document_id"]: (r["rate_date"], r["usd_per_unit"], r["amount_usd"])
        for r in lake.rows("core.int_billing_documents_resolved")
    }
    assert documents == {
        # EUR 20.03 x 1.5 = 30.045 exactly: half away from zero 30.05 (a float gives
        # 30.044999..., banker's rounding 30.04)
        "inv_e1": (dt.date(2026, 10, 5), Decimal("1.5"), Decimal("30.05")),
        "inv_e2": (dt.date(2026, 10, 6), Decimal("1.5"), Decimal("30.05")),
        # JPY has no minor unit: 12345 x 0.0067 = 82.7115 -> 82.71 (as cents: 0.83)
        "inv_j": (dt.date(2026, 10, 5), Decimal("0.0067"), Decimal("82.71")),
        # BHD has three decimals: 1.234 x 2.6596 = 3.2819464 -> 3.28 (as cents: 32.82)
        "inv_b": (dt.date(2026, 10, 5), Decimal("2.6596"), Decimal("3.28")),
        # the credit note converts on its own date, Nov 3: EUR 10.01 x 1.2 = 12.012 -> 12.01
        # (at the invoice's Oct 5 rate: 15.02; at the day before's: 100.00)
        "cn_e": (dt.date(2026, 11, 3), Decimal("1.2"), Decimal("12.01")),
        # the refund on its own date, Nov 10: JPY 345 x 0.0070 = 2.415 -> 2.42 (a float: 2.41)
        "rf_j": (dt.date(2026, 11, 10), Decimal("0.007"), Decimal("2.42")),
    }

    months = {
        (r["month"], r["customer_key"]): tuple(
            r[m] for m in ("invoiced_usd", "credits_usd", "refunds_usd", "net_revenue_usd")
        )
        for r in lake.rows("marts.fct_customer_month")
    }
    zero = Decimal("0.00")
    assert months == {
        # the month is the sum of its rounded documents: 30.05 + 30.05 = 60.10, not the
        # rounded sum of 30.045 + 30.045 (60.09)
        (OCT, EUR): (Decimal("60.10"), zero, zero, Decimal("60.10")),
        (NOV, EUR): (zero, Decimal("12.01"), zero, Decimal("-12.01")),
        (OCT, JPY): (Decimal("82.71"), zero, zero, Decimal("82.71")),
        (NOV, JPY): (zero, zero, Decimal("2.42"), Decimal("-2.42")),
        (OCT, BHD): (Decimal("3.28"), zero, zero, Decimal("3.28")),
        (NOV, BHD): (zero, zero, zero, zero),
    }
