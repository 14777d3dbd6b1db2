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
        sum(metered_units)::bigint as metered_units,
        sum(expected_overage_units)::bigint as expected_overage_units,
        sum(billed_units)::bigint as billed_units,
        sum(expected_overage_minor)::bigint as expected_overage_minor,
        sum(billed_overage_minor)::bigint as billed_overage_minor,
        sum(amount_gap_minor)::bigint as amount_gap_minor,
        sum(amount_gap_usd)::decimal(18, 2) as amount_gap_usd
    from model_output
    group by all
)

select * from final
order by month, currency nulls last, status
