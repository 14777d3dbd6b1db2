-- int_customer_months: one row per (month, customer_key) of the monthly customer facts, with the
-- plan the customer is on at the month's last instant. The rows: every month from the customer's
-- first activity (usage, a subscription start, a counted invoice, a credit note, a refund, billed
-- usage) through one global end month, the latest month holding a usage event, an invoice's
-- issued_at, a credit note or a refund anywhere in the data (the same for every customer; FX
-- rates and the wall clock do not count). So its rows depend on the data only, whichever months
-- a run builds: a month after the end month has none.
-- The plan: the version of a subscription in force at the month's last instant (the version in
-- effect: valid_from < first instant of the next month <= valid_to; the subscription started,
-- not ended, not canceled without an end date). With several subscriptions in force, the one
-- with the highest monthly fee, then the latest started_at, then the smallest subscription_id;
-- null columns without one. A mid-month plan change counts for the whole month (no proration).
-- fct_customer_month takes its rows and plan_code from here, fct_usage_billing_reconciliation
-- the included units and overage price of the same version: both always name the same plan.
-- Usage comes from int_customer_usage_months (a row per customer and month with usage).
with

int_customer_usage_months as (
    select * from int_customer_usage_months
),

int_billing_documents_resolved as (
    select * from int_billing_documents_resolved
),

int_subscription_versions as (
    select * from int_subscription_versions
),

-- per customer and source: the first month of activity, and the last month that counts for the
-- end month (usage, and invoices, credit notes and refunds: not billed usage, not subscriptions)
activity_months as (
    select
        customer_key,
        min(month) as first_month,
        max(month) as last_month
    from int_customer_usage_months
    group by customer_key
    union all
    select
        customer_key,
        min(report_month) as first_month,
        max(report_month) filter (
            where document_type in ('invoice', 'credit_note', 'refund')
        ) as last_month
    from int_billing_documents_resolved
    group by customer_key
    union all
    select
        customer_key,
        date_trunc('month', min(started_at))::date as first_month,
        null::date as last_month
    from int_subscription_versions
    group by customer_key
),

end_month as (
    select max(last_month) as month from activity_months
),

first_activity as (
    select
        customer_key,
        min(first_month) as first_month
    from activity_months
    group by customer_key
),

window_months as (
    select
        unnest(
            generate_series($window_start::date, $window_end::date - 1, interval 1 month)
        )::date as month
),

spine as (
    select
        window_months.month,
        first_activity.customer_key,
        (window_months.month + interval 1 month)::timestamptz as month_end
    from window_months
    inner join end_month
        on window_months.month <= end_month.month
    inner join first_activity
        on window_months.month >= first_activity.first_month
),

plans_in_force as (
    select
        spine.month,
        spine.customer_key,
        versions.subscription_id,
        versions.billing_customer_id,
        versions.plan_code,
        versions.monthly_fee_minor,
        versions.included_units,
        versions.overage_unit_price_minor,
        versions.valid_from
    from spine
    inner join int_subscription_versions as versions
        on
            spine.customer_key = versions.customer_key
            and spine.month_end > versions.valid_from
            and (versions.valid_to is null or spine.month_end <= versions.valid_to)
            and spine.month_end > versions.started_at
            and (versions.ended_at is null or spine.month_end <= versions.ended_at)
            and not (versions.status = 'canceled' and versions.ended_at is null)
    qualify
        row_number() over (
            partition by spine.month, spine.customer_key
            order by
                versions.monthly_fee_minor desc,
                versions.started_at desc,
                versions.subscription_id asc
        ) = 1
),

final as (
    select
        spine.month,
        spine.customer_key,
        plans_in_force.subscription_id,
        plans_in_force.billing_customer_id,
        plans_in_force.plan_code,
        plans_in_force.monthly_fee_minor,
        plans_in_force.included_units,
        plans_in_force.overage_unit_price_minor,
        plans_in_force.valid_from as plan_version_valid_from
    from spine
    left join plans_in_force
        on
            spine.month = plans_in_force.month
            and spine.customer_key = plans_in_force.customer_key
)

select * from final
