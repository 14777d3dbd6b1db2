-- Violations (WARN): invoice ids that line items, credit notes or refunds reference but the
-- invoices export does not hold. Their amounts sit on their own reconciliation row, never on
-- another invoice; in fct_customer_month orphan credits and refunds count for 'unknown'.
with

orphans as (
    select
        invoice_id,
        status,
        line_items,
        lines_minor,
        credits_minor,
        refunds_minor
    from model_output
    where status in ('orphan_lines', 'orphan_credits_refunds')
)

select * from orphans
