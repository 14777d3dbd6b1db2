-- bi.customer_360: one row per current customer (the current version of marts.dim_customer,
-- from bi.customers; the 'unknown' member included: usage and billing that map to no customer),
-- with the latest month's plan, adoption and revenue, unreconciled invoices and recent usage
-- anomalies.
-- For Customer Success and Sales.
-- Date basis: latest_month = the latest month of marts.fct_customer_month (the data's last
-- month, the same for every customer; it may still be running). Revenue is net_revenue_usd
-- (invoiced - credits - refunds, USD, each document in the month of its own date), current
-- figures (restated if a month was closed: see bi.revenue_by_segment_region_month).
-- net_revenue_usd_trailing_12m covers the 12 months through latest_month.
-- usage_anomalies_last_30_days: anomalies in the 30 UTC days through the latest usage day of
-- marts.fct_usage_daily (not the wall clock).
-- owner_email is masked for the bi user. Security invoker: the reader's rights and column
-- masks apply to the marts it reads.
with

current_customers as (
    select * from iceberg.bi.customers
    where is_current
),

fct_customer_month as (
    select * from iceberg.marts.fct_customer_month
),

fct_customer_adoption_monthly as (
    select * from iceberg.marts.fct_customer_adoption_monthly
),

fct_invoice_reconciliation as (
    select * from iceberg.marts.fct_invoice_reconciliation
),

usage_anomalies as (
    select * from iceberg.marts.usage_anomalies
),

fct_usage_daily as (
    select * from iceberg.marts.fct_usage_daily
),

latest_month as (
    select max(month) as month from fct_customer_month
),

latest_usage_day as (
    select max(usage_date) as usage_date from fct_usage_daily
),

revenue as (
    select
        facts.customer_key,
        sum(facts.net_revenue_usd) filter (
            where facts.month = latest_month.month
        ) as net_revenue_usd_latest_month,
        sum(facts.net_revenue_usd) filter (
            where facts.month > date_add('month', -12, latest_month.month)
        ) as net_revenue_usd_trailing_12m,
        sum(facts.net_revenue_usd) as net_revenue_usd_lifetime
    from fct_customer_month as facts
    cross join latest_month
    group by facts.customer_key
),

latest_adoption as (
    select adoption.*
    from fct_customer_adoption_monthly as adoption
    inner join latest_month
        on adoption.month = latest_month.month
),

invoice_issues as (
    select
        customer_key,
        count(*) as invoices_not_reconciling
    from fct_invoice_reconciliation
    where status <> 'ok' and customer_key is not null
    group by customer_key
),

recent_anomalies as (
    select
        anomalies.customer_key,
        count(*) as usage_anomalies_last_30_days
    from usage_anomalies as anomalies
    cross join latest_usage_day
    where anomalies.usage_date > latest_usage_day.usage_date - interval '30' day
    group by anomalies.customer_key
),

final as (
    select
        customers.customer_key,
        customers.crm_account_id,
        customers.billing_customer_id,
        customers.account_name,
        customers.segment,
        customers.region,
        customers.owner_name,
        customers.owner_email,
        customers.customer_since,
        customers.valid_from as current_version_since,
        latest_month.month as latest_month,
        latest_adoption.plan_code,
        coalesce(latest_adoption.usage_units, 0) as usage_units_latest_month,
        coalesce(latest_adoption.active_days, 0) as active_days_latest_month,
        coalesce(latest_adoption.products_used, 0) as products_used_latest_month,
        latest_adoption.products as products_latest_month,
        latest_adoption.units_trend,
        latest_adoption.usage_units_change_pct,
        coalesce(revenue.net_revenue_usd_latest_month, 0) as net_revenue_usd_latest_month,
        coalesce(revenue.net_revenue_usd_trailing_12m, 0) as net_revenue_usd_trailing_12m,
        coalesce(revenue.net_revenue_usd_lifetime, 0) as net_revenue_usd_lifetime,
        coalesce(invoice_issues.invoices_not_reconciling, 0) as invoices_not_reconciling,
        coalesce(recent_anomalies.usage_anomalies_last_30_days, 0)
            as usage_anomalies_last_30_days
    from current_customers as customers
    cross join latest_month
    left join latest_adoption
        on customers.customer_key = latest_adoption.customer_key
    left join revenue
        on customers.customer_key = revenue.customer_key
    left join invoice_issues
        on customers.customer_key = invoice_issues.customer_key
    left join recent_anomalies
        on customers.customer_key = recent_anomalies.customer_key
)

select * from final
