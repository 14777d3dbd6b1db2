-- The reconciliation per month, currency and status (every status, ok and pending included):
-- customers, units and money in minor units of the currency, the gap in USD at the month-end
-- rate. Reported in the revenue_leakage check's metadata.
with

final as (
    select
        month,
        currency,
        status,
        count(*)::bigint as customers,
        sum(metered_units)::decimal(38, 0) as metered_units,
        sum(expected_overage_units)::decimal(38, 0) as expected_overage_units,
        sum(billed_units)::decimal(38, 0) as billed_units,
        sum(expected_overage_minor)::decimal(38, 0) as expected_overage_minor,
        sum(billed_overage_minor)::decimal(38, 0) as billed_overage_minor,
        sum(amount_gap_minor)::decimal(38, 0) as amount_gap_minor,
        sum(amount_gap_usd)::decimal(18, 2) as amount_gap_usd
    from model_output
    group by all
)

select * from final
order by month, currency nulls last, status
