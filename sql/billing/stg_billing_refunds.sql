-- stg_billing_refunds: one row per refund_id, its latest export in the total order (ingested_at,
-- source file, source line); refunds carry no updated_at. IDs trimmed (case kept), currency
-- upper-cased, money in integer minor units.
with

raw_billing_refunds as (
    select * from raw_billing_refunds
),

latest as (
    select
        trim(refund_id) as refund_id,
        arg_max(
            {
                'invoice_id': trim(invoice_id),
                'amount_minor': amount_minor,
                'currency': upper(trim(currency)),
                'refunded_at': refunded_at,
                'source_file': _source_file,
                'source_line': _source_line
            },
            { 'at': _ingested_at, 'file': _source_file, 'line': _source_line }
        ) as export_row,
        count(*)::bigint as exports
    from raw_billing_refunds
    group by trim(refund_id)
),

final as (
    select
        latest.refund_id,
        latest.export_row.invoice_id,
        latest.export_row.amount_minor,
        latest.export_row.currency,
        latest.export_row.refunded_at,
        latest.export_row.source_file,
        latest.export_row.source_line,
        latest.exports
    from latest
)

select * from final
