-- fct_customer_adoption_monthly: one row per (month, customer_key) of fct_customer_month: the
-- customer's product adoption in the month next to the month before, for Sales (an account owner
-- filters on owner_name; owner, segment and region are as of the month's last instant).
-- Date basis: month = the UTC month of the usage (as fct_customer_month). A customer without a
-- row the month before compares against zero and has units_trend `new`.
-- products: the products with usage events in the month (sorted, comma-separated, null if none);
-- products_adopted / products_dropped: used this month and not the month before / the reverse.
-- units_trend: new | up | down | flat (usage_units against the month before).
with

fct_customer_month as (
    select * from fct_customer_month
),

fct_usage_daily as (
    select * from fct_usage_daily
),

months as (
    select * from fct_customer_month
    where month >= $window_start and month < $window_end
),

product_months as (
    select distinct
        date_trunc('month', usage_date)::date as month,
        customer_key,
        product
    from fct_usage_daily
),

products as (
    select
        month,
        customer_key,
        string_agg(product, ',' order by product) as products
    from product_months
    group by all
),

adopted as (
    select
        this_month.month,
        this_month.customer_key,
        string_agg(this_month.product, ',' order by this_month.product) as products_adopted,
        count(*)::bigint as products_adopted_count
    from product_months as this_month
    anti join product_months as month_before
        on
            this_month.customer_key = month_before.customer_key
            and this_month.product = month_before.product
            and month_before.month = (this_month.month - interval 1 month)::date
    group by all
),

dropped as (
    select
        (month_before.month + interval 1 month)::date as month,
        month_before.customer_key,
        string_agg(month_before.product, ',' order by month_before.product) as products_dropped,
        count(*)::bigint as products_dropped_count
    from product_months as month_before
    anti join product_months as this_month
        on
            month_before.customer_key = this_month.customer_key
            and month_before.product = this_month.product
            and this_month.month = (month_before.month + interval 1 month)::date
    group by all
),

final as (
    select
        months.month,
        months.customer_key,
        months.crm_account_id,
        months.owner_name,
        months.segment,
        months.region,
        months.plan_code,
        months.usage_units,
        coalesce(month_before.usage_units, 0) as previous_usage_units,
        months.usage_units - coalesce(month_before.usage_units, 0) as usage_units_change,
        case
            when month_before.usage_units > 0
                then
                    round(
                        100.0 * (months.usage_units - month_before.usage_units)
                        / month_before.usage_units,
                        1
                    )::double
        end as usage_units_change_pct,
        months.active_days,
        coalesce(month_before.active_days, 0) as previous_active_days,
        months.products_used,
        coalesce(month_before.products_used, 0) as previous_products_used,
        products.products,
        adopted.products_adopted,
        coalesce(adopted.products_adopted_count, 0) as products_adopted_count,
        dropped.products_dropped,
        coalesce(dropped.products_dropped_count, 0) as products_dropped_count,
        case
            when month_before.customer_key is null then 'new'
            when months.usage_units > month_before.usage_units then 'up'
            when months.usage_units < month_before.usage_units then 'down'
            else 'flat'
        end as units_trend
    from months
    left join fct_customer_month as month_before
        on
            months.customer_key = month_before.customer_key
            and month_before.month = (months.month - interval 1 month)::date
    left join products
        on months.month = products.month and months.customer_key = products.customer_key
    left join adopted
        on months.month = adopted.month and months.customer_key = adopted.customer_key
    left join dropped
        on months.month = dropped.month and months.customer_key = dropped.customer_key
)

select * from final
