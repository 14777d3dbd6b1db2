-- Violations (WARN): invoices that do not reconcile (header <> subtotal + tax, lines <>
-- subtotal, over-credited, currency mismatch, not issued); orphan rows are counted by
-- no_orphan_lines.
with

unreconciled as (
    select
        invoice_id,
        customer_key,
        invoice_status,
        status,
        issues,
        total_minor,
        subtotal_minor,
        tax_minor,
        lines_minor,
        credits_minor,
        refunds_minor
    from model_output
    where status not in ('ok', 'orphan_lines', 'orphan_credits_refunds')
)

select * from unreconciled
