-- bi.recent_usage_anomalies: one row per flagged (usage_date, customer_key, tenant_id, product)
-- of marts.usage_anomalies in the last 30 UTC days of data, with the customer to call. For Risk.
-- "Recent" is anchored on the latest usage day in marts.fct_usage_daily (latest_usage_date), not
-- on the wall clock: the 30 days latest_usage_date - 29 .. latest_usage_date.
-- reason is the strongest reason (usage_after_subscription_ended, no_active_subscription, spike),
-- reasons all of them; baseline_units and score are null until the key has 14 days of history.
-- The customer is its latest version of marts.dim_customer, from bi.customers ('unknown' = a
-- tenant no customer claims).
with

usage_anomalies as (
    select * from iceberg.marts.usage_anomalies
),

fct_usage_daily as (
    select * from iceberg.marts.fct_usage_daily
),

customers as (
    select * from iceberg.bi.customers
),

latest_usage_day as (
    select max(usage_date) as usage_date from fct_usage_daily
),

final as (
    select
        anomalies.usage_date,
        latest_usage_day.usage_date as latest_usage_date,
        date_diff('day', anomalies.usage_date, latest_usage_day.usage_date) as days_ago,
        anomalies.customer_key,
        customers.account_name,
        customers.segment,
        customers.region,
        customers.owner_name,
        anomalies.tenant_id,
        anomalies.product,
        anomalies.units,
        anomalies.baseline_units,
        anomalies.score,
        anomalies.reason,
        anomalies.reasons
    from usage_anomalies as anomalies
    cross join latest_usage_day
    left join customers
        on anomalies.customer_key = customers.customer_key
    where anomalies.usage_date > latest_usage_day.usage_date - interval '30' day
)

select * from final
