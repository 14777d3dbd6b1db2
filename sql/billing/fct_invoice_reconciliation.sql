-- fct_invoice_reconciliation: one row per invoice_id, every status included (draft and void
-- too), from the invoice's latest export: header total, sum of its line items, credits and
-- refunds against it, all in the invoice's own currency and integer minor units.
-- net_minor = total_minor - credits_minor - refunds_minor. The sums (lines_minor, credits_minor,
-- refunds_minor, hence net_minor) are exact in decimal(38, 0): they never overflow 64 bits.
-- status is `ok`, or the first reason it does not reconcile, in this order:
--   header_mismatch   total_minor <> subtotal_minor + tax_minor
--   missing_lines     no line items but subtotal_minor <> 0
--   lines_mismatch    sum of line amounts <> subtotal_minor
--   over_credited     credits + refunds > total_minor
--   currency_mismatch a credit note or refund in another currency than the invoice
--   not_issued        status open/paid/uncollectible but no issued_at (cannot be dated)
-- `issues` lists every reason that applies. An invoice_id referenced by line items, credit
-- notes or refunds but absent from the invoices export gets its own row with null header
-- columns and status `orphan_lines` (or `orphan_credits_refunds` when it has no lines): its
-- amounts are never summed into another invoice.
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

int_billing_customers_resolved as (
    select * from int_billing_customers_resolved
),

line_totals as (
    select
        invoice_id,
        count(*)::bigint as line_items,
        sum(amount_minor)::decimal(38, 0) as lines_minor
    from stg_billing_invoice_line_items
    group by invoice_id
),

credit_totals as (
    select
        notes.invoice_id,
        sum(notes.amount_minor)::decimal(38, 0) as credits_minor,
        count(*) filter (where notes.currency <> invoices.currency) as foreign_currency
    from stg_billing_credit_notes as notes
    left join stg_billing_invoices as invoices
        on notes.invoice_id = invoices.invoice_id
    group by notes.invoice_id
),

refund_totals as (
    select
        refunds.invoice_id,
        sum(refunds.amount_minor)::decimal(38, 0) as refunds_minor,
        count(*) filter (where refunds.currency <> invoices.currency) as foreign_currency
    from stg_billing_refunds as refunds
    left join stg_billing_invoices as invoices
        on refunds.invoice_id = invoices.invoice_id
    group by refunds.invoice_id
),

invoice_ids as (
    select invoice_id from stg_billing_invoices
    union
    select invoice_id from line_totals
    union
    select invoice_id from credit_totals
    union
    select invoice_id from refund_totals
),

joined as (
    select
        invoice_ids.invoice_id,
        invoices.invoice_id is not null as invoice_exists,
        invoices.billing_customer_id,
        case
            when invoices.invoice_id is not null
                then coalesce(customers.customer_key, 'unknown')
        end as customer_key,
        invoices.status as invoice_status,
        invoices.currency,
        invoices.issued_at,
        invoices.subtotal_minor,
        invoices.tax_minor,
        invoices.total_minor,
        coalesce(line_totals.line_items, 0) as line_items,
        coalesce(line_totals.lines_minor, 0) as lines_minor,
        coalesce(credit_totals.credits_minor, 0) as credits_minor,
        coalesce(refund_totals.refunds_minor, 0) as refunds_minor,
        coalesce(credit_totals.foreign_currency, 0) + coalesce(refund_totals.foreign_currency, 0)
            as foreign_currency_documents
    from invoice_ids
    left join stg_billing_invoices as invoices
        on invoice_ids.invoice_id = invoices.invoice_id
    left join int_billing_customers_resolved as customers
        on invoices.billing_customer_id = customers.billing_customer_id
    left join line_totals
        on invoice_ids.invoice_id = line_totals.invoice_id
    left join credit_totals
        on invoice_ids.invoice_id = credit_totals.invoice_id
    left join refund_totals
        on invoice_ids.invoice_id = refund_totals.invoice_id
),

checked as (
    select
        *,
        case
            when not invoice_exists and line_items > 0 then 'orphan_lines'
            when not invoice_exists then 'orphan_credits_refunds'
            else concat_ws(
                ', ',
                case when total_minor <> subtotal_minor + tax_minor then 'header_mismatch' end,
                case when line_items = 0 and subtotal_minor <> 0 then 'missing_lines' end,
                case
                    when line_items > 0 and lines_minor <> subtotal_minor then 'lines_mismatch'
                end,
                case when credits_minor + refunds_minor > total_minor then 'over_credited' end,
                case when foreign_currency_documents > 0 then 'currency_mismatch' end,
                case
                    when invoice_status not in ('draft', 'void') and issued_at is null
                        then 'not_issued'
                end
            )
        end as issues
    from joined
),

final as (
    select
        invoice_id,
        customer_key,
        billing_customer_id,
        invoice_status,
        currency,
        issued_at,
        subtotal_minor,
        tax_minor,
        total_minor,
        line_items,
        lines_minor,
        credits_minor,
        refunds_minor,
        total_minor - credits_minor - refunds_minor as net_minor,
        coalesce(nullif(split_part(issues, ', ', 1), ''), 'ok') as status,
        nullif(issues, '') as issues
    from checked
)

select * from final
