-- Violations: billed usage lines (usage_line documents of the window's months) on an invoice in
-- another currency than the reconciliation row's (the plan's billing customer's): their minor
-- units would be added across currencies.
with

final as (
    select
        reconciliation.month,
        reconciliation.customer_key,
        reconciliation.currency,
        lines.document_id as line_item_id,
        lines.invoice_id,
        lines.currency as invoice_currency,
        lines.amount_minor
    from int_billing_documents_resolved as lines
    inner join model_output as reconciliation
        on
            lines.report_month = reconciliation.month
            and lines.customer_key = reconciliation.customer_key
    where
        lines.document_type = 'usage_line'
        and lines.currency is distinct from reconciliation.currency
)

select * from final
