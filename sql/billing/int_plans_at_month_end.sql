-- int_plans_at_month_end: one row per (month, customer_key) that has a plan at the month's last
-- instant: the version of a subscription in force then (the version in effect: valid_from <
-- first instant of the next month <= valid_to; the subscription started, not ended, not
-- canceled without an end date). With several subscriptions in force, the one with the highest
-- monthly fee, then the latest started_at, then the smallest subscription_id.
-- fct_customer_month takes its plan_code from here and fct_usage_billing_reconciliation the
-- included units and overage price of the same version, so both always name the same plan.
-- A mid-month plan change counts for the whole month (no proration); a customer whose
-- subscription ended before the month's end has no row.
with

int_subscription_versions as (
    select * from int_subscription_versions
),

window_months as (
    select
        unnest(
            generate_series($window_start::date, $window_end::date - 1, interval 1 month)
        )::date as month
),

month_ends as (
    select
        month,
        (month + interval 1 month)::timestamptz as month_end
    from window_months
),

in_force as (
    select
        month_ends.month,
        versions.*
    from month_ends
    inner join int_subscription_versions as versions
        on
            month_ends.month_end > versions.valid_from
            and (versions.valid_to is null or month_ends.month_end <= versions.valid_to)
            and month_ends.month_end > versions.started_at
            and (versions.ended_at is null or month_ends.month_end <= versions.ended_at)
            and not (versions.status = 'canceled' and versions.ended_at is null)
    qualify
        row_number() over (
            partition by month_ends.month, versions.customer_key
            order by
                versions.monthly_fee_minor desc,
                versions.started_at desc,
                versions.subscription_id asc
        ) = 1
),

final as (
    select
        month,
        customer_key,
        subscription_id,
        billing_customer_id,
        plan_code,
        status,
        monthly_fee_minor,
        included_units,
        overage_unit_price_minor,
        started_at,
        ended_at,
        valid_from as version_valid_from
    from in_force
)

select * from final
