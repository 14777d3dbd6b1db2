-- bi.revenue_by_segment_region_month: one row per (month, segment, region): revenue and usage as
-- reported at the time, next to today's figures. For Finance.
-- As reported: a closed month (`c360 close-month`, the Iceberg tag close-YYYY-MM on
-- marts.fct_customer_month) shows its figures as closed; an open month shows the current ones.
-- The as-closed rows are rebuilt from the current rows and marts.restatements (which lists every
-- measure that changed since the close, with its as-closed value): a restated measure takes its
-- as-closed value, a customer row added since the close is left out (it has no as-closed
-- usage_units; usage_units is never null in a row) and a row removed since comes back. So the
-- segment and region are the customer's as of the month's last instant as known at the close.
-- The same figures for one closed month straight from the tag:
--   select ... from iceberg.marts.fct_customer_month for version as of 'close-2026-10'
-- Date basis (as marts.fct_customer_month): invoices by issued_at (total, tax included), credit
-- notes by issued_at, refunds by refunded_at, usage by occurred_at; USD at each document's rate.
-- net_revenue_usd_current: today's figure for the same (month, segment, region);
-- net_revenue_usd_restated_by = current - as reported (0 for an open month). A segment or region
-- that is unknown (billing-only customers, the unknown member) reads 'Unassigned'.
with

fct_customer_month as (
    select * from iceberg.marts.fct_customer_month
),

restatements as (
    select * from iceberg.marts.restatements
),

-- the table's Iceberg refs (branches and tags): a metadata table, hence the `$`
fct_customer_month_refs as (
    select * from iceberg.marts."fct_customer_month$refs"  -- noqa: RF05
),

closed_months as (
    select
        cast(substr(name, 7) || '-01' as date) as month,
        name as close_tag
    from fct_customer_month_refs
    where type = 'TAG' and regexp_like(name, '^close-[0-9]{4}-[0-9]{2}$')
),

-- per (month, customer) of a closed month: measure -> value as closed, for restated measures
as_closed_values as (
    select
        restatements.month,
        restatements.customer_key,
        map_agg(restatements.measure, restatements.as_closed) as as_closed
    from restatements
    inner join closed_months
        on restatements.month = closed_months.month
    where
        restatements.measure in (
            'segment', 'region', 'usage_units', 'invoiced_usd', 'credits_usd', 'refunds_usd',
            'net_revenue_usd'
        )
    group by restatements.month, restatements.customer_key
),

current_rows as (
    select
        month,
        customer_key,
        coalesce(segment, 'Unassigned') as segment,
        coalesce(region, 'Unassigned') as region,
        usage_units,
        invoiced_usd,
        credits_usd,
        refunds_usd,
        net_revenue_usd
    from fct_customer_month
),

-- current values, or the as-closed value where a measure was restated since the close
reported_values as (
    select
        coalesce(facts.month, closed.month) as month,
        coalesce(facts.customer_key, closed.customer_key) as customer_key,
        if(
            contains(map_keys(closed.as_closed), 'segment'),
            element_at(closed.as_closed, 'segment'),
            facts.segment
        ) as segment,
        if(
            contains(map_keys(closed.as_closed), 'region'),
            element_at(closed.as_closed, 'region'),
            facts.region
        ) as region,
        if(
            contains(map_keys(closed.as_closed), 'usage_units'),
            cast(element_at(closed.as_closed, 'usage_units') as decimal(38, 0)),
            facts.usage_units
        ) as usage_units,
        if(
            contains(map_keys(closed.as_closed), 'invoiced_usd'),
            cast(element_at(closed.as_closed, 'invoiced_usd') as decimal(18, 2)),
            facts.invoiced_usd
        ) as invoiced_usd,
        if(
            contains(map_keys(closed.as_closed), 'credits_usd'),
            cast(element_at(closed.as_closed, 'credits_usd') as decimal(18, 2)),
            facts.credits_usd
        ) as credits_usd,
        if(
            contains(map_keys(closed.as_closed), 'refunds_usd'),
            cast(element_at(closed.as_closed, 'refunds_usd') as decimal(18, 2)),
            facts.refunds_usd
        ) as refunds_usd,
        if(
            contains(map_keys(closed.as_closed), 'net_revenue_usd'),
            cast(element_at(closed.as_closed, 'net_revenue_usd') as decimal(18, 2)),
            facts.net_revenue_usd
        ) as net_revenue_usd
    from current_rows as facts
    full outer join as_closed_values as closed
        on facts.month = closed.month and facts.customer_key = closed.customer_key
),

reported as (
    select
        month,
        coalesce(segment, 'Unassigned') as segment,
        coalesce(region, 'Unassigned') as region,
        count(*) as customers,
        sum(usage_units) as usage_units,
        sum(invoiced_usd) as invoiced_usd,
        sum(credits_usd) as credits_usd,
        sum(refunds_usd) as refunds_usd,
        sum(net_revenue_usd) as net_revenue_usd
    from reported_values
    -- a row added since its month closed has no as-closed usage_units
    where usage_units is not null
    group by month, coalesce(segment, 'Unassigned'), coalesce(region, 'Unassigned')
),

current_figures as (
    select
        month,
        segment,
        region,
        count(*) as customers,
        sum(net_revenue_usd) as net_revenue_usd
    from current_rows
    group by month, segment, region
),

final as (
    select
        coalesce(reported.month, current_figures.month) as month,
        coalesce(reported.segment, current_figures.segment) as segment,
        coalesce(reported.region, current_figures.region) as region,
        closed_months.close_tag is not null as is_closed,
        closed_months.close_tag,
        coalesce(reported.customers, 0) as customers,
        coalesce(reported.usage_units, 0) as usage_units,
        coalesce(reported.invoiced_usd, 0) as invoiced_usd,
        coalesce(reported.credits_usd, 0) as credits_usd,
        coalesce(reported.refunds_usd, 0) as refunds_usd,
        coalesce(reported.net_revenue_usd, 0) as net_revenue_usd,
        coalesce(current_figures.customers, 0) as customers_current,
        coalesce(current_figures.net_revenue_usd, 0) as net_revenue_usd_current,
        coalesce(current_figures.net_revenue_usd, 0) - coalesce(reported.net_revenue_usd, 0)
            as net_revenue_usd_restated_by
    from reported
    full outer join current_figures
        on
            reported.month = current_figures.month
            and reported.segment = current_figures.segment
            and reported.region = current_figures.region
    left join closed_months
        on coalesce(reported.month, current_figures.month) = closed_months.month
)

select * from final
