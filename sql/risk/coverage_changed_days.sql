-- usage days of tenants whose subscription coverage state changed: per subscription, a day is
-- before / covered / ended; a day's flags can change only where that state changed
-- Reads model_output, previous_coverage, usage_tenants and tenants.
with
changed as (
    select
        row_number() over () as change_id,
        previous.billing_customer_id as old_customer,
        previous.covered_from as old_from,
        previous.covered_until as old_until,
        now_cov.billing_customer_id as new_customer,
        now_cov.covered_from as new_from,
        now_cov.covered_until as new_until
    from model_output as now_cov
    full outer join previous_coverage as previous
        on now_cov.subscription_id = previous.subscription_id
    where
        now_cov.billing_customer_id is distinct from previous.billing_customer_id
        or now_cov.covered_from is distinct from previous.covered_from
        or now_cov.covered_until is distinct from previous.covered_until
),

customers as (
    select
        change_id,
        old_customer as billing_customer_id
    from changed
    union
    select
        change_id,
        new_customer
    from changed
),

usage_days as (
    select distinct
        tenant_usage.usage_date,
        tenants.billing_customer_id
    from usage_tenants as tenant_usage
    inner join tenants on tenant_usage.tenant_id = tenants.tenant_id
),

states as (
    select
        usage_days.usage_date,
        case
            when
                (customers.billing_customer_id is distinct from changed.old_customer)
                or usage_days.usage_date < changed.old_from
                then 'before'
            when changed.old_until is null or usage_days.usage_date < changed.old_until
                then 'covered'
            else 'ended'
        end as old_state,
        case
            when
                (customers.billing_customer_id is distinct from changed.new_customer)
                or usage_days.usage_date < changed.new_from
                then 'before'
            when changed.new_until is null or usage_days.usage_date < changed.new_until
                then 'covered'
            else 'ended'
        end as new_state
    from customers
    inner join changed on customers.change_id = changed.change_id
    inner join usage_days on customers.billing_customer_id = usage_days.billing_customer_id
)

select distinct usage_date
from states
where old_state <> new_state
order by usage_date
