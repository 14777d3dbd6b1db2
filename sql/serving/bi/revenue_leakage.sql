-- bi.revenue_leakage: one row per customer-month of marts.fct_usage_billing_reconciliation whose
-- usage is not billed as the plan says: the open gaps, for Finance (status unbilled,
-- underbilled, overbilled or no_subscription; ok and pending months are not gaps).
-- Date basis: month = the UTC month of the usage (the service period of its usage lines);
-- segment, region and owner as of the month's last instant (marts.fct_customer_month and the
-- marts.dim_customer version then; 'Unassigned' when unknown); account_name the customer's latest
-- (bi.customers). Money: *_minor in the customer's currency (integer minor units, next to
-- `currency`); *_usd converted at the rate of the month's last day (null when that rate is
-- missing, never 0). amount_gap = billed - expected: negative is revenue not billed, positive is
-- billed too much (to refund); money_at_stake_usd = its size. no_subscription has no plan, so no
-- price and no gap: metered_units says how much was used without one.
-- owner_email is masked for the bi user. Security invoker.
with

fct_usage_billing_reconciliation as (
    select * from iceberg.marts.fct_usage_billing_reconciliation
),

fct_customer_month as (
    select * from iceberg.marts.fct_customer_month
),

dim_customer as (
    select * from iceberg.marts.dim_customer
),

customers as (
    select * from iceberg.bi.customers
),

open_gaps as (
    select
        *,
        with_timezone(cast(month + interval '1' month as timestamp(6)), 'UTC') as month_end
    from fct_usage_billing_reconciliation
    where status in ('unbilled', 'underbilled', 'overbilled', 'no_subscription')
),

final as (
    select
        open_gaps.month,
        open_gaps.status,
        open_gaps.customer_key,
        customers.account_name,
        coalesce(facts.segment, 'Unassigned') as segment,
        coalesce(facts.region, 'Unassigned') as region,
        coalesce(facts.owner_name, 'Unassigned') as owner_name,
        versions.owner_email,
        open_gaps.plan_code,
        open_gaps.currency,
        open_gaps.metered_units,
        open_gaps.included_units,
        open_gaps.overage_unit_price_minor,
        open_gaps.expected_overage_units,
        open_gaps.billed_units,
        open_gaps.unit_gap,
        open_gaps.expected_overage_minor,
        open_gaps.billed_overage_minor,
        open_gaps.amount_gap_minor,
        open_gaps.month_end_usd_per_unit,
        open_gaps.expected_overage_usd,
        open_gaps.billed_overage_usd,
        open_gaps.amount_gap_usd,
        abs(open_gaps.amount_gap_usd) as money_at_stake_usd
    from open_gaps
    inner join fct_customer_month as facts
        on
            open_gaps.month = facts.month
            and open_gaps.customer_key = facts.customer_key
    left join customers
        on open_gaps.customer_key = customers.customer_key
    left join dim_customer as versions
        on
            open_gaps.customer_key = versions.customer_key
            and open_gaps.month_end > versions.valid_from
            and (versions.valid_to is null or open_gaps.month_end <= versions.valid_to)
)

select * from final
