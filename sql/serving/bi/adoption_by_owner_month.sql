-- bi.adoption_by_owner_month: one row per (month, owner_name): the product adoption of the
-- customers an account owner holds at the month's last instant. For Sales.
-- Built on marts.fct_customer_adoption_monthly (one row per customer and month; owner as of the
-- month's last instant, usage by UTC month of occurred_at, compared with the month before).
-- active_customers: with usage in the month; customers_new / _up / _down / _flat: units_trend
-- counts; products_adopted / products_dropped: (customer, product) pairs used this month and not
-- the month before / the reverse; avg_products_per_active_customer over active customers.
-- Customers without an owner (billing-only, the unknown member) read 'Unassigned'.
with

fct_customer_adoption_monthly as (
    select * from iceberg.marts.fct_customer_adoption_monthly
),

final as (
    select
        month,
        coalesce(owner_name, 'Unassigned') as owner_name,
        count(*) as customers,
        count_if(usage_units > 0) as active_customers,
        sum(usage_units) as usage_units,
        sum(previous_usage_units) as previous_usage_units,
        sum(usage_units_change) as usage_units_change,
        count_if(units_trend = 'new') as customers_new,
        count_if(units_trend = 'up') as customers_up,
        count_if(units_trend = 'down') as customers_down,
        count_if(units_trend = 'flat') as customers_flat,
        sum(products_adopted_count) as products_adopted,
        sum(products_dropped_count) as products_dropped,
        round(avg(products_used) filter (where usage_units > 0), 2)
            as avg_products_per_active_customer
    from fct_customer_adoption_monthly
    group by month, coalesce(owner_name, 'Unassigned')
)

select * from final
