-- stg_billing_invoices: one row per invoice_id, its latest export: the greatest updated_at, ties
-- broken by the total order (ingested_at, source file, source line). An invoice is re-exported
-- whenever it changes, so this is its current state (status, amounts, issued_at).
-- IDs normalized: invoice_id trimmed, billing_customer_id trimmed and lower-cased; status
-- lower-cased, currency upper-cased. Money stays in integer minor units.
with

raw_billing_invoices as (
    select * from raw_billing_invoices
),

latest as (
    select
        trim(invoice_id) as invoice_id,
        arg_max(
            {
                'billing_customer_id': lower(trim(billing_customer_id)),
                'status': lower(trim(status)),
                'currency': upper(trim(currency)),
                'period_start': period_start,
                'period_end': period_end,
                'issued_at': issued_at,
                'subtotal_minor': subtotal_minor,
                'tax_minor': tax_minor,
                'total_minor': total_minor,
                'updated_at': updated_at,
                'source_file': _source_file,
                'source_line': _source_line
            },
            {
                'updated': updated_at,
                'at': _ingested_at,
                'file': _source_file,
                'line': _source_line
            }
        ) as export_row,
        count(*)::bigint as exports
    from raw_billing_invoices
    group by trim(invoice_id)
),

final as (
    select
        latest.invoice_id,
        latest.export_row.billing_customer_id,
        latest.export_row.status,
        latest.export_row.currency,
        latest.export_row.period_start,
        latest.export_row.period_end,
        latest.export_row.issued_at,
        latest.export_row.subtotal_minor,
        latest.export_row.tax_minor,
        latest.export_row.total_minor,
        latest.export_row.updated_at,
        latest.export_row.source_file,
        latest.export_row.source_line,
        latest.exports
    from latest
)

select * from final
