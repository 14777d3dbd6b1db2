-- BI 1: usage trend, units and events by product per day over the last 7 days.
select usage_date, product, sum(events) as events, sum(units) as units
from marts.fct_usage_daily
where usage_date between date '{day}' - interval '6' day and date '{day}'
group by usage_date, product
order by usage_date, product
