-- BI 3: the month's revenue and usage by segment and region (fct_customer_month).
select
    segment,
    region,
    count(*) as customers,
    sum(usage_units) as usage_units,
    sum(invoiced_usd) as invoiced_usd,
    sum(net_revenue_usd) as net_revenue_usd
from marts.fct_customer_month
where month = date '{month}'
group by segment, region
order by net_revenue_usd desc
