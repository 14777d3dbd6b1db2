-- stg_billing_credit_notes: one row per credit_note_id, its latest export in the total order
-- (ingested_at, source file, source line); credit notes carry no updated_at. IDs trimmed (case
-- kept), currency upper-cased, money in integer minor units.
with

raw_billing_credit_notes as (
    select * from raw_billing_credit_notes
),

latest as (
    select
        trim(credit_note_id) as credit_note_id,
        arg_max(
            {
                'invoice_id': trim(invoice_id),
                'amount_minor': amount_minor,
                'currency': upper(trim(currency)),
                'reason': reason,
                'issued_at': issued_at,
                'source_file': _source_file,
                'source_line': _source_line
            },
            { 'at': _ingested_at, 'file': _source_file, 'line': _source_line }
        ) as export_row,
        count(*)::bigint as exports
    from raw_billing_credit_notes
    group by trim(credit_note_id)
),

final as (
    select
        latest.credit_note_id,
        latest.export_row.invoice_id,
        latest.export_row.amount_minor,
        latest.export_row.currency,
        latest.export_row.reason,
        latest.export_row.issued_at,
        latest.export_row.source_file,
        latest.export_row.source_line,
        latest.exports
    from latest
)

select * from final
