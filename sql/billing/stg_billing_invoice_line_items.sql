-- stg_billing_invoice_line_items: one row per line_item_id, its latest export in the total
-- order (ingested_at, source file, source line); line items carry no updated_at. IDs trimmed
-- (case kept); kind and product trimmed and lower-cased. Lines are not joined to their invoice
-- here: a line whose invoice does not exist is kept and reported by the reconciliation.
with

raw_billing_invoice_line_items as (
    select * from raw_billing_invoice_line_items
),

latest as (
    select
        trim(line_item_id) as line_item_id,
        arg_max(
            {
                'invoice_id': trim(invoice_id),
                'kind': lower(trim(kind)),
                'product': nullif(lower(trim(product)), ''),
                'quantity': quantity,
                'unit_amount_minor': unit_amount_minor,
                'amount_minor': amount_minor,
                'service_period_start': service_period_start,
                'service_period_end': service_period_end,
                'source_file': _source_file,
                'source_line': _source_line
            },
            { 'at': _ingested_at, 'file': _source_file, 'line': _source_line }
        ) as export_row,
        count(*)::bigint as exports
    from raw_billing_invoice_line_items
    group by trim(line_item_id)
),

final as (
    select
        latest.line_item_id,
        latest.export_row.invoice_id,
        latest.export_row.kind,
        latest.export_row.product,
        latest.export_row.quantity,
        latest.export_row.unit_amount_minor,
        latest.export_row.amount_minor,
        latest.export_row.service_period_start,
        latest.export_row.service_period_end,
        latest.export_row.source_file,
        latest.export_row.source_line,
        latest.exports
    from latest
)

select * from final
