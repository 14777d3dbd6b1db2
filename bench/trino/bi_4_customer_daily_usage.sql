-- BI 4: one customer's daily usage by product (a drill-down from a dashboard).
select usage_date, product, sum(events) as events, sum(units) as units
from marts.fct_usage_daily
where customer_key = (
    select customer_key
    from marts.fct_usage_daily
    where usage_date = date '{day}' and customer_key <> 'unknown'
    order by units desc, customer_key
    limit 1
)
group by usage_date, product
order by usage_date, product
