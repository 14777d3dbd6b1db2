-- stg_usage_events: one row per (event_date, event_id).
-- Re-deliveries of an event (same event_id, in the same or a later file) collapse to the first
-- delivery in the total order (ingested_at, source file, source line). IDs are trimmed and
-- lower-cased. Date basis: event_date = UTC date of occurred_at.
with

raw_usage_events as (
    select * from raw_usage_events
),

first_delivery as (
    select
        event_date,
        trim(event_id) as event_id,
        arg_min(
            {
                'tenant_id': lower(trim(tenant_id)),
                'product': lower(trim(product)),
                'quantity': quantity,
                'occurred_at': occurred_at,
                'source_file': _source_file,
                'source_line': _source_line
            },
            { 'at': _ingested_at, 'file': _source_file, 'line': _source_line }
        ) as first_row,
        count(*) as deliveries
    from raw_usage_events
    group by event_date, trim(event_id)
),

final as (
    select
        event_date,
        event_id,
        first_row.tenant_id as tenant_id,
        first_row.product as product,
        first_row.quantity as quantity,
        first_row.occurred_at as occurred_at,
        first_row.source_file as source_file,
        first_row.source_line as source_line,
        deliveries::bigint as deliveries
    from first_delivery
)

select * from final
