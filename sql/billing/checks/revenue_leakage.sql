-- Violations: customer-months whose usage is not billed as the plan says (status
-- no_subscription, unbilled, underbilled or overbilled), the largest gaps first (USD at the
-- month-end rate, then minor units, then metered units: no_subscription has no gap).
with

final as (
    select
        month,
        customer_key,
        crm_account_id,
        status,
        currency,
        plan_code,
        metered_units,
        expected_overage_units,
        billed_units,
        unit_gap,
        expected_overage_minor,
        billed_overage_minor,
        amount_gap_minor,
        amount_gap_usd
    from model_output
    where status in ('no_subscription', 'unbilled', 'underbilled', 'overbilled')
)

select * from final
order by
    abs(amount_gap_usd) desc nulls last,
    abs(amount_gap_minor) desc nulls last,
    metered_units desc,
    month asc,
    customer_key asc
