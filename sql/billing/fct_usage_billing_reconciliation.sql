-- fct_usage_billing_reconciliation: revenue assurance, one row per (month, customer_key) of
-- fct_customer_month (exactly its rows): is the usage metered in the month billed as the plan
-- in force at the month's last instant says?
-- Date basis: metered_units = fct_customer_month.usage_units (deduplicated events, UTC month of
-- occurred_at); billed_units / billed_overage_minor = quantity / amount_minor of usage line
-- items whose service_period_start falls in the month, on invoices neither draft nor void
-- (latest export), whatever month the invoice was issued in (int_billing_documents_resolved's
-- usage_line documents, the same lines as fct_customer_month.billed_usage_units); the plan
-- (included_units, overage_unit_price_minor) = int_customer_months, the version that gives
-- fct_customer_month.plan_code. Units and minor units are exact decimal(38, 0) (as usage_units).
-- A mid-month plan change is judged on the plan at month end for
-- the whole month (no proration); prices are flat per unit (no tiers).
-- expected_overage_units = greatest(0, metered - included); expected_overage_minor = that x the
-- plan's price; unit_gap = billed_units - expected_overage_units; amount_gap_minor =
-- billed_overage_minor - expected_overage_minor (null without a plan in force).
-- status, the first that applies: pending (the month's billing run has not happened: no invoice,
-- neither draft nor void, anywhere has issued_at on or after the first instant of the next month
-- - decided by the data, never by the wall clock); no_subscription (no plan in force, usage or
-- billed usage) / ok (no plan, nothing to bill); unbilled (overage expected, nothing billed);
-- underbilled (amount_gap_minor < 0); overbilled (> 0); ok.
-- Money is integer minor units of the customer's currency: the currency of the plan's billing
-- customer, else of the customer's earliest-created billing customer (null without one). USD
-- columns convert at the rate of the month's last day (rate_date), in exact decimals rounded to
-- the cent per amount, USD at 1; null when that rate is missing (never 0).
with

fct_customer_month as (
    select * from fct_customer_month
),

int_customer_months as (
    select * from int_customer_months
),

int_billing_documents_resolved as (
    select * from int_billing_documents_resolved
),

int_billing_customers_resolved as (
    select * from int_billing_customers_resolved
),

stg_billing_fx_rates as (
    select * from stg_billing_fx_rates
),

int_currency_minor_units as (
    select * from int_currency_minor_units
),

facts_in_window as (
    select * from fct_customer_month
    where month >= $window_start and month < $window_end
),

-- the latest billing run: the latest issued_at of an invoice that counts (not draft, not void)
latest_billing_run as (
    select max(document_at) as issued_at
    from int_billing_documents_resolved
    where document_type = 'invoice'
),

billed_per_month as (
    select
        report_month as month,
        customer_key,
        sum(units)::decimal(38, 0) as billed_units,
        sum(amount_minor)::decimal(38, 0) as billed_overage_minor
    from int_billing_documents_resolved
    where
        document_type = 'usage_line'
        and report_month >= $window_start
        and report_month < $window_end
    group by all
),

-- a customer's currency without a plan in force: its earliest-created billing customer's
customer_currencies as (
    select
        customer_key,
        arg_min(currency, { 'created': created_at, 'id': billing_customer_id }) as currency
    from int_billing_customers_resolved
    group by customer_key
),

expected as (
    select
        facts.month,
        facts.customer_key,
        facts.crm_account_id,
        month_end_plans.plan_code,
        month_end_plans.subscription_id,
        coalesce(plan_billing_customers.currency, customer_currencies.currency) as currency,
        facts.usage_units as metered_units,
        month_end_plans.included_units,
        month_end_plans.overage_unit_price_minor,
        month_end_plans.subscription_id is not null as has_plan,
        (facts.month + interval 1 month)::timestamptz as month_end,
        (facts.month + interval 1 month - interval 1 day)::date as month_last_day,
        coalesce(billed.billed_units, 0)::decimal(38, 0) as billed_units,
        coalesce(billed.billed_overage_minor, 0)::decimal(38, 0) as billed_overage_minor,
        case
            when month_end_plans.subscription_id is not null
                then
                    greatest(
                        0, facts.usage_units - month_end_plans.included_units
                    )::decimal(38, 0)
        end as expected_overage_units
    from facts_in_window as facts
    left join int_customer_months as month_end_plans
        on
            facts.month = month_end_plans.month
            and facts.customer_key = month_end_plans.customer_key
    left join int_billing_customers_resolved as plan_billing_customers
        on month_end_plans.billing_customer_id = plan_billing_customers.billing_customer_id
    left join customer_currencies
        on facts.customer_key = customer_currencies.customer_key
    left join billed_per_month as billed
        on
            facts.month = billed.month
            and facts.customer_key = billed.customer_key
),

gaps as (
    select
        *,
        (expected_overage_units * overage_unit_price_minor)::decimal(38, 0)
            as expected_overage_minor,
        (billed_units - expected_overage_units)::decimal(38, 0) as unit_gap,
        (billed_overage_minor - expected_overage_units * overage_unit_price_minor)::decimal(38, 0)
            as amount_gap_minor
    from expected
),

judged as (
    select
        gaps.*,
        case
            when
                latest_billing_run.issued_at is null
                or latest_billing_run.issued_at < gaps.month_end
                then 'pending'
            when not gaps.has_plan and (gaps.metered_units > 0 or gaps.billed_units > 0)
                then 'no_subscription'
            when not gaps.has_plan then 'ok'
            when gaps.expected_overage_units > 0 and gaps.billed_units = 0 then 'unbilled'
            when gaps.amount_gap_minor < 0 then 'underbilled'
            when gaps.amount_gap_minor > 0 then 'overbilled'
            else 'ok'
        end as status
    from gaps
    cross join latest_billing_run
),

-- the rate of the row's currency on the month's last day, and the size of its minor unit
with_rates as (
    select
        judged.*,
        case
            when judged.currency = 'USD' then 1::decimal(38, 12)
            else rates.usd_per_unit
        end as month_end_usd_per_unit,
        coalesce(minor_units.minor_unit, 0.01) as minor_unit
    from judged
    left join stg_billing_fx_rates as rates
        on
            judged.month_last_day = rates.rate_date
            and judged.currency = rates.currency
    left join int_currency_minor_units as minor_units
        on judged.currency = minor_units.currency
),

final as (
    select
        month,
        customer_key,
        crm_account_id,
        plan_code,
        subscription_id,
        currency,
        metered_units,
        included_units,
        overage_unit_price_minor,
        expected_overage_units,
        expected_overage_minor,
        billed_units,
        billed_overage_minor,
        unit_gap,
        amount_gap_minor,
        status,
        month_end_usd_per_unit,
        round(
            expected_overage_minor::decimal(18, 0) * minor_unit * month_end_usd_per_unit, 2
        )::decimal(18, 2) as expected_overage_usd,
        round(
            billed_overage_minor::decimal(18, 0) * minor_unit * month_end_usd_per_unit, 2
        )::decimal(18, 2) as billed_overage_usd,
        round(
            amount_gap_minor::decimal(18, 0) * minor_unit * month_end_usd_per_unit, 2
        )::decimal(18, 2) as amount_gap_usd
    from with_rates
)

select * from final
