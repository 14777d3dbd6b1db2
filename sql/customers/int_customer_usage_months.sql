-- int_customer_usage_months: one row per (month, customer_key) with usage in the month (from
-- marts.fct_usage_daily, the month's days only), with its number of active days. What
-- int_customer_months needs of usage (each customer's first month of usage and the latest month
-- holding usage) in one row per customer and month: it reads this table whole, a file a month,
-- instead of every day of the daily fact. A customer with no usage in a month has no row.
with

fct_usage_daily as (
    select * from fct_usage_daily
),

final as (
    select
        date_trunc('month', usage_date)::date as month,
        customer_key,
        count(distinct usage_date) as active_days
    from fct_usage_daily
    group by date_trunc('month', usage_date)::date, customer_key
)

select * from final
