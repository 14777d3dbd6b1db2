-- int_tenant_usage_daily: one row per (event_date, tenant_id, product) of the deduplicated
-- events (stg_usage_events, a view over the raw partition). Computed once per build and held in
-- the build's DuckDB session: fct_usage_daily maps it to customers and its check compares the
-- two, so the day's events are deduplicated once, never stored one row per event.
with

stg_usage_events as (
    select * from stg_usage_events
),

final as (
    select
        event_date,
        tenant_id,
        product,
        count(*)::bigint as events,
        sum(quantity)::decimal(38, 0) as units
    from stg_usage_events
    group by event_date, tenant_id, product
)

select * from final
