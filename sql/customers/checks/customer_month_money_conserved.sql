-- Violations: months of the window where invoiced, credits, refunds (USD) or billed usage units,
-- summed over customers, differ from the resolved billing documents of that month (each of
-- which billing_documents_conserved ties to staging per month and currency). A customer-month
-- holding a document without an FX rate has null USD measures and may show here too; the
-- fx_rates_available check names the cause.
with

documents as (
    select
        report_month as month,
        sum(amount_usd) filter (where document_type = 'invoice') as invoiced_usd,
        sum(amount_usd) filter (where document_type = 'credit_note') as credits_usd,
        sum(amount_usd) filter (where document_type = 'refund') as refunds_usd,
        sum(units) filter (where document_type = 'usage_line') as billed_usage_units
    from int_billing_documents_resolved
    where report_month >= $window_start and report_month < $window_end
    group by all
),

facts as (
    select
        month,
        sum(invoiced_usd) as invoiced_usd,
        sum(credits_usd) as credits_usd,
        sum(refunds_usd) as refunds_usd,
        sum(billed_usage_units) as billed_usage_units
    from model_output
    group by all
),

final as (
    select
        coalesce(documents.month, facts.month) as month,
        documents.invoiced_usd as documents_invoiced_usd,
        facts.invoiced_usd as facts_invoiced_usd,
        documents.credits_usd as documents_credits_usd,
        facts.credits_usd as facts_credits_usd,
        documents.refunds_usd as documents_refunds_usd,
        facts.refunds_usd as facts_refunds_usd,
        documents.billed_usage_units as documents_billed_units,
        facts.billed_usage_units as facts_billed_units
    from documents
    full outer join facts
        on documents.month = facts.month
    where
        coalesce(documents.invoiced_usd, 0) <> coalesce(facts.invoiced_usd, 0)
        or coalesce(documents.credits_usd, 0) <> coalesce(facts.credits_usd, 0)
        or coalesce(documents.refunds_usd, 0) <> coalesce(facts.refunds_usd, 0)
        or coalesce(documents.billed_usage_units, 0) <> coalesce(facts.billed_usage_units, 0)
)

select * from final
