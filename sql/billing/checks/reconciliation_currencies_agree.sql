-- Violations: billed usage lines (usage_line documents of the window's months) on an invoice in
-- another currency than the reconciliation row's (the plan's billing customer's): their minor
-- units would be added across currencies.
with

final as (
    select
        reconciliation.month,
        reconciliation.customer_key,
        reconciliation.currency,
        usage_lines.document_id as line_item_id,
        usage_lines.invoice_id,
        usage_lines.currency as invoice_currency,
        usage_lines.amount_minor
    from int_billing_documents_resolved as usage_lines
    inner join model_output as reconciliation
        on
            usage_lines.report_month = reconciliation.month
            and usage_lines.customer_key = reconciliation.customer_key
    where
        usage_lines.document_type = 'usage_line'
        and usage_lines.currency is distinct from reconciliation.currency
)

select * from final
