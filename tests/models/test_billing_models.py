"""The billing domain's SQL models on hand-built rows (sql/billing/): latest-version staging,
subscription history, dated and converted documents, invoice reconciliation."""

from decimal import Decimal

from tests.models.given import day, landed, run_model, ts

EXPORT = ("source_file", "source_line", "exports")  # where the kept export came from


def test_stg_billing_subscriptions_keeps_every_version_and_the_latest_export_of_each():
    def version(subscription_id: str, updated_at: str, **fields) -> dict:
        return {
            "subscription_id": subscription_id,
            "billing_customer_id": " CUS_1 ",
            "plan_code": "Growth",
            "status": "Active",
            "monthly_fee_minor": 10000,
            "started_at": ts("2026-09-01T00:00"),
            "updated_at": ts(updated_at),
            **fields,
        }

    raw = landed(
        "a.jsonl",
        "2026-10-01T00:00",
        version(" sub_1 ", "2026-09-01T00:00"),
        version("sub_1", "2026-10-15T00:00", plan_code="scale", monthly_fee_minor=20000),
    ) + landed(
        # the 09-01 version exported again later, corrected: the later export wins
        "b.jsonl",
        "2026-10-02T00:00",
        version("sub_1", "2026-09-01T00:00", monthly_fee_minor=12000),
    )
    rows = run_model(
        "stg_billing_subscriptions",
        {"raw_billing_subscriptions": raw},
        columns=(
            "subscription_id",
            "updated_at",
            "billing_customer_id",
            "plan_code",
            "status",
            "monthly_fee_minor",
            *EXPORT,
        ),
    )
    assert rows == [
        {
            "subscription_id": "sub_1",
            "updated_at": ts("2026-09-01T00:00"),
            "billing_customer_id": "cus_1",
            "plan_code": "growth",
            "status": "active",
            "monthly_fee_minor": 12000,
            "source_file": "b.jsonl",
            "source_line": 1,
            "exports": 2,
        },
        {
            "subscription_id": "sub_1",
            "updated_at": ts("2026-10-15T00:00"),
            "billing_customer_id": "cus_1",
            "plan_code": "scale",
            "status": "active",
            "monthly_fee_minor": 20000,
            "source_file": "a.jsonl",
            "source_line": 2,
            "exports": 1,
        },
    ]


def test_stg_billing_invoices_keeps_the_greatest_update_whatever_the_arrival_order():
    def invoice(invoice_id: str, status: str, updated_at: str) -> dict:
        return {
            "invoice_id": invoice_id,
            "billing_customer_id": " CUS_1 ",
            "status": status,
            "currency": "usd",
            "total_minor": 11000,
            "updated_at": ts(updated_at),
        }

    raw = landed(
        "a.jsonl",
        "2026-10-01T00:00",
        invoice(" inv_1 ", "OPEN", "2026-10-01T00:00"),
        invoice("inv_2", "draft", "2026-10-01T00:00"),
    ) + landed(
        "b.jsonl",
        "2026-10-06T00:00",
        invoice("inv_1", "void", "2026-10-05T00:00"),  # the latest update: wins
        invoice("inv_1", "paid", "2026-10-03T00:00"),  # a later line, an older update
    )
    rows = run_model(
        "stg_billing_invoices",
        {"raw_billing_invoices": raw},
        columns=("invoice_id", "billing_customer_id", "status", "currency", "updated_at", *EXPORT),
    )
    assert rows == [
        {
            "invoice_id": "inv_1",
            "billing_customer_id": "cus_1",
            "status": "void",
            "currency": "USD",
            "updated_at": ts("2026-10-05T00:00"),
            "source_file": "b.jsonl",
            "source_line": 1,
            "exports": 3,
        },
        {
            "invoice_id": "inv_2",
            "billing_customer_id": "cus_1",
            "status": "draft",
            "currency": "USD",
            "updated_at": ts("2026-10-01T00:00"),
            "source_file": "a.jsonl",
            "source_line": 2,
            "exports": 1,
        },
    ]


def test_stg_billing_invoice_line_items_keeps_the_latest_export_and_blank_products_as_null():
    def line(line_item_id: str, kind: str, product: str, quantity, amount_minor: int) -> dict:
        return {
            "line_item_id": line_item_id,
            "invoice_id": " inv_1 ",
            "kind": kind,
            "product": product,
            "quantity": quantity,
            "amount_minor": amount_minor,
        }

    raw = landed(
        "a.jsonl",
        "2026-10-01T00:00",
        line(" li_1 ", " Usage ", " Fraud_Score ", 100, 500),
        line("li_2", "Subscription", "", None, 10000),
    ) + landed("b.jsonl", "2026-10-02T00:00", line("li_1", "usage", "fraud_score", 90, 450))
    rows = run_model(
        "stg_billing_invoice_line_items",
        {"raw_billing_invoice_line_items": raw},
        columns=(
            "line_item_id",
            "invoice_id",
            "kind",
            "product",
            "quantity",
            "amount_minor",
            *EXPORT,
        ),
    )
    assert rows == [
        {
            "line_item_id": "li_1",
            "invoice_id": "inv_1",
            "kind": "usage",
            "product": "fraud_score",
            "quantity": 90,
            "amount_minor": 450,
            "source_file": "b.jsonl",
            "source_line": 1,
            "exports": 2,
        },
        {
            "line_item_id": "li_2",
            "invoice_id": "inv_1",
            "kind": "subscription",
            "product": None,
            "quantity": None,
            "amount_minor": 10000,
            "source_file": "a.jsonl",
            "source_line": 2,
            "exports": 1,
        },
    ]


def test_stg_billing_credit_notes_break_an_ingestion_time_tie_by_file():
    def note(amount_minor: int, currency: str) -> dict:
        return {
            "credit_note_id": " cn_1 ",
            "invoice_id": " inv_1 ",
            "amount_minor": amount_minor,
            "currency": currency,
            "issued_at": ts("2026-10-25T00:00"),
        }

    # the same ingestion time: the later file in the total order wins
    raw = landed("a.jsonl", "2026-10-26T00:00", note(2000, "usd")) + landed(
        "b.jsonl", "2026-10-26T00:00", note(2500, "usd")
    )
    rows = run_model(
        "stg_billing_credit_notes",
        {"raw_billing_credit_notes": raw},
        columns=("credit_note_id", "invoice_id", "amount_minor", "currency", *EXPORT),
    )
    assert rows == [
        {
            "credit_note_id": "cn_1",
            "invoice_id": "inv_1",
            "amount_minor": 2500,
            "currency": "USD",
            "source_file": "b.jsonl",
            "source_line": 1,
            "exports": 2,
        }
    ]


def test_stg_billing_refunds_break_a_tie_in_one_file_by_line():
    def refund(refund_id: str, amount_minor: int) -> dict:
        return {
            "refund_id": refund_id,
            "invoice_id": "inv_1",
            "amount_minor": amount_minor,
            "currency": "eur",
            "refunded_at": ts("2026-10-26T00:00"),
        }

    raw = landed("a.jsonl", "2026-10-27T00:00", refund("rf_1", 500), refund(" rf_1 ", 700))
    rows = run_model(
        "stg_billing_refunds",
        {"raw_billing_refunds": raw},
        columns=("refund_id", "amount_minor", "currency", *EXPORT),
    )
    assert rows == [
        {
            "refund_id": "rf_1",
            "amount_minor": 700,
            "currency": "EUR",
            "source_file": "a.jsonl",
            "source_line": 2,
            "exports": 2,
        }
    ]


def test_stg_billing_fx_rates_keeps_a_republished_correction():
    def rate(currency: str, usd_per_unit: str) -> dict:
        return {
            "rate_date": day("2026-10-05"),
            "currency": currency,
            "usd_per_unit": Decimal(usd_per_unit),
        }

    raw = landed("a.csv", "2026-10-05T06:00", rate("eur", "1.08"), rate("GBP", "1.25")) + landed(
        "b.csv", "2026-10-06T06:00", rate("EUR", "1.10")
    )
    assert run_model("stg_billing_fx_rates", {"raw_billing_fx_rates": raw}) == [
        {
            "rate_date": day("2026-10-05"),
            "currency": "EUR",
            "usd_per_unit": Decimal("1.10"),
            "source_file": "b.csv",
            "source_line": 1,
            "exports": 2,
        },
        {
            "rate_date": day("2026-10-05"),
            "currency": "GBP",
            "usd_per_unit": Decimal("1.25"),
            "source_file": "a.csv",
            "source_line": 2,
            "exports": 1,
        },
    ]


def test_int_subscription_versions_windows_each_version_and_resolves_its_customer():
    def version(subscription_id: str, billing_customer_id: str, started: str, updated: str):
        return {
            "subscription_id": subscription_id,
            "billing_customer_id": billing_customer_id,
            "plan_code": "growth",
            "started_at": ts(started),
            "updated_at": ts(updated),
        }

    rows = run_model(
        "int_subscription_versions",
        {
            "stg_billing_subscriptions": [
                version("sub_1", "cus_1", "2026-09-01T00:00", "2026-09-05T00:00"),
                version("sub_1", "cus_1", "2026-09-01T00:00", "2026-10-15T00:00"),
                # first exported before it starts: in effect from its first export
                version("sub_2", "cus_x", "2026-09-10T00:00", "2026-09-01T00:00"),
            ],
            "int_billing_customers_resolved": [
                {"billing_customer_id": "cus_1", "customer_key": "k1"}
            ],
        },
        columns=(
            "subscription_id",
            "customer_key",
            "valid_from",
            "valid_to",
            "is_current",
            "version_number",
        ),
    )
    assert rows == [
        # the first version reaches back to started_at: least(09-01, 09-05)
        {
            "subscription_id": "sub_1",
            "customer_key": "k1",
            "valid_from": ts("2026-09-01T00:00"),
            "valid_to": ts("2026-10-15T00:00"),
            "is_current": False,
            "version_number": 1,
        },
        {
            "subscription_id": "sub_1",
            "customer_key": "k1",
            "valid_from": ts("2026-10-15T00:00"),
            "valid_to": None,
            "is_current": True,
            "version_number": 2,
        },
        {
            "subscription_id": "sub_2",
            "customer_key": "unknown",
            "valid_from": ts("2026-09-01T00:00"),
            "valid_to": None,
            "is_current": True,
            "version_number": 1,
        },
    ]


def test_int_billing_documents_resolved_dates_and_converts_each_document_at_its_own_rate():
    def invoice(invoice_id, customer, currency, status, issued_at, total_minor) -> dict:
        return {
            "invoice_id": invoice_id,
            "billing_customer_id": customer,
            "currency": currency,
            "status": status,
            "issued_at": ts(issued_at) if issued_at else None,
            "total_minor": total_minor,
        }

    def line(line_item_id, invoice_id, kind, quantity, amount_minor, period_start) -> dict:
        return {
            "line_item_id": line_item_id,
            "invoice_id": invoice_id,
            "kind": kind,
            "quantity": quantity,
            "amount_minor": amount_minor,
            "service_period_start": ts(period_start) if period_start else None,
        }

    def rate(on: str, currency: str, usd_per_unit: str) -> dict:
        return {"rate_date": day(on), "currency": currency, "usd_per_unit": Decimal(usd_per_unit)}

    rows = run_model(
        "int_billing_documents_resolved",
        {
            "stg_billing_invoices": [
                # 23:30 UTC on 09-30: September, at 09-30's rate
                invoice("inv_1", "cus_1", "USD", "open", "2026-09-30T23:30", 11000),
                invoice("inv_2", "cus_2", "EUR", "paid", "2026-10-05T10:00", 20000),
                invoice("inv_3", "cus_1", "JPY", "paid", "2026-10-05T10:00", 1000),  # no cents
                invoice("inv_4", "cus_1", "USD", "draft", "2026-10-01T00:00", 5000),  # not counted
                invoice("inv_5", "cus_1", "USD", "void", "2026-10-01T00:00", 5000),  # not counted
                invoice("inv_6", "cus_2", "GBP", "paid", "2026-10-07T00:00", 5000),  # no GBP rate
                invoice("inv_7", "cus_9", "USD", "paid", "2026-10-08T00:00", 500),  # unknown payer
            ],
            "stg_billing_invoice_line_items": [
                # used in August, billed on a September invoice: August
                line("li_1", "inv_1", "usage", 100, 500, "2026-08-31T23:00"),
                line("li_2", "inv_1", "subscription", None, 10000, "2026-09-01T00:00"),
                line("li_3", "inv_4", "usage", 10, 50, "2026-09-01T00:00"),  # a draft's line
                line("li_4", "inv_1", "usage", 5, 25, None),  # cannot be dated
            ],
            "stg_billing_credit_notes": [
                {
                    "credit_note_id": "cn_1",
                    "invoice_id": "inv_2",
                    "amount_minor": 1000,
                    "currency": "EUR",
                    "issued_at": ts("2026-10-05T12:00"),
                },
                {  # against an invoice that was never exported
                    "credit_note_id": "cn_2",
                    "invoice_id": "inv_404",
                    "amount_minor": 300,
                    "currency": "USD",
                    "issued_at": ts("2026-10-06T00:00"),
                },
            ],
            "stg_billing_refunds": [
                {  # 23:59:59 UTC on 10-31: 10-31's rate, not 10-05's
                    "refund_id": "rf_1",
                    "invoice_id": "inv_2",
                    "amount_minor": 555,
                    "currency": "EUR",
                    "refunded_at": ts("2026-10-31T23:59:59"),
                }
            ],
            "stg_billing_fx_rates": [
                rate("2026-10-05", "EUR", "1.10"),
                rate("2026-10-05", "JPY", "0.0067"),
                rate("2026-10-31", "EUR", "1.15"),
            ],
            "int_billing_customers_resolved": [
                {"billing_customer_id": "cus_1", "customer_key": "k1"},
                {"billing_customer_id": "cus_2", "customer_key": "k2"},
            ],
            # ISO 4217 minor units (JPY 0): the model's own constants
            "int_currency_minor_units": run_model("int_currency_minor_units", {}),
        },
    )
    found = {
        (r["document_type"], r["document_id"]): (
            r["customer_key"],
            r["report_month"],
            r["rate_date"],
            r["units"],
            r["amount_usd"],
        )
        for r in rows
    }
    september, october = day("2026-09-01"), day("2026-10-01")
    assert found == {
        ("invoice", "inv_1"): ("k1", september, day("2026-09-30"), None, Decimal("110.00")),
        # 20000 cents x 1.10
        ("invoice", "inv_2"): ("k2", october, day("2026-10-05"), None, Decimal("220.00")),
        # 1000 yen x 0.0067
        ("invoice", "inv_3"): ("k1", october, day("2026-10-05"), None, Decimal("6.70")),
        ("invoice", "inv_6"): ("k2", october, day("2026-10-07"), None, None),
        ("invoice", "inv_7"): ("unknown", october, day("2026-10-08"), None, Decimal("5.00")),
        # 1000 cents x 1.10
        ("credit_note", "cn_1"): ("k2", october, day("2026-10-05"), None, Decimal("11.00")),
        ("credit_note", "cn_2"): ("unknown", october, day("2026-10-06"), None, Decimal("3.00")),
        # 555 cents x 1.15 = 6.3825 -> 6.38
        ("refund", "rf_1"): ("k2", october, day("2026-10-31"), None, Decimal("6.38")),
        ("usage_line", "li_1"): ("k1", day("2026-08-01"), day("2026-08-31"), 100, None),
    }


def test_fct_invoice_reconciliation_gives_each_invoice_its_first_failing_status():
    def invoice(invoice_id, subtotal, tax, total, status="open", issued="2026-10-01T00:00"):
        return {
            "invoice_id": invoice_id,
            "billing_customer_id": "cus_1" if invoice_id == "inv_ok" else "cus_2",
            "status": status,
            "currency": "USD",
            "issued_at": ts(issued) if issued else None,
            "subtotal_minor": subtotal,
            "tax_minor": tax,
            "total_minor": total,
        }

    def line(line_item_id: str, invoice_id: str, amount_minor: int) -> dict:
        return {
            "line_item_id": line_item_id,
            "invoice_id": invoice_id,
            "amount_minor": amount_minor,
        }

    def against(invoice_id: str, amount_minor: int, currency: str = "USD", **document_id) -> dict:
        """A credit note or refund (``document_id``: its id column) against an invoice."""
        return {
            **document_id,
            "invoice_id": invoice_id,
            "amount_minor": amount_minor,
            "currency": currency,
        }

    rows = run_model(
        "fct_invoice_reconciliation",
        {
            "stg_billing_invoices": [
                invoice("inv_ok", 10000, 1000, 11000),
                invoice("inv_hdr", 10000, 1000, 11001),
                invoice("inv_nolines", 5000, 0, 5000),
                invoice("inv_lines", 5000, 0, 5000),
                invoice("inv_over", 1000, 0, 1000),
                invoice("inv_fx", 1000, 0, 1000),
                invoice("inv_noissue", 0, 0, 0, status="paid", issued=None),
                invoice("inv_draft", 0, 0, 0, status="draft", issued=None),
                invoice("inv_multi", 1000, 0, 999),
            ],
            "stg_billing_invoice_line_items": [
                line("l1", "inv_ok", 6000),
                line("l2", "inv_ok", 4000),
                line("l3", "inv_hdr", 10000),
                line("l4", "inv_lines", 4000),
                line("l5", "inv_over", 1000),
                line("l6", "inv_fx", 1000),
                line("l7", "inv_multi", 900),
                line("l8", "inv_gone", 50),  # its invoice was never exported
            ],
            "stg_billing_credit_notes": [
                against("inv_ok", 1000, credit_note_id="c1"),
                against("inv_over", 800, credit_note_id="c2"),
                against("inv_fx", 100, "EUR", credit_note_id="c3"),
                against("inv_gone2", 70, credit_note_id="c4"),
            ],
            "stg_billing_refunds": [
                against("inv_ok", 500, refund_id="r1"),
                against("inv_over", 300, refund_id="r2"),
            ],
            "int_billing_customers_resolved": [
                {"billing_customer_id": "cus_1", "customer_key": "k1"}
            ],
        },
    )
    found = {
        r["invoice_id"]: (
            r["customer_key"],
            r["line_items"],
            r["lines_minor"],
            r["credits_minor"],
            r["refunds_minor"],
            r["net_minor"],
            r["status"],
            r["issues"],
        )
        for r in rows
    }
    assert found == {
        # 11000 - 1000 - 500
        "inv_ok": ("k1", 2, 10000, 1000, 500, 9500, "ok", None),
        "inv_hdr": ("unknown", 1, 10000, 0, 0, 11001, "header_mismatch", "header_mismatch"),
        "inv_nolines": ("unknown", 0, 0, 0, 0, 5000, "missing_lines", "missing_lines"),
        "inv_lines": ("unknown", 1, 4000, 0, 0, 5000, "lines_mismatch", "lines_mismatch"),
        # 800 + 300 > 1000
        "inv_over": ("unknown", 1, 1000, 800, 300, -100, "over_credited", "over_credited"),
        "inv_fx": ("unknown", 1, 1000, 100, 0, 900, "currency_mismatch", "currency_mismatch"),
        "inv_noissue": ("unknown", 0, 0, 0, 0, 0, "not_issued", "not_issued"),
        "inv_draft": ("unknown", 0, 0, 0, 0, 0, "ok", None),
        # every reason in `issues`, the first in `status`
        "inv_multi": (
            "unknown",
            1,
            900,
            0,
            0,
            999,
            "header_mismatch",
            "header_mismatch, lines_mismatch",
        ),
        # orphans: their own rows, no header, no customer
        "inv_gone": (None, 1, 50, 0, 0, None, "orphan_lines", "orphan_lines"),
        "inv_gone2": (None, 0, 0, 70, 0, None, "orphan_credits_refunds", "orphan_credits_refunds"),
    }
