-- bi.invoices_not_reconciling: one row per invoice of marts.fct_invoice_reconciliation whose
-- status is not `ok`, with the customer it belongs to and the size of each difference. For
-- Billing Ops and Finance. Amounts are integer minor units of the invoice's currency.
-- status is the first reason, issues every reason (see fct_invoice_reconciliation):
-- header_mismatch, missing_lines, lines_mismatch, over_credited, currency_mismatch, not_issued,
-- and orphan_lines / orphan_credits_refunds for documents whose invoice never arrived (null
-- header columns: nothing to compare, the amounts are the orphans').
-- header_difference_minor = total - (subtotal + tax); lines_difference_minor = lines - subtotal;
-- over_credited_minor = credits + refunds - total, when positive.
-- The customer is its latest version of marts.dim_customer, from bi.customers (current owner to
-- contact).
with

fct_invoice_reconciliation as (
    select * from iceberg.marts.fct_invoice_reconciliation
),

customers as (
    select * from iceberg.bi.customers
),

final as (
    select
        invoices.invoice_id,
        invoices.status,
        invoices.issues,
        invoices.invoice_status,
        invoices.issued_at,
        invoices.customer_key,
        customers.account_name,
        customers.segment,
        customers.owner_name,
        invoices.billing_customer_id,
        invoices.currency,
        invoices.subtotal_minor,
        invoices.tax_minor,
        invoices.total_minor,
        invoices.line_items,
        invoices.lines_minor,
        invoices.credits_minor,
        invoices.refunds_minor,
        invoices.net_minor,
        invoices.total_minor - (invoices.subtotal_minor + invoices.tax_minor)
            as header_difference_minor,
        case
            when invoices.line_items > 0 then invoices.lines_minor - invoices.subtotal_minor
        end as lines_difference_minor,
        greatest(invoices.credits_minor + invoices.refunds_minor - invoices.total_minor, 0)
            as over_credited_minor
    from fct_invoice_reconciliation as invoices
    left join customers
        on invoices.customer_key = customers.customer_key
    where invoices.status <> 'ok'
)

select * from final
