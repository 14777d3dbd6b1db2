-- int_tenants_resolved: one row per product tenant that a billing customer names, with the
-- customer it belongs to. A tenant named by several billing customers goes to the earliest
-- created one (ties: smallest billing_customer_id) and the disagreement is kept in `conflict`,
-- also when they belong to the same customer (the pick decides whose subscriptions cover the
-- tenant's usage).
-- Tenants nobody names are absent here and map to the 'unknown' customer in the facts.
with

int_billing_customers_resolved as (
    select * from int_billing_customers_resolved
),

stg_billing_customers as (
    select * from stg_billing_customers
),

claims as (
    select
        resolved.tenant_id,
        resolved.billing_customer_id,
        resolved.customer_key,
        billing.created_at
    from int_billing_customers_resolved as resolved
    inner join stg_billing_customers as billing
        on resolved.billing_customer_id = billing.billing_customer_id
    where resolved.tenant_id is not null
),

final as (
    select
        tenant_id,
        arg_min(
            { 'billing_customer_id': billing_customer_id, 'customer_key': customer_key },
            { 'created': created_at, 'id': billing_customer_id }
        ) as owning_customer,
        count(distinct billing_customer_id) as claiming_customers
    from claims
    group by tenant_id
)

select
    tenant_id,
    owning_customer.billing_customer_id as billing_customer_id,
    owning_customer.customer_key as customer_key,
    case
        when claiming_customers > 1 then 'several billing customers name this tenant'
    end as conflict
from final
