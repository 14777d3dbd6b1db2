-- close_month_totals: the figures `c360 close-month` records in marts.month_closes for a month,
-- computed from the tagged (as-closed) snapshot of marts.fct_customer_month: one row per month.
with

fct_customer_month as (
    select * from fct_customer_month
),

final as (
    select
        month,
        count(*)::bigint as rows,
        count(distinct customer_key)::bigint as customers,
        sum(usage_events)::bigint as usage_events,
        sum(usage_units)::decimal(38, 0) as usage_units,
        sum(billed_usage_units)::decimal(38, 0) as billed_usage_units,
        sum(invoiced_usd)::decimal(38, 2) as invoiced_usd,
        sum(credits_usd)::decimal(38, 2) as credits_usd,
        sum(refunds_usd)::decimal(38, 2) as refunds_usd,
        sum(net_revenue_usd)::decimal(38, 2) as net_revenue_usd
    from fct_customer_month
    group by month
)

select * from final
