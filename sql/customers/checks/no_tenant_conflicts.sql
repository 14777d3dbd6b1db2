-- Violations (WARN): tenants several billing customers name; int_tenants_resolved gave each to
-- the earliest created customer.
with

conflicts as (
    select
        tenant_id,
        billing_customer_id,
        customer_key,
        conflict
    from model_output
    where conflict is not null
)

select * from conflicts
