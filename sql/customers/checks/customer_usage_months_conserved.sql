-- Violations: months of the window where int_customer_usage_months' usage_events or usage_units,
-- summed over customers, differ from marts.fct_usage_daily for the same month (the summary the
-- customer-month fact is checked against, tied to the daily fact it sums).
with

daily as (
    select
        date_trunc('month', usage_date)::date as month,
        sum(events) as usage_events,
        sum(units) as usage_units
    from fct_usage_daily
    group by all
),

monthly as (
    select
        month,
        sum(usage_events) as usage_events,
        sum(usage_units) as usage_units
    from model_output
    group by all
),

final as (
    select
        coalesce(daily.month, monthly.month) as month,
        daily.usage_events as daily_events,
        monthly.usage_events as monthly_events,
        daily.usage_units as daily_units,
        monthly.usage_units as monthly_units
    from daily
    full outer join monthly
        on daily.month = monthly.month
    where
        coalesce(daily.usage_events, 0) <> coalesce(monthly.usage_events, 0)
        or coalesce(daily.usage_units, 0) <> coalesce(monthly.usage_units, 0)
)

select * from final
