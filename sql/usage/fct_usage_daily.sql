-- fct_usage_daily: one row per (usage_date, customer_key, tenant_id, product).
-- events = distinct event_ids, units = sum of quantity over distinct events, exact in
-- decimal(38, 0): a sum of 64-bit quantities can leave the 64-bit range, never this one.
-- Date basis: usage_date = UTC date of occurred_at. A tenant no customer claims maps to the
-- 'unknown' customer member.
with

stg_usage_events as (
    select * from stg_usage_events
),

int_tenants_resolved as (
    select * from int_tenants_resolved
),

final as (
    select
        events.event_date as usage_date,
        coalesce(tenants.customer_key, 'unknown') as customer_key,
        events.tenant_id,
        events.product,
        count(*)::bigint as events,
        sum(events.quantity)::decimal(38, 0) as units
    from stg_usage_events as events
    left join int_tenants_resolved as tenants
        on events.tenant_id = tenants.tenant_id
    group by all
)

select * from final
