"""The landing zone's sources, as data: folder, raw table, typed columns, validation rules.

One declaration per source (CONTRACT section 2). Ingestion, the raw assets and their checks are
all generated from this list, so a new source is one entry here.
"""

from c360_assets.lib.sources import Column, Source


def _cols(*specs: tuple) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


S, INT, TS, D, DEC, B = "string", "int", "timestamp", "date", "decimal", "bool"

SOURCES: tuple[Source, ...] = (
    Source(
        "usage_events",
        "usage_events",
        _cols(
            ("event_id", S, True),
            ("tenant_id", S, True),
            ("product", S, True),
            ("quantity", INT, False, "1", 0),
            ("occurred_at", TS, True),
        ),
        event_time="occurred_at",
    ),
    Source(
        "billing_customers",
        "billing/customers",
        _cols(
            ("billing_customer_id", S, True),
            ("tenant_id", S),
            ("crm_account_id", S),
            ("currency", S, True),
            ("created_at", TS, True),
            ("updated_at", TS, True),
        ),
    ),
    Source(
        "billing_subscriptions",
        "billing/subscriptions",
        _cols(
            ("subscription_id", S, True),
            ("billing_customer_id", S, True),
            ("plan_code", S, True),
            ("status", S, True),
            ("monthly_fee_minor", INT, True, None, 0),
            ("included_units", INT, True, None, 0),
            ("overage_unit_price_minor", INT, True, None, 0),
            ("started_at", TS, True),
            ("ended_at", TS),
            ("updated_at", TS, True),
        ),
        month_columns=("started_at", "updated_at"),  # a far-future ended_at touches nothing yet
    ),
    Source(
        "billing_invoices",
        "billing/invoices",
        _cols(
            ("invoice_id", S, True),
            ("billing_customer_id", S, True),
            ("status", S, True),
            ("currency", S, True),
            ("period_start", TS, True),
            ("period_end", TS, True),
            ("issued_at", TS),
            ("subtotal_minor", INT, True),
            ("tax_minor", INT, True),
            ("total_minor", INT, True),
            ("updated_at", TS, True),
        ),
        month_columns=("issued_at",),
    ),
    Source(
        "billing_invoice_line_items",
        "billing/invoice_line_items",
        _cols(
            ("line_item_id", S, True),
            ("invoice_id", S, True),
            ("kind", S, True),
            ("product", S),
            ("quantity", INT),
            ("unit_amount_minor", INT),
            ("amount_minor", INT, True),
            ("service_period_start", TS),
            ("service_period_end", TS),
        ),
        month_columns=("service_period_start",),
    ),
    Source(
        "billing_credit_notes",
        "billing/credit_notes",
        _cols(
            ("credit_note_id", S, True),
            ("invoice_id", S, True),
            ("amount_minor", INT, True, None, 0),
            ("currency", S, True),
            ("reason", S),
            ("issued_at", TS, True),
        ),
        month_columns=("issued_at",),
    ),
    Source(
        "billing_refunds",
        "billing/refunds",
        _cols(
            ("refund_id", S, True),
            ("invoice_id", S, True),
            ("amount_minor", INT, True, None, 0),
            ("currency", S, True),
            ("refunded_at", TS, True),
        ),
        month_columns=("refunded_at",),
    ),
    Source(
        "billing_fx_rates",
        "billing/fx_rates",
        _cols(
            ("rate_date", D, True),
            ("currency", S, True),
            ("usd_per_unit", DEC, True),
        ),
        # a rate converts the documents of its day and, on a month's last day, the month's
        # revenue-assurance gaps (fct_usage_billing_reconciliation's month-end USD)
        month_columns=("rate_date",),
    ),
    Source(
        "crm_accounts",
        "crm/accounts",
        _cols(
            ("crm_account_id", S, True),
            ("account_name", S),
            ("owner_name", S),
            ("owner_email", S),
            ("segment", S),
            ("region", S),
            ("billing_customer_id", S),
            ("is_deleted", B, False, "false"),
            ("updated_at", TS, True),
            ("snapshot_at", TS, True),
        ),
    ),
)

SOURCES_BY_NAME = {source.name: source for source in SOURCES}
USAGE = SOURCES_BY_NAME["usage_events"]
