-- int_customer_usage_months: one row per (month, customer_key) with usage in the month, from the
-- month's days of marts.fct_usage_daily: usage_events, usage_units (an exact decimal(38, 0) sum),
-- active_days (days with usage) and products_used (distinct products). A customer with no usage
-- in a month has no row; usage on no customer key keeps its own row (null key), never dropped.
-- fct_customer_month takes its usage measures from here (a row per customer and month, not the
-- month's daily rows), and int_customer_months reads every month of it (each customer's first
-- month of usage, the latest month holding usage): a file a month, not a file a day.
with

fct_usage_daily as (
    select * from fct_usage_daily
),

final as (
    select
        date_trunc('month', usage_date)::date as month,
        customer_key,
        sum(events)::bigint as usage_events,
        sum(units)::decimal(38, 0) as usage_units,
        -- the days with usage as bits of the month's days (day n: bit n - 1), or-ed and counted:
        -- count(distinct usage_date), at half the cost of a distinct aggregate per customer
        coalesce(bit_count(bit_or(1::bigint << (day(usage_date) - 1))), 0)::bigint
            as active_days,
        count(distinct product)::bigint as products_used
    from fct_usage_daily
    group by date_trunc('month', usage_date)::date, customer_key
)

select * from final
