-- Violations: money documents of the window (invoices, credit notes, refunds) in a currency
-- with no FX rate for the UTC date of the document. Their month's USD measures are null until
-- the rate lands; a missing rate is never counted as 0.
with

unconverted as (
    select
        document_type,
        document_id,
        customer_key,
        currency,
        rate_date,
        amount_minor
    from int_billing_documents_resolved
    where
        report_month >= $window_start
        and report_month < $window_end
        and document_type <> 'usage_line'
        and amount_usd is null
)

select * from unconverted
