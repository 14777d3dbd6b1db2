-- revenue_leakage_by_status: the demo summary's reading of marts.fct_usage_billing_reconciliation:
-- one row per status, the customer-months in it, the months they span, the units metered and,
-- for judged months, the gaps: money in USD at each month's month-end rate (gaps whose rate is
-- missing count in usd_missing, not as 0). money_at_stake_usd = the size of the gaps: revenue
-- not billed (unbilled, underbilled) or billed too much (overbilled); no_subscription has no
-- price; a pending month is not judged yet (its billing run has not happened), so no gap.
with

fct_usage_billing_reconciliation as (
    select * from fct_usage_billing_reconciliation
),

final as (
    select
        status,
        count(*)::bigint as customer_months,
        count(distinct customer_key)::bigint as customers,
        min(month) as first_month,
        max(month) as last_month,
        sum(metered_units)::bigint as metered_units,
        sum(unit_gap) filter (where status <> 'pending')::bigint as unit_gap,
        sum(amount_gap_usd) filter (where status <> 'pending')::decimal(18, 2) as amount_gap_usd,
        sum(abs(amount_gap_usd)) filter (where status <> 'pending')::decimal(18, 2)
            as money_at_stake_usd,
        count(*) filter (
            where status <> 'pending' and amount_gap_minor <> 0 and amount_gap_usd is null
        )::bigint as usd_missing
    from fct_usage_billing_reconciliation
    group by status
)

select * from final
order by
    case status
        when 'unbilled' then 1
        when 'underbilled' then 2
        when 'overbilled' then 3
        when 'no_subscription' then 4
        when 'ok' then 5
        else 6
    end
