-- BI 2: the month's top 20 customers by units, with their current CRM attributes.
select
    facts.customer_key,
    dim.account_name,
    dim.segment,
    dim.region,
    facts.usage_units,
    facts.net_revenue_usd
from marts.fct_customer_month as facts
left join marts.dim_customer as dim
    on facts.customer_key = dim.customer_key and dim.is_current
where facts.month = date '{month}'
order by facts.usage_units desc
limit 20
