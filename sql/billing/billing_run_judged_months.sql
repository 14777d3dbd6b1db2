-- The month whose pending status a move of the latest billing run flips, for
-- int_billing_documents_resolved's change report. The latest billing run is the latest issued_at
-- of an invoice that counts; a month is judged once a run happened on or after the first instant
-- of the next month (fct_usage_billing_reconciliation). When the run moves into another month
-- (an invoice issued in a new month, or the only one voided), every month from the earlier
-- run's month on may flip: that month is reported (one row, or none when the run stays in its
-- month). Reads model_output (this build) and previous_output (the build before).
with

latest_now as (
    select
        max(document_at) filter (where document_type = 'invoice') as issued_at,
        min(report_month) as first_month
    from model_output
),

latest_before as (
    select
        max(document_at) filter (where document_type = 'invoice') as issued_at,
        min(report_month) as first_month
    from previous_output
),

final as (
    select
        case
            -- no run on one side: every month before the other run's flips
            when latest_now.issued_at is null or latest_before.issued_at is null
                then least(latest_now.first_month, latest_before.first_month)
            else date_trunc('month', least(latest_now.issued_at, latest_before.issued_at))::date
        end as month
    from latest_now
    cross join latest_before
    where
        date_trunc('month', latest_now.issued_at)
        is distinct from date_trunc('month', latest_before.issued_at)
)

select * from final
