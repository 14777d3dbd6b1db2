-- Violations: (month, customer_key) of the window whose usage_events or usage_units in the
-- customer-month fact differ from core.int_customer_usage_months (the daily fact summed per
-- customer and month): usage of a customer missing from the spine, or carried with other numbers.
-- A customer key is compared as text with nulls equal, so usage on no key is a violation too.
with

usage_months as (
    select
        month,
        customer_key,
        usage_events,
        usage_units
    from int_customer_usage_months
    where usage_events <> 0 or usage_units <> 0
),

fact_usage as (
    select
        month,
        customer_key,
        usage_events,
        usage_units
    from model_output
    where usage_events <> 0 or usage_units <> 0
),

final as (
    select
        coalesce(usage_months.month, fact_usage.month) as month,
        coalesce(usage_months.customer_key, fact_usage.customer_key) as customer_key,
        usage_months.usage_events as summed_events,
        fact_usage.usage_events as fact_events,
        usage_months.usage_units as summed_units,
        fact_usage.usage_units as fact_units
    from usage_months
    full outer join fact_usage
        on
            usage_months.month = fact_usage.month
            and usage_months.customer_key is not distinct from fact_usage.customer_key
    where
        usage_months.month is null
        or fact_usage.month is null
        or usage_months.usage_events <> fact_usage.usage_events
        or usage_months.usage_units <> fact_usage.usage_units
)

select * from final
