"""The landing zone's sources, as data: folder, raw table, typed columns, validation rules.

One declaration per source (CONTRACT section 2). Ingestion, the raw assets and their checks are
all generated from this list, so a new source is one entry here.

A column spec is ``(name, type, required, default, min, max)`` (the tail optional). Type ``ID``
is a string that identifies or codes something (ids, products, currencies, statuses, segments):
a control or bidirectional-override character in it quarantines the record.
"""

from c360_assets.lib.sources import Column, Source

# The largest quantity one record may carry (units of one event, of one line item, included in
# one plan): generous, and a source may declare another. A larger value is quarantined with its
# reason; facts sum quantities exactly in decimal(38, 0), whatever the maximum.
MAX_QUANTITY = 10**12
# The largest amount, in minor units, of one money column (ten trillion in a two-decimal
# currency): bounds every per-document computation (e.g. amount_minor::decimal(18, 0) in the USD
# conversion), so a wild export is quarantined instead of stopping the billing models.
MAX_MINOR = 10**15

S, ID, INT, TS, D, DEC, B = "string", "id", "int", "timestamp", "date", "decimal", "bool"


def _col(
    name: str,
    kind: str,
    required: bool = False,
    default: str | None = None,
    min_value: int | None = None,
    max_value: int | None = None,
) -> Column:
    """A declared column; kind ID is a string that is an identifier (checked for control and
    bidirectional-override characters)."""
    identifier = kind == ID
    kind = S if identifier else kind
    return Column(name, kind, required, default, min_value, max_value, identifier=identifier)


def _cols(*specs: tuple) -> tuple[Column, ...]:
    return tuple(_col(*spec) for spec in specs)


SOURCES: tuple[Source, ...] = (
    Source(
        "usage_events",
        "usage_events",
        _cols(
            ("event_id", ID, True),
            ("tenant_id", ID, True),
            ("product", ID, True),
            ("quantity", INT, False, "1", 0, MAX_QUANTITY),
            ("occurred_at", TS, True),
        ),
        event_time="occurred_at",
    ),
    Source(
        "billing_customers",
        "billing/customers",
        _cols(
            ("billing_customer_id", ID, True),
            ("tenant_id", ID),
            ("crm_account_id", ID),
            ("currency", ID, True),
            ("created_at", TS, True),
            ("updated_at", TS, True),
        ),
    ),
    Source(
        "billing_subscriptions",
        "billing/subscriptions",
        _cols(
            ("subscription_id", ID, True),
            ("billing_customer_id", ID, True),
            ("plan_code", ID, True),
            ("status", ID, True),
            ("monthly_fee_minor", INT, True, None, 0, MAX_MINOR),
            ("included_units", INT, True, None, 0, MAX_QUANTITY),
            ("overage_unit_price_minor", INT, True, None, 0, MAX_MINOR),
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
            ("invoice_id", ID, True),
            ("billing_customer_id", ID, True),
            ("status", ID, True),
            ("currency", ID, True),
            ("period_start", TS, True),
            ("period_end", TS, True),
            ("issued_at", TS),
            ("subtotal_minor", INT, True, None, -MAX_MINOR, MAX_MINOR),
            ("tax_minor", INT, True, None, -MAX_MINOR, MAX_MINOR),
            ("total_minor", INT, True, None, -MAX_MINOR, MAX_MINOR),
            ("updated_at", TS, True),
        ),
        month_columns=("issued_at",),
    ),
    Source(
        "billing_invoice_line_items",
        "billing/invoice_line_items",
        _cols(
            ("line_item_id", ID, True),
            ("invoice_id", ID, True),
            ("kind", ID, True),
            ("product", ID),
            ("quantity", INT, False, None, -MAX_QUANTITY, MAX_QUANTITY),
            ("unit_amount_minor", INT, False, None, -MAX_MINOR, MAX_MINOR),
            ("amount_minor", INT, True, None, -MAX_MINOR, MAX_MINOR),
            ("service_period_start", TS),
            ("service_period_end", TS),
        ),
        month_columns=("service_period_start",),
    ),
    Source(
        "billing_credit_notes",
        "billing/credit_notes",
        _cols(
            ("credit_note_id", ID, True),
            ("invoice_id", ID, True),
            ("amount_minor", INT, True, None, 0, MAX_MINOR),
            ("currency", ID, True),
            ("reason", S),
            ("issued_at", TS, True),
        ),
        month_columns=("issued_at",),
    ),
    Source(
        "billing_refunds",
        "billing/refunds",
        _cols(
            ("refund_id", ID, True),
            ("invoice_id", ID, True),
            ("amount_minor", INT, True, None, 0, MAX_MINOR),
            ("currency", ID, True),
            ("refunded_at", TS, True),
        ),
        month_columns=("refunded_at",),
    ),
    Source(
        "billing_fx_rates",
        "billing/fx_rates",
        _cols(
            ("rate_date", D, True),
            ("currency", ID, True),
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
            ("crm_account_id", ID, True),
            ("account_name", S),
            ("owner_name", S),
            ("owner_email", S),
            ("segment", ID),
            ("region", ID),
            ("billing_customer_id", ID),
            ("is_deleted", B, False, "false"),
            ("updated_at", TS, True),
            ("snapshot_at", TS, True),
        ),
    ),
)

SOURCES_BY_NAME = {source.name: source for source in SOURCES}
USAGE = SOURCES_BY_NAME["usage_events"]
