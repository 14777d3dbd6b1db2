-- fct_usage_daily: one row per (usage_date, customer_key, tenant_id, product).
-- events = distinct event_ids, units = sum of quantity over distinct events, exact in
-- decimal(38, 0): a sum of 64-bit quantities can leave the 64-bit range, never this one.
-- Date basis: usage_date = UTC date of occurred_at. A tenant no customer claims maps to the
-- 'unknown' customer member. A tenant maps to one customer (int_tenants_resolved's grain), so
-- the tenant's daily usage is already at this grain.
with

int_tenant_usage_daily as (
    select * from int_tenant_usage_daily
),

int_tenants_resolved as (
    select * from int_tenants_resolved
),

final as (
    select
        tenant_usage.event_date as usage_date,
        coalesce(tenants.customer_key, 'unknown') as customer_key,
        tenant_usage.tenant_id,
        tenant_usage.product,
        tenant_usage.events,
        tenant_usage.units
    from int_tenant_usage_daily as tenant_usage
    left join int_tenants_resolved as tenants
        on tenant_usage.tenant_id = tenants.tenant_id
)

select * from final
