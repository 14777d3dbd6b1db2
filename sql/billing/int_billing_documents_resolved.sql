-- int_billing_documents_resolved: one row per (document_type, document_id): every billing
-- amount the customer-month fact counts, dated, resolved to a customer and converted to USD.
-- document_type and its date basis (report_month = UTC month of document_at):
-- - invoice:     issued_at; invoices not draft/void (and issued), at total_minor (tax included)
-- - credit_note: its own issued_at (often a later month than the invoice)
-- - refund:      refunded_at
-- - usage_line:  service_period_start; usage line items of counted invoices, `units` = quantity
--                (billed usage belongs to the month it was used in, not the month it was billed)
-- Money documents convert at the rate of the UTC date of their own document_at
-- (rate_date): amount_usd = round(amount_minor * minor unit * usd_per_unit, 2) in exact decimal,
-- USD at 1. A missing rate leaves amount_usd null (fct_customer_month fails a check), never 0.
-- The customer comes from the invoice's billing customer via the identity crosswalk; a credit
-- or refund whose invoice does not exist, or an unknown billing customer, maps to 'unknown'.
with

stg_billing_invoices as (
    select * from stg_billing_invoices
),

stg_billing_invoice_line_items as (
    select * from stg_billing_invoice_line_items
),

stg_billing_credit_notes as (
    select * from stg_billing_credit_notes
),

stg_billing_refunds as (
    select * from stg_billing_refunds
),

stg_billing_fx_rates as (
    select * from stg_billing_fx_rates
),

int_billing_customers_resolved as (
    select * from int_billing_customers_resolved
),

int_currency_minor_units as (
    select * from int_currency_minor_units
),

invoices as (
    select
        invoices.invoice_id,
        invoices.billing_customer_id,
        invoices.currency,
        invoices.issued_at,
        invoices.total_minor,
        invoices.status not in ('draft', 'void') and invoices.issued_at is not null
            as is_counted,
        coalesce(customers.customer_key, 'unknown') as customer_key
    from stg_billing_invoices as invoices
    left join int_billing_customers_resolved as customers
        on invoices.billing_customer_id = customers.billing_customer_id
),

documents as (
    select
        'invoice' as document_type,
        invoice_id as document_id,
        invoice_id,
        issued_at as document_at,
        currency,
        total_minor as amount_minor,
        null::bigint as units
    from invoices
    where is_counted

    union all

    select
        'credit_note' as document_type,
        credit_note_id as document_id,
        invoice_id,
        issued_at as document_at,
        currency,
        amount_minor,
        null::bigint as units
    from stg_billing_credit_notes

    union all

    select
        'refund' as document_type,
        refund_id as document_id,
        invoice_id,
        refunded_at as document_at,
        currency,
        amount_minor,
        null::bigint as units
    from stg_billing_refunds

    union all

    select
        'usage_line' as document_type,
        line_items.line_item_id as document_id,
        line_items.invoice_id,
        line_items.service_period_start as document_at,
        invoices.currency,
        line_items.amount_minor,
        coalesce(line_items.quantity, 0) as units
    from stg_billing_invoice_line_items as line_items
    inner join invoices
        on line_items.invoice_id = invoices.invoice_id
    where
        line_items.kind = 'usage'
        and invoices.is_counted
        and line_items.service_period_start is not null
),

converted as (
    select
        documents.document_type,
        documents.document_id,
        documents.invoice_id,
        invoices.billing_customer_id,
        coalesce(invoices.customer_key, 'unknown') as customer_key,
        documents.document_at,
        date_trunc('month', documents.document_at)::date as report_month,
        documents.currency,
        documents.amount_minor,
        documents.units,
        documents.document_at::date as rate_date,
        case
            when documents.document_type = 'usage_line' then null
            when documents.currency = 'USD' then 1::decimal(38, 12)
            else rates.usd_per_unit
        end as usd_per_unit,
        coalesce(minor_units.minor_unit, 0.01) as minor_unit
    from documents
    left join invoices
        on documents.invoice_id = invoices.invoice_id
    left join stg_billing_fx_rates as rates
        on
            documents.document_at::date = rates.rate_date
            and documents.currency = rates.currency
    left join int_currency_minor_units as minor_units
        on documents.currency = minor_units.currency
),

final as (
    select
        document_type,
        document_id,
        invoice_id,
        billing_customer_id,
        customer_key,
        document_at,
        report_month,
        currency,
        amount_minor,
        units,
        rate_date,
        usd_per_unit,
        round(amount_minor::decimal(18, 0) * minor_unit * usd_per_unit, 2)::decimal(18, 2)
            as amount_usd
    from converted
)

select * from final
