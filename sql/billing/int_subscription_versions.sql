-- int_subscription_versions: one row per version of a subscription: (subscription_id,
-- valid_from), with the customer it belongs to. A version is in effect from valid_from to
-- valid_to (exclusive; null for the latest version): valid_from is the billing system's
-- updated_at of the version, except that the first version also covers the time before its
-- first export back to started_at (the plan it was started on is the earliest one seen).
-- started_at / ended_at are the subscription's own dates as that version states them.
-- customer_key comes from the identity crosswalk; a billing customer it does not know maps to
-- the 'unknown' member.
with

stg_billing_subscriptions as (
    select * from stg_billing_subscriptions
),

int_billing_customers_resolved as (
    select * from int_billing_customers_resolved
),

ordered as (
    select
        *,
        row_number() over by_time as version_number,
        lead(updated_at) over by_time as next_updated_at
    from stg_billing_subscriptions
    window by_time as (partition by subscription_id order by updated_at)
),

final as (
    select
        ordered.subscription_id,
        ordered.billing_customer_id,
        coalesce(customers.customer_key, 'unknown') as customer_key,
        ordered.plan_code,
        ordered.status,
        ordered.monthly_fee_minor,
        ordered.included_units,
        ordered.overage_unit_price_minor,
        ordered.started_at,
        ordered.ended_at,
        case
            when ordered.version_number = 1 then least(ordered.started_at, ordered.updated_at)
            else ordered.updated_at
        end as valid_from,
        ordered.next_updated_at as valid_to,
        ordered.next_updated_at is null as is_current,
        ordered.version_number,
        ordered.updated_at
    from ordered
    left join int_billing_customers_resolved as customers
        on ordered.billing_customer_id = customers.billing_customer_id
)

select * from final
