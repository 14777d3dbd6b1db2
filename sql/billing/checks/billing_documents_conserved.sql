-- Violations: (document_type, report_month, currency) where the resolved documents' count,
-- minor units or billed units differ from the deduplicated staging documents (a join that fans
-- out or drops a document shows here). Invoices count when not draft/void and issued; usage
-- lines when their invoice counts.
with

counted_invoices as (
    select
        invoice_id,
        currency
    from stg_billing_invoices
    where status not in ('draft', 'void') and issued_at is not null
),

staged as (
    select
        'invoice' as document_type,
        date_trunc('month', issued_at)::date as report_month,
        currency,
        count(*) as documents,
        sum(total_minor) as amount_minor,
        null::hugeint as units
    from stg_billing_invoices
    where invoice_id in (select counted_invoices.invoice_id from counted_invoices)
    group by all

    union all

    select
        'credit_note' as document_type,
        date_trunc('month', issued_at)::date as report_month,
        currency,
        count(*) as documents,
        sum(amount_minor) as amount_minor,
        null::hugeint as units
    from stg_billing_credit_notes
    group by all

    union all

    select
        'refund' as document_type,
        date_trunc('month', refunded_at)::date as report_month,
        currency,
        count(*) as documents,
        sum(amount_minor) as amount_minor,
        null::hugeint as units
    from stg_billing_refunds
    group by all

    union all

    select
        'usage_line' as document_type,
        date_trunc('month', line_items.service_period_start)::date as report_month,
        counted_invoices.currency,
        count(*) as documents,
        sum(line_items.amount_minor) as amount_minor,
        sum(coalesce(line_items.quantity, 0)) as units
    from stg_billing_invoice_line_items as line_items
    inner join counted_invoices
        on line_items.invoice_id = counted_invoices.invoice_id
    where line_items.kind = 'usage' and line_items.service_period_start is not null
    group by all
),

resolved as (
    select
        document_type,
        report_month,
        currency,
        count(*) as documents,
        sum(amount_minor) as amount_minor,
        sum(units) as units
    from model_output
    group by all
),

final as (
    select
        coalesce(staged.document_type, resolved.document_type) as document_type,
        coalesce(staged.report_month, resolved.report_month) as report_month,
        coalesce(staged.currency, resolved.currency) as currency,
        staged.documents as staged_documents,
        resolved.documents as resolved_documents,
        staged.amount_minor as staged_minor,
        resolved.amount_minor as resolved_minor,
        staged.units as staged_units,
        resolved.units as resolved_units
    from staged
    full outer join resolved
        on
            staged.document_type = resolved.document_type
            and staged.report_month = resolved.report_month
            and staged.currency = resolved.currency
    where
        staged.documents is distinct from resolved.documents
        or staged.amount_minor is distinct from resolved.amount_minor
        or staged.units is distinct from resolved.units
)

select * from final
