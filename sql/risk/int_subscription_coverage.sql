-- int_subscription_coverage: one row per subscription: the UTC days it covers, from its latest
-- version (the one with the latest valid_from; plan changes do not change coverage).
-- A day is covered when the subscription is active at any instant of it: from the UTC date of
-- started_at (covered_from) to covered_until (exclusive: the first day not covered, i.e. the
-- UTC date of ended_at, plus one day unless ended_at is exactly midnight). A `canceled`
-- version without ended_at is taken to end when it was recorded (its valid_from). Open-ended
-- coverage has covered_until null. `past_due` still covers (a payment problem, not an end).
with

int_subscription_versions as (
    select * from int_subscription_versions
),

latest as (
    select
        subscription_id,
        arg_max(
            {
                'billing_customer_id': billing_customer_id,
                'customer_key': customer_key,
                'plan_code': plan_code,
                'status': status,
                'started_at': started_at,
                'ended_at': ended_at,
                'valid_from': valid_from
            },
            valid_from
        ) as current_version
    from int_subscription_versions
    group by subscription_id
),

ends as (
    select
        subscription_id,
        current_version.billing_customer_id as billing_customer_id,
        current_version.customer_key as customer_key,
        current_version.plan_code as plan_code,
        current_version.status as status,
        current_version.started_at as started_at,
        coalesce(
            current_version.ended_at,
            case when current_version.status = 'canceled' then current_version.valid_from end
        ) as ended_at
    from latest
),

final as (
    select
        subscription_id,
        billing_customer_id,
        customer_key,
        plan_code,
        status,
        started_at,
        ended_at,
        started_at::date as covered_from,
        case
            when ended_at is null then null
            when ended_at = date_trunc('day', ended_at) then ended_at::date
            else ended_at::date + 1
        end as covered_until
    from ends
)

select * from final
